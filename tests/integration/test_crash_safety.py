"""SIGKILL at random points of `syncd sync`, then recover: nothing lost, nothing doubled.

Each round edits, creates and deletes on both sides (on different items, so no rule has
to pick a winner), starts a real `syncd sync` process, kills it with SIGKILL after a
random delay, runs a recovery pass and a check pass, and compares both sides with what
must be there.  The kill points are spread over the whole pass; the test reports where
they landed (by the HTTP requests the killed process had made) and needs several phases.
"""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import icalendar
import pytest

from tests.integration.test_cyrus_sync import jmap_event, simple_ics

pytestmark = pytest.mark.cyrus
REPO = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("SYNCD_CRASH_RUNS", "200"))


def local_items(pair) -> dict[str, tuple[Path, str]]:
    """uid -> (file, summary) in the collection directories, as khal and vdirsyncer read
    them (dot directories are not collections); fails on a UID that is in two files."""
    out: dict[str, tuple[Path, str]] = {}
    collections = [d for d in pair.root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    for path in (f for d in collections for f in d.glob("*.ics")):
        cal = icalendar.Calendar.from_ical(path.read_bytes())
        (event,) = [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e]
        uid = str(event["UID"])
        assert uid not in out, f"UID {uid} in two files: {out[uid][0]} and {path}"
        out[uid] = (path, str(event["SUMMARY"]))
    return out


def server_items(pair) -> dict[str, tuple[str, str]]:
    """uid -> (id, title); fails on a duplicate UID."""
    ((_, body, _),) = pair.jmap([["CalendarEvent/get", {"properties": ["uid", "title"]}, "g"]])
    uids = [e["uid"] for e in body["list"]]
    dupes = [u for u, n in collections.Counter(uids).items() if n > 1]
    assert not dupes, f"duplicates on the server: {dupes}"
    return {e["uid"]: (e["id"], e["title"]) for e in body["list"]}


def _calibrate(pair, env, tmp_path) -> tuple[float, float]:
    """(seconds until the first request, seconds for the whole pass) of one real run."""
    log = tmp_path / "calibrate.log"
    started = time.time()
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-m", "syncd", "-c", str(pair.config_path), "-vvv", "sync"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    span = time.time() - started
    for line in log.read_text(errors="replace").splitlines():
        if GET_SESSION in line:
            stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
            stamp += int(line[20:23]) / 1000
            return max(0.0, stamp - started - 0.1), span
    return 0.3 * span, span


# What `syncd -vvv sync` logs per HTTP exchange (syncd/jmap/stdtransport.py).
GET_SESSION = "syncd.http: GET /jmap"
POST_API = "syncd.http: POST /jmap/"


def phase_of(log: str) -> str:
    posts = log.count(POST_API)
    if GET_SESSION not in log:
        return "starting"
    if "syncd: cal:" in log:
        return "journal committed"
    return ["session", "fetched", "remote written", "remote written"][min(posts, 3)]


def test_sigkill_anywhere_loses_nothing_and_doubles_nothing(cyrus_pair, tmp_path):
    rng = random.Random(int(os.environ.get("SYNCD_CRASH_SEED", "1234")))
    cyrus_pair.set_events(
        {
            "create": {
                f"e{i}": jmap_event(f"base-{i}@x", f"Base {i}", "Default", 1 + i) for i in range(30)
            }
        }
    )
    assert cyrus_pair.sync().ok
    expected = {uid: title for uid, (_, title) in server_items(cyrus_pair).items()}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # When the pass does its work (after the interpreter has started), so the kills can
    # be spread over that window rather than over start-up.
    windows = [_calibrate(cyrus_pair, env, tmp_path) for _ in range(3)]
    work_start = sorted(w[0] for w in windows)[1]
    span = sorted(w[1] for w in windows)[1]
    phases: collections.Counter[str] = collections.Counter()
    calendar_dir = next(p for p in cyrus_pair.root.iterdir() if p.is_dir())

    for r in range(RUNS):
        uids = sorted(expected)
        rng.shuffle(uids)
        local_edit, local_del, remote_edit, remote_del = uids[:2], uids[2], uids[3:5], uids[5]
        files = local_items(cyrus_pair)
        for i, uid in enumerate(local_edit):
            path, _ = files[uid]
            title = f"L{r}-{i}"
            text = re.sub(
                r"^SUMMARY:.*$", f"SUMMARY:{title}", path.read_text(), count=1, flags=re.M
            )
            path.write_text(text)
            expected[uid] = title
        files[local_del][0].unlink()
        del expected[local_del]
        (calendar_dir / f"new-l{r}.ics").write_text(simple_ics(f"new-l{r}@x", f"NL{r}"))
        expected[f"new-l{r}@x"] = f"NL{r}"
        ids = server_items(cyrus_pair)
        updates = {}
        for i, uid in enumerate(remote_edit):
            updates[ids[uid][0]] = {"title": f"R{r}-{i}"}
            expected[uid] = f"R{r}-{i}"
        cyrus_pair.set_events(
            {
                "update": updates,
                "destroy": [ids[remote_del][0]],
                "create": {"n": jmap_event(f"new-r{r}@x", f"NR{r}", "Default", 1 + r % 28)},
            }
        )
        del expected[remote_del]
        expected[f"new-r{r}@x"] = f"NR{r}"

        log = tmp_path / "killed.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "syncd", "-c", str(cyrus_pair.config_path), "-vvv", "sync"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            # A pass that reaches the server within 0.05 s of its start makes the low
            # end negative: such a kill lands while it starts.
            time.sleep(max(0.0, rng.uniform(work_start - 0.05, span + 0.05)))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        phases[
            phase_of(log.read_text(errors="replace")) if proc.returncode < 0 else "finished"
        ] += 1

        recovered = cyrus_pair.sync()
        assert recovered.ok, (r, recovered.summary())
        again = cyrus_pair.sync()
        assert again.ok and again.changes == 0, (r, again.summary())
        on_server = {uid: title for uid, (_, title) in server_items(cyrus_pair).items()}
        on_disk = {uid: title for uid, (_, title) in local_items(cyrus_pair).items()}
        assert on_server == expected, (r, set(on_server.items()) ^ set(expected.items()))
        assert on_disk == expected, (r, set(on_disk.items()) ^ set(expected.items()))

    print(
        f"\nkills by phase over {RUNS} runs (work from {work_start:.2f} s to {span:.2f} s):",
        dict(phases),
    )
    if RUNS >= 50:
        assert len([p for p in phases if p != "finished"]) >= 3, phases


WHOLE_RUNS = int(os.environ.get("SYNCD_WHOLE_CRASH_RUNS", "8"))


def test_sigkill_during_a_whole_first_download_loses_nothing(cyrus_pair, tmp_path):
    """A first download of 1,100 events is written whole beside the empty calendar
    directory and swapped in (VdirCollection.begin_whole).  Killed anywhere in it, the
    next pass brings every event once, both sides agree, and a pass after that changes
    nothing; the hidden directory a kill leaves behind is never read as a calendar."""
    import shutil

    from syncd.sync.engine import WHOLE_MIN

    n = WHOLE_MIN + 100
    for start in range(0, n, 500):
        cyrus_pair.set_events(
            {
                "create": {
                    f"w{i}": jmap_event(f"whole-{i}@x", f"Whole {i}", "Default", 1 + i % 28)
                    for i in range(start, min(n, start + 500))
                }
            }
        )
    expected = {uid: title for uid, (_, title) in server_items(cyrus_pair).items()}
    assert len(expected) == n
    env = dict(os.environ, PYTHONPATH=str(REPO))
    state = cyrus_pair.tmp / "state"

    def start_over() -> None:
        shutil.rmtree(cyrus_pair.root)
        shutil.rmtree(state, ignore_errors=True)
        cyrus_pair.root.mkdir()

    _, span = _calibrate(cyrus_pair, env, tmp_path)
    rng = random.Random(int(os.environ.get("SYNCD_CRASH_SEED", "1234")))
    left_behind = 0
    for r in range(WHOLE_RUNS):
        start_over()
        with (tmp_path / "killed.log").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "syncd", "-c", str(cyrus_pair.config_path), "sync"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            time.sleep(rng.uniform(0.3 * span, 1.05 * span))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        hidden = [p.name for p in cyrus_pair.root.iterdir() if p.name.startswith(".")]
        left_behind += bool(hidden)
        recovered = cyrus_pair.sync()
        assert recovered.ok, (r, recovered.summary())
        again = cyrus_pair.sync()
        assert again.ok and again.changes == 0, (r, again.summary())
        on_disk = {uid: title for uid, (_, title) in local_items(cyrus_pair).items()}
        assert on_disk == expected, (r, len(on_disk), len(expected))
        on_server = {uid: title for uid, (_, title) in server_items(cyrus_pair).items()}
        assert on_server == expected, r
        (calendar,) = [p for p in cyrus_pair.root.iterdir() if not p.name.startswith(".")]
        assert calendar.is_dir()
    print(
        f"\n{WHOLE_RUNS} kills during a whole first download; {left_behind} left a hidden directory"
    )
