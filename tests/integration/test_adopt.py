"""Adopting a vdir that vdirsyncer kept against the same Cyrus account (over CalDAV).

vdirsyncer stores each item as the server sent it, one directory per calendar named
after the CalDAV collection (on Cyrus, the calendar's id), one file per item.  The
first `syncd sync` over such a directory must pair items by UID: no duplicates on
either side, no rewrite of a file whose content already matches (same bytes, inode
and mtime afterwards), local-only and server-only items copied across, a differing
pair settled by the conflict rule and recorded, and every file it could not pair
reported with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.adopt import compare, journal_is_empty, snapshot
from tests.integration.test_cyrus_sync import WEEKLY_LONDON, jmap_event, simple_ics

pytestmark = pytest.mark.cyrus
REPO = Path(__file__).resolve().parents[2]


def caldav_get(user, calendar: str, filename: str) -> bytes:
    status, _, data = user.http("GET", f"/dav/calendars/user/{user.name}/{calendar}/{filename}")
    assert status == 200, (status, data[:300])
    return data


def stat_of(path: Path) -> tuple[int, int, int, bytes]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size, path.read_bytes()


def make_vdirsyncer_vdir(pair) -> tuple[str, dict[str, tuple]]:
    """Server items over CalDAV, and the vdir vdirsyncer would have made of them."""
    user = pair.user
    u = user.name  # UIDs unique per user: Cyrus refuses one another user already has
    created = pair.set_calendars({"create": {"w": {"name": "Work", "color": "#3a7bd5"}}})
    work = created["created"]["w"]["id"]
    user.caldav_put("Default", "same1.ics", simple_ics(f"same1@{u}", "Same one"))
    user.caldav_put("Default", "edited.ics", simple_ics(f"edited@{u}", "Before the edit"))
    user.caldav_put(
        "Default", "remoteonly.ics", simple_ics(f"remoteonly@{u}", "Only on the server")
    )
    user.caldav_put(work, "work1.ics", simple_ics(f"work1@{u}", "Work item"))

    default = pair.root / "Default"
    work_dir = pair.root / work
    default.mkdir()
    work_dir.mkdir()
    (default / "displayname").write_text("personal")  # as `vdirsyncer metasync` leaves it
    for name in ("same1.ics", "edited.ics"):
        (default / name).write_bytes(caldav_get(user, "Default", name))
    (work_dir / "work1.ics").write_bytes(caldav_get(user, work, "work1.ics"))
    # edited locally (in khal) after vdirsyncer's last run
    edited = default / "edited.ics"
    edited.write_bytes(edited.read_bytes().replace(b"Before the edit", b"Edited in khal"))
    # made locally after vdirsyncer's last run
    (default / "localonly.ics").write_text(simple_ics(f"localonly@{u}", "Only here"))
    # what cannot be paired: a broken file, and one UID in two files
    (default / "broken.ics").write_text("BEGIN:VCALENDAR\nthis is not iCalendar\n")
    (default / "twin-a.ics").write_text(simple_ics(f"twin@{u}", "Twin A"))
    (default / "twin-b.ics").write_text(simple_ics(f"twin@{u}", "Twin B"))
    files = {
        str(p.relative_to(pair.root)): stat_of(p)
        for p in pair.root.rglob("*")
        if p.is_file() and p.suffix == ".ics"
    }
    return work, files


def test_first_sync_adopts_a_vdirsyncer_vdir(cyrus_pair):
    work, before = make_vdirsyncer_vdir(cyrus_pair)
    u = cyrus_pair.user.name
    journal = cyrus_pair.tmp / "state" / "cal.sqlite3"
    assert journal_is_empty(journal)
    picture = snapshot(cyrus_pair.root)

    result = cyrus_pair.sync()
    adoption = compare(cyrus_pair.root, picture, [journal], result)

    # no duplicates on the server: each UID once, the twins not sent at all
    ((_, body, _),) = cyrus_pair.jmap(
        [["CalendarEvent/get", {"accountId": cyrus_pair.user.name}, "g"]]
    )
    uids = [e["uid"] for e in body["list"]]
    assert sorted(uids) == sorted(
        {f"same1@{u}", f"edited@{u}", f"remoteonly@{u}", f"work1@{u}", f"localonly@{u}"}
    ), uids
    # no duplicates locally: one file per UID, the server-only item as a new file
    after = {
        str(p.relative_to(cyrus_pair.root)): stat_of(p)
        for p in cyrus_pair.root.rglob("*")
        if p.is_file() and p.suffix == ".ics"
    }
    new = sorted(set(after) - set(before))
    assert len(new) == 1 and new[0].startswith("Default/"), new
    assert f"remoteonly@{u}".encode() in after[new[0]][3]
    # matching content: not rewritten (bytes, inode, mtime all the same)
    for rel in ("Default/same1.ics", f"{work}/work1.ics"):
        assert after[rel] == before[rel], rel
    # the local-only item went up without its file being touched
    assert after["Default/localonly.ics"] == before["Default/localonly.ics"]
    # what could not be paired is left as it was
    for rel in ("Default/broken.ics", "Default/twin-a.ics", "Default/twin-b.ics"):
        assert after[rel] == before[rel], rel
    # both versions differ: the pair's rule (remote-wins) decides, and it is recorded
    assert b"Before the edit" in after["Default/edited.ics"][3]
    assert result.collections and sum(c.conflicts for c in result.collections) == 1
    assert not journal_is_empty(journal)

    # the report
    assert sorted(adoption.unchanged) == sorted(
        ["Default/same1.ics", "Default/localonly.ics", f"{work}/work1.ics"]
    )
    assert adoption.rewritten == ["Default/edited.ics"]
    assert adoption.sent == 1 and adoption.fetched == 1
    unpaired = dict(adoption.unpaired)
    assert set(unpaired) == {"Default/broken.ics", "Default/twin-a.ics", "Default/twin-b.ics"}
    assert "not valid iCalendar" in unpaired["Default/broken.ics"]
    assert f"twin@{u}" in unpaired["Default/twin-a.ics"]
    assert f"twin@{u}" in unpaired["Default/twin-b.ics"]
    text = "\n".join(adoption.lines(cyrus_pair.root))
    assert "4 of 7 existing file(s) paired with the server by UID" in text
    assert "3 left exactly as they were" in text
    assert "not paired: Default/broken.ics" in text

    # and the next pass has nothing to do
    again = cyrus_pair.sync()
    assert again.changes == 0, again.summary()
    final = {
        str(p.relative_to(cyrus_pair.root)): stat_of(p)
        for p in cyrus_pair.root.rglob("*")
        if p.is_file() and p.suffix == ".ics"
    }
    assert final == after


def test_a_matching_event_with_alarm_location_and_attendees_is_not_rewritten(cyrus_pair):
    user = cyrus_pair.user
    # A UID of its own: Cyrus refuses a scheduling object whose UID another user has.
    weekly = WEEKLY_LONDON.replace("weekly-1@example.com", f"weekly-1-{user.name}@example.com")
    user.caldav_put("Default", "weekly.ics", weekly)
    (cyrus_pair.root / "Default").mkdir()
    path = cyrus_pair.root / "Default" / "weekly.ics"
    path.write_bytes(caldav_get(user, "Default", "weekly.ics"))
    before = stat_of(path)
    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    assert sum(c.conflicts for c in result.collections) == 0
    assert stat_of(path) == before


def run_cli(pair, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "-c", str(pair.config_path), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )


def test_sync_command_prints_the_adoption_report(cyrus_pair):
    make_vdirsyncer_vdir(cyrus_pair)
    done = run_cli(cyrus_pair, "sync")
    assert done.returncode == 1  # the broken file and the twins need attention
    out = done.stdout
    assert f"adopted {cyrus_pair.root}: 4 of 7 existing file(s)" in out, out + done.stderr
    assert "not paired: Default/broken.ics" in out
    # only the first pass adopts
    done = run_cli(cyrus_pair, "sync")
    assert "adopted" not in done.stdout


def test_status_while_the_daemon_runs_after_adoption(cyrus_pair, tmp_path):
    """Migration's last step: the unit on; status reads the journal next to it."""
    import json
    import time

    cyrus_pair.set_events(
        {"create": {"a": jmap_event(f"a-{cyrus_pair.user.name}@x", "A", "Default")}}
    )
    assert cyrus_pair.sync().ok
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("JOURNAL_STREAM", None)
    env.pop("INVOCATION_ID", None)
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "-c", str(cyrus_pair.config_path), "-v", "run"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        report = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            done = run_cli(cyrus_pair, "status", "--json")
            if done.stdout.strip():
                report = json.loads(done.stdout)[0]
                if (report.get("daemon") or {}).get("push_connected"):
                    break
            time.sleep(0.5)
        assert report is not None and report["daemon"]["push_connected"], (
            report,
            log.read_text()[-3000:],
        )
        assert report["daemon"]["running"] and report["daemon"]["pid"] == proc.pid
        assert report["collections"][0]["local_files"] == 1
        assert report["collections"][0]["server_items"] == 1
        text = run_cli(cyrus_pair, "status")
        assert "push connected" in text.stdout, text.stdout
        assert text.returncode == 0, text.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.skipif(shutil.which("khal") is None, reason="khal is not installed")
