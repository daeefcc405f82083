"""The daemon's watcher over the real kernel (syncd.vdir.watch with syncd.vdir.inotify):
syncd's own writes are no change, a user's is, events the kernel dropped make the watch
untrusted and ask for a look, a directory it cannot watch keeps the watch from vouching
for the vdir, and without inotify the watcher still works through watchdog."""

from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path

import anyio
import pytest

from syncd.vdir import inotify, watch
from syncd.vdir.storage import VdirRoot
from tests.daemon.test_daemon import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")

ICS = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"


def watched(root: Path, scenario, trusted: bool = True) -> list[str]:
    """Runs ``scenario(watcher, seen)`` with a watcher on ``root`` (once it trusts the
    watch, if ``trusted``); ``seen``: the paths it reported, also returned."""
    seen: list[str] = []

    async def main():
        watcher = watch.VdirWatcher(root, seen.append)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.run)
            if trusted:
                await wait_for(lambda: watcher.trusted_since is not None)
            await scenario(watcher, seen)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return seen


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "vdir"
    (root / "work").mkdir(parents=True)
    return root


def test_a_burst_of_syncds_own_writes_is_no_change_and_a_users_write_still_is(root):
    coll = VdirRoot(root).collection("work")

    async def scenario(watcher, seen):
        coll.begin_batch()
        for i in range(3000):  # staged temp files, renamed into place: a big pass
            coll.write(f"e{i}.ics", ICS.format(uid=f"e{i}").encode(), None)
        assert coll.commit_batch() == {}
        (root / "work" / "mine.ics").write_text(ICS.format(uid="mine"))
        assert await watcher.barrier()  # every event before the marker has been handled

    seen = watched(root, scenario)
    assert set(seen) == {str(root / "work" / "mine.ics")}  # a save may span two reads


def test_events_the_kernel_dropped_make_the_watch_look_again(root, monkeypatch):
    real_read = inotify.Inotify.read
    overflow = {"now": False}

    def read(self):
        if overflow["now"]:
            overflow["now"] = False
            return [inotify.Event(-1, inotify.IN_Q_OVERFLOW, 0, "")]
        return real_read(self)

    monkeypatch.setattr(inotify.Inotify, "read", read)

    async def scenario(watcher, seen):
        before = watcher.trusted_since
        overflow["now"] = True
        (root / ".wake").write_text("")  # a dot file: wakes the reader, means nothing
        await wait_for(lambda: str(root) in seen)
        scenario.moved = watcher.trusted_since > before

    seen = watched(root, scenario)
    assert scenario.moved  # trusted only from the overflow on
    assert seen == [str(root)]  # the root: a pass that looks at every file


def test_a_collection_that_cannot_be_watched_keeps_the_watch_from_vouching(
    root, monkeypatch, caplog
):
    (root / "home").mkdir()
    real_add = inotify.Inotify.add_watch

    def add_watch(self, path, mask):
        if path.endswith("/home"):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real_add(self, path, mask)

    monkeypatch.setattr(inotify.Inotify, "add_watch", add_watch)

    async def scenario(watcher, seen):
        await wait_for(lambda: "cannot watch" in caplog.text)
        await anyio.sleep(0.1)
        scenario.trusted = watcher.trusted_since
        scenario.barrier = await watcher.barrier()
        (root / "work" / "a.ics").write_text(ICS.format(uid="a"))
        await wait_for(lambda: seen)

    with caplog.at_level(logging.WARNING, logger="syncd.watch"):
        seen = watched(root, scenario, trusted=False)
    assert scenario.trusted is None and scenario.barrier is False
    assert set(seen) == {str(root / "work" / "a.ics")}  # the rest is still watched


def test_without_inotify_the_watcher_goes_through_watchdog(root, monkeypatch, caplog):
    def refuse(self):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(inotify.Inotify, "__init__", refuse)

    async def scenario(watcher, seen):
        (root / "work" / "b.ics").write_text(ICS.format(uid="b"))
        await wait_for(lambda: seen)

    with caplog.at_level(logging.WARNING, logger="syncd.watch"):
        seen = watched(root, scenario)
    assert seen[0] == str(root / "work" / "b.ics")
    assert "watching through watchdog instead" in caplog.text
