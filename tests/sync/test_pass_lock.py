"""One pass per pair at a time, across processes (syncd.passlock): a ``syncd sync`` that
starts while another process syncs the pair waits for it, so a new local file is created
on the server once, not once per process."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from syncd import passlock
from syncd.config import journal_file, load_config
from syncd.passlock import lock_path, pair_lock
from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import VEVENT, TaskHarness, served_pair

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path: Path):
    with served_pair(tmp_path, FakeJmapServer()) as h:
        h.server.put_event(
            {"@type": "Event", "uid": "first", "title": "First", "start": "2026-03-01T10:00:00"}
        )
        assert h.sync().ok
        yield h


def _lock_file(h: TaskHarness) -> Path:
    config = load_config(h.config_path)
    return lock_path(journal_file(config, config.pairs["cal"]))


def _cli(h: TaskHarness) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "syncd", "-c", str(h.config_path), "sync"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_passes_of_one_pair_from_two_processes_take_turns_and_create_once(served):
    new = served.root / "personal" / "new.ics"
    new.write_text(VEVENT.format(uid="made-here", title="Made here"))
    fd = os.open(_lock_file(served), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    procs = [_cli(served), _cli(served)]
    try:
        for proc in procs:  # each says whom it waits for, then waits
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert f"waiting for the pass syncd process {os.getpid()} is running" in line, line
        assert served.server.by_uid("made-here") is None  # nothing ran meanwhile
    finally:
        os.close(fd)  # the lock goes with it
    outcomes = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outcomes
    made = [e for e in served.server.events.values() if e.get("uid") == "made-here"]
    assert len(made) == 1  # created by the first pass; the second found it in the journal
    assert sum("up 1" in out for out, _ in outcomes) == 1, outcomes


def test_a_waiting_pass_names_the_holder_once_and_starts_when_it_is_done(tmp_path):
    path = tmp_path / "cal.lock"
    said: list[str] = []
    order: list[str] = []

    async def first(release: anyio.Event) -> None:
        async with pair_lock(path, "cal"):
            order.append("first in")
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with pair_lock(path, "cal", said.append):
            order.append("second in")

    async def main() -> None:
        release = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(first, release)
            await anyio.sleep(0.05)
            tg.start_soon(second)
            for _ in range(5):  # several of its polls: it must still be waiting
                await anyio.sleep(passlock.POLL_SECONDS)
            assert order == ["first in"]
            release.set()

    anyio.run(main)
    assert order == ["first in", "first out", "second in"]
    assert said == [
        f"cal: waiting for the pass syncd process {os.getpid()} is running on this pair (lock {path})"
    ]


def test_a_pass_waiting_for_the_lock_can_be_cancelled(tmp_path):
    path = tmp_path / "cal.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    entered = []

    async def main() -> None:
        with anyio.move_on_after(3 * passlock.POLL_SECONDS):
            async with pair_lock(path, "cal"):
                entered.append(True)

    try:
        anyio.run(main)
    finally:
        os.close(fd)
    assert entered == []

    async def again() -> None:  # and it left nothing held behind
        async with pair_lock(path, "cal"):
            entered.append(True)

    anyio.run(again)
    assert entered == [True]


def test_where_the_filesystem_cannot_lock_the_pass_runs_and_says_so(tmp_path, monkeypatch, caplog):
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(passlock.fcntl, "flock", no_locks)
    ran = []

    async def main() -> None:
        async with pair_lock(tmp_path / "cal.lock", "cal"):
            ran.append(True)

    with caplog.at_level(logging.WARNING, logger="syncd.lock"):
        anyio.run(main)
    assert ran == [True]
    assert "cannot be locked (No locks available)" in caplog.text


def test_a_dry_run_does_not_wait_for_the_lock(served):
    (served.root / "personal" / "new.ics").write_text(VEVENT.format(uid="planned", title="P"))
    fd = os.open(_lock_file(served), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        code, out, err = served.cli("sync", "--dry-run")
    finally:
        os.close(fd)
    assert code == 0, err
    assert "waiting" not in err
    assert served.server.by_uid("planned") is None