def test_a_vdir_khal_made_alone_becomes_a_server_calendar(cyrus_pair):
    """Someone used khal offline: a calendar directory of their own, events in it.  The
    first sync makes it a server calendar (named from `displayname`), sends the events
    once, and leaves khal's files as khal wrote them."""
    from tests.integration.test_khal import khal, khal_config

    mine = cyrus_pair.root / "mine"
    mine.mkdir()
    (mine / "displayname").write_text("Offline life")
    config = khal_config(cyrus_pair.tmp, cyrus_pair.root)
    for day, title in ((3, "Dentist"), (4, "Climbing")):
        khal(
            config,
            "Europe/Berlin",
            "new",
            "-a",
            "Offline life",
            f"2026-07-0{day} 18:00",
            "1h",
            title,
        )
    before = {p.name: stat_of(p) for p in mine.glob("*.ics")}
    assert len(before) == 2

    done = run_cli(cyrus_pair, "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"adopted {cyrus_pair.root}: 2 of 2 existing file(s)" in done.stdout
    assert "2 local-only item(s) sent to the server" in done.stdout
    (cal,) = [c for c in cyrus_pair.calendars().values() if c["name"] == "Offline life"]
    titles = sorted(
        e["title"] for e in cyrus_pair.events().values() if cal["id"] in e["calendarIds"]
    )
    assert titles == ["Climbing", "Dentist"]
    assert {p.name: stat_of(p) for p in mine.glob("*.ics")} == before
    assert sorted(p.name for p in cyrus_pair.root.iterdir() if p.is_dir()) == ["mine", "personal"]
    assert run_cli(cyrus_pair, "sync").stdout == ""  # quiet: nothing left to do
