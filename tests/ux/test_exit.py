"""The command's exit (syncd.cli.run): it skips the interpreter's teardown, so what the
command printed must still reach a pipe, and its status must still be the exit status.
And a reader of its output that went away (``syncd sync | head -1``) is no traceback,
nor a pass stopped half done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from syncd.sync.prepare import MIN_OBJECTS
from syncd.sync.workers import ENV_WORKERS
from tests.convert.test_command import EVENT
from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import VEVENT, served_pair

REPO = Path(__file__).resolve().parents[2]


def _syncd(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "syncd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**_buffered(os.environ), "PYTHONPATH": str(REPO)},
    )


def _buffered(env: dict[str, str]) -> dict[str, str]:
    """As a user's shell would have it: stdout to a pipe block-buffered."""
    return {k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"}


def test_what_the_command_prints_to_a_pipe_arrives_whole(tmp_path: Path):
    # A pipe makes stdout block-buffered, and `status` prints without flushing: without
    # the flush before os._exit, its output would die in the buffer with the process.
    with served_pair(tmp_path, FakeJmapServer()) as h:
        h.server.put_event(
            {"@type": "Event", "uid": "one", "title": "One", "start": "2026-03-01T10:00:00"}
        )
        assert h.sync().ok
        proc = _syncd("-c", str(h.config_path), "status", "--json")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "cal" in json.dumps(json.loads(out))


def test_the_commands_status_is_the_exit_status(tmp_path: Path):
    proc = _syncd("-c", str(tmp_path / "absent.yaml"), "sync")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"absent.yaml" in err and b"Traceback" not in err


def _gone_reader(proc: subprocess.Popen) -> bytes:
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the child has started up, let alone written
    err = proc.stderr.read()
    proc.wait(timeout=60)
    return err


def test_a_reader_gone_ends_a_command_quietly(tmp_path: Path):
    path = tmp_path / "standup.ics"
    path.write_bytes(EVENT)
    proc = _syncd("convert", "--to", "jscal", str(path))
    err = _gone_reader(proc)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert proc.returncode == 1  # the output was not delivered: not a success


def test_a_reader_gone_does_not_stop_the_passes(tmp_path: Path):
    with served_pair(tmp_path, FakeJmapServer()) as h:
        h.server.put_event(
            {"@type": "Event", "uid": "down", "title": "Down", "start": "2026-03-01T10:00:00"}
        )
        assert h.sync().ok
        (h.root / "personal" / "up.ics").write_text(VEVENT.format(uid="up", title="Up"))
        h.server.put_event(
            {"@type": "Event", "uid": "later", "title": "Later", "start": "2026-03-02T10:00:00"}
        )
        proc = _syncd("-c", str(h.config_path), "-v", "sync")
        err = _gone_reader(proc)
        assert proc.returncode == 0, err
        assert b"Traceback" not in err and b"BrokenPipe" not in err, err
        assert h.server.by_uid("up") is not None  # the pass went on: up, and down
        assert any("Later" in p.read_text() for p in (h.root / "personal").glob("*.ics"))


def test_a_pass_with_workers_leaves_nothing_in_the_temp_directory(tmp_path: Path):
    # The workers' forkserver listens on a socket in a directory of $TMPDIR, removed by
    # an exit hook the skipped teardown would skip too: one directory left per big pass.
    temp = tmp_path / "temp"
    temp.mkdir()
    with served_pair(tmp_path, FakeJmapServer()) as h:
        for i in range(MIN_OBJECTS):
            h.server.put_event(
                {"@type": "Event", "uid": f"u{i}", "title": f"T{i}", "start": "2026-03-01T10:00:00"}
            )
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "-c", str(h.config_path), "sync"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(temp), ENV_WORKERS: "2"},
        )
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(list((h.root / "personal").glob("*.ics"))) == MIN_OBJECTS
    assert "workers" not in err.decode(), err  # they ran: nothing fell back in-process
    assert list(temp.iterdir()) == []
