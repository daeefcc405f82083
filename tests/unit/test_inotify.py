"""syncd.vdir.inotify: the kernel's event records read right, and what they mean for a
vdir root (RootWatch, over a fake set of watches and a real directory), then the real
kernel under it."""

from __future__ import annotations

import errno
import logging
import os
import struct
import sys
from pathlib import Path

import pytest

from syncd.vdir import inotify as I
from syncd.vdir.inotify import Change, Event, RootWatch, parse
from syncd.vdir.watch import MARKER_PREFIX, _relevant_file

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def record(wd: int, mask: int, name: str = "", cookie: int = 0, pad: int = 16) -> bytes:
    raw = os.fsencode(name)
    if raw:
        raw += b"\0" * (pad - len(raw) % pad)
    return struct.pack("iIII", wd, mask, cookie, len(raw)) + raw


def test_records_are_read_with_their_names_and_padding():
    buf = (
        record(1, I.IN_CREATE, "a.ics")
        + record(2, I.IN_MOVED_FROM, "x", cookie=7)
        + record(-1, I.IN_Q_OVERFLOW)
        + record(3, I.IN_CREATE | I.IN_ISDIR, "a" * 16)  # exactly the pad: 16 NULs more
    )
    assert parse(buf) == [
        Event(1, I.IN_CREATE, 0, "a.ics"),
        Event(2, I.IN_MOVED_FROM, 7, "x"),
        Event(-1, I.IN_Q_OVERFLOW, 0, ""),
        Event(3, I.IN_CREATE | I.IN_ISDIR, 0, "a" * 16),
    ]


def test_a_name_in_another_encoding_reads_as_listdir_gives_it():
    (ev,) = parse(struct.pack("iIII", 1, I.IN_CREATE, 0, 8) + b"caf\xe9.ics")
    assert ev.name == os.fsdecode(b"caf\xe9.ics")


def test_a_cut_record_at_the_end_is_left_out():
    buf = record(1, I.IN_CREATE, "a.ics")
    assert parse(buf + buf[:10]) == [Event(1, I.IN_CREATE, 0, "a.ics")]


def test_dot_files_of_the_collection_directories_are_left_out_unread():
    # syncd's temp files: RootWatch ignores dot files there, so they are not even decoded.
    buf = (
        record(1, I.IN_CREATE, ".syncd-tmp-a1.tmp")  # the root: a marker may start so
        + record(2, I.IN_CREATE, ".syncd-tmp-a1.tmp")
        + record(2, I.IN_CLOSE_WRITE, ".syncd-tmp-a1.tmp")
        + record(2, I.IN_MOVED_FROM, ".syncd-tmp-a1.tmp", cookie=5)
        + record(2, I.IN_MOVED_TO, "a.ics", cookie=5)
        + record(3, I.IN_CREATE | I.IN_ISDIR, ".hidden")
        + record(2, I.IN_IGNORED)
    )
    assert parse(buf, hidden_from={2, 3}) == [
        Event(1, I.IN_CREATE, 0, ".syncd-tmp-a1.tmp"),
        Event(2, I.IN_MOVED_TO, 5, "a.ics"),
        Event(2, I.IN_IGNORED, 0, ""),
    ]
    assert len(parse(buf)) == 7


class FakeWatches:
    """wds handed out in order; ``refuse``: names whose watch fails with that errno."""

    def __init__(self) -> None:
        self.next = 1
        self.added: dict[int, str] = {}
        self.removed: list[int] = []
        self.refuse: dict[str, int] = {}

    def add_watch(self, path: str, mask: int) -> int:
        name = path.rsplit("/", 1)[-1]
        if name in self.refuse:
            number = self.refuse[name]
            raise OSError(number, os.strerror(number), path)
        wd, self.next = self.next, self.next + 1
        self.added[wd] = path
        return wd

    def rm_watch(self, wd: int) -> None:
        self.removed.append(wd)

    def wd_of(self, path: Path) -> int:
        return next(wd for wd, p in self.added.items() if p == str(path))


@pytest.fixture
def vdir(tmp_path: Path) -> Path:
    root = tmp_path / "vdir"
    for name in ("work", "home", ".git"):
        (root / name).mkdir(parents=True)
    (root / "notes.txt").write_text("not a collection")
    return root


def watch_over(root: Path, watches: FakeWatches | None = None) -> tuple[RootWatch, FakeWatches]:
    watches = watches or FakeWatches()
    return RootWatch(str(root), watches, MARKER_PREFIX, _relevant_file), watches


def test_the_root_and_each_collection_directory_are_watched_nothing_else(vdir):
    watch, watches = watch_over(vdir)
    assert sorted(watches.added.values()) == sorted(
        [str(vdir), str(vdir / "home"), str(vdir / "work")]
    )
    assert watch.root_wd == 1 and watch.complete


def test_item_and_metadata_files_count_temp_files_and_others_do_not(vdir):
    watch, watches = watch_over(vdir)
    work = watches.wd_of(vdir / "work")
    events = [
        Event(work, I.IN_CREATE, 0, ".syncd-1a.tmp"),  # syncd's own temp file
        Event(work, I.IN_CLOSE_WRITE, 0, ".syncd-1a.tmp"),
        Event(work, I.IN_MOVED_FROM, 5, ".syncd-1a.tmp"),
        Event(work, I.IN_MOVED_TO, 5, "a.ics"),
        Event(work, I.IN_MODIFY, 0, "b.ics"),
        Event(work, I.IN_DELETE, 0, "c.ics"),
        Event(work, I.IN_CLOSE_WRITE, 0, "displayname"),
        Event(work, I.IN_CREATE, 0, "a.ics~"),  # an editor's backup
        Event(work, I.IN_CREATE, 0, "4913"),  # vim's probe
        Event(work, I.IN_CREATE | I.IN_ISDIR, 0, "sub"),  # deeper: not synced
        Event(work, I.IN_ATTRIB, 0, ".a.ics.swp"),
    ]
    assert watch.changes(events) == [
        Change("path", f"{vdir}/work/a.ics"),
        Change("path", f"{vdir}/work/b.ics"),
        Change("path", f"{vdir}/work/c.ics"),
        Change("path", f"{vdir}/work/displayname"),
    ]


def test_a_new_collection_directory_is_watched_and_reported(vdir):
    watch, watches = watch_over(vdir)
    (vdir / "new").mkdir()
    changes = watch.changes([Event(watch.root_wd, I.IN_CREATE | I.IN_ISDIR, 0, "new")])
    # Reported itself: files made in it before its watch was in place are found by the
    # look at the whole directory that a directory's change asks for.
    assert changes == [Change("path", f"{vdir}/new")]
    new = watches.wd_of(vdir / "new")
    assert watch.changes([Event(new, I.IN_CLOSE_WRITE, 0, "x.ics")]) == [
        Change("path", f"{vdir}/new/x.ics")
    ]


def test_a_collection_linked_inside_the_root_is_watched_one_leading_out_is_not(vdir, tmp_path):
    # As VdirRoot.collections() has them.
    (vdir / ".store" / "cal").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (vdir / "linked").symlink_to(vdir / ".store" / "cal")
    (vdir / "out").symlink_to(tmp_path / "elsewhere")
    watch, watches = watch_over(vdir)
    assert str(vdir / "linked") in watches.added.values()
    assert str(vdir / "out") not in watches.added.values()
    (vdir / "later").symlink_to(vdir / ".store" / "cal")
    assert watch.changes([Event(watch.root_wd, I.IN_CREATE, 0, "later")]) == [
        Change("path", f"{vdir}/later")
    ]
    assert watch.changes([Event(watch.root_wd, I.IN_DELETE, 0, "later")]) == [
        Change("path", f"{vdir}/later")
    ]
    (vdir / "away").symlink_to(tmp_path / "elsewhere")
    assert watch.changes([Event(watch.root_wd, I.IN_CREATE, 0, "away")]) == []
    assert watch.changes([Event(watch.root_wd, I.IN_CREATE, 0, "stray.txt")]) == []


def test_a_renamed_collection_is_reported_under_both_names_and_watched_under_the_new(vdir):
    watch, watches = watch_over(vdir)
    old = watches.wd_of(vdir / "work")
    (vdir / "work").rename(vdir / "job")
    changes = watch.changes(
        [
            Event(watch.root_wd, I.IN_MOVED_FROM | I.IN_ISDIR, 9, "work"),
            Event(watch.root_wd, I.IN_MOVED_TO | I.IN_ISDIR, 9, "job"),
            Event(old, I.IN_CLOSE_WRITE, 0, "late.ics"),  # written after the rename
        ]
    )
    # Its watch goes with it: what is queued after the rename is under the new name.
    assert changes == [
        Change("path", f"{vdir}/work"),
        Change("path", f"{vdir}/job"),
        Change("path", f"{vdir}/job/late.ics"),
    ]
    assert watch.dirs[old] == "job" and old not in watches.removed


def test_a_collection_moved_out_of_the_root_is_unwatched(vdir, tmp_path):
    watch, watches = watch_over(vdir)
    old = watches.wd_of(vdir / "work")
    (vdir / "work").rename(tmp_path / "elsewhere")
    changes = watch.changes([Event(watch.root_wd, I.IN_MOVED_FROM | I.IN_ISDIR, 9, "work")])
    assert changes == [Change("path", f"{vdir}/work")]
    assert old in watches.removed and old not in watch.dirs


def test_a_collection_renamed_onto_another_replaces_its_watch(vdir):
    watch, watches = watch_over(vdir)
    work, home = watches.wd_of(vdir / "work"), watches.wd_of(vdir / "home")
    watch.changes(
        [
            Event(watch.root_wd, I.IN_MOVED_FROM | I.IN_ISDIR, 4, "work"),
            Event(watch.root_wd, I.IN_MOVED_TO | I.IN_ISDIR, 4, "home"),
        ]
    )
    assert watch.dirs == {work: "home"} and home in watches.removed


def test_a_removed_collection_is_reported_and_its_watch_dropped(vdir):
    watch, watches = watch_over(vdir)
    home = watches.wd_of(vdir / "home")
    changes = watch.changes(
        [
            Event(home, I.IN_DELETE, 0, "a.ics"),
            Event(home, I.IN_IGNORED, 0, ""),
            Event(watch.root_wd, I.IN_DELETE | I.IN_ISDIR, 0, "home"),
        ]
    )
    assert changes == [Change("path", f"{vdir}/home/a.ics"), Change("path", f"{vdir}/home")]
    assert home not in watch.dirs


def test_markers_and_dot_names_in_the_root(vdir):
    watch, _ = watch_over(vdir)
    marker = f"{MARKER_PREFIX}12-3"
    changes = watch.changes(
        [
            Event(watch.root_wd, I.IN_CREATE, 0, marker),
            Event(watch.root_wd, I.IN_DELETE, 0, marker),  # its removal means nothing
            Event(watch.root_wd, I.IN_CREATE | I.IN_ISDIR, 0, ".stversions"),
            Event(watch.root_wd, I.IN_CREATE, 0, ".syncd-stage"),
        ]
    )
    assert changes == [Change("marker", marker)]


def test_an_overflow_is_lost_events_and_watches_what_was_made_meanwhile(vdir):
    watch, watches = watch_over(vdir)
    (vdir / "meanwhile").mkdir()  # its IN_CREATE was among the events dropped
    assert watch.changes([Event(-1, I.IN_Q_OVERFLOW, 0, "")]) == [Change("lost", str(vdir))]
    assert str(vdir / "meanwhile") in watches.added.values()


@pytest.mark.parametrize("flag", [I.IN_DELETE_SELF, I.IN_MOVE_SELF, I.IN_IGNORED, I.IN_UNMOUNT])
def test_the_roots_watch_ending_ends_the_watch(vdir, flag):
    watch, watches = watch_over(vdir)
    work = watches.wd_of(vdir / "work")
    changes = watch.changes(
        [
            Event(work, I.IN_CLOSE_WRITE, 0, "before.ics"),
            Event(watch.root_wd, flag, 0, ""),
            Event(work, I.IN_CLOSE_WRITE, 0, "after.ics"),
        ]
    )
    assert changes == [Change("path", f"{vdir}/work/before.ics")]
    assert watch.ended and not watch.complete
    assert watch.changes([Event(work, I.IN_CLOSE_WRITE, 0, "later.ics")]) == []


def test_a_collection_that_cannot_be_watched_makes_the_watch_incomplete(vdir, caplog):
    watches = FakeWatches()
    watches.refuse["work"] = errno.ENOSPC
    with caplog.at_level(logging.WARNING, logger="syncd.watch"):
        watch, _ = watch_over(vdir, watches)
    assert not watch.complete and watch.unwatched == {"work"}
    assert "max_user_watches" in caplog.text
    del watches.refuse["work"]  # a watch freed elsewhere; the next overflow retries
    watch.changes([Event(-1, I.IN_Q_OVERFLOW, 0, "")])
    assert watch.complete


def test_a_directory_gone_before_its_watch_is_not_a_failure(vdir):
    watch, watches = watch_over(vdir)
    changes = watch.changes([Event(watch.root_wd, I.IN_CREATE | I.IN_ISDIR, 0, "brief")])
    assert changes == [Change("path", f"{vdir}/brief")]  # reported; never there to watch
    assert watch.complete


# -- the real kernel --------------------------------------------------------------------


def drain(fd: I.Inotify, watch: RootWatch) -> list[Change]:
    import select

    out: list[Change] = []
    poller = select.poll()
    poller.register(fd.fileno(), select.POLLIN)
    while poller.poll(200):
        out += watch.changes(fd.read())
    return out


@linux_only
def test_the_kernels_events_for_an_atomic_write_and_a_new_collection(vdir):
    fd = I.Inotify()
    try:
        watch = RootWatch(str(vdir), fd, MARKER_PREFIX, _relevant_file)
        tmp = vdir / "work" / ".syncd-x.tmp"
        tmp.write_text("BEGIN:VCALENDAR\r\n")
        tmp.rename(vdir / "work" / "a.ics")
        (vdir / "cal").mkdir()
        (vdir / "work" / "a.ics").unlink()
        assert drain(fd, watch) == [
            Change("path", f"{vdir}/work/a.ics"),
            Change("path", f"{vdir}/cal"),
            Change("path", f"{vdir}/work/a.ics"),
        ]
        (vdir / "cal" / "b.ics").write_text("x")  # the new directory is watched now
        (vdir / "cal").rename(vdir / "moved")
        (vdir / "moved" / "c.ics").write_text("x")
        got = drain(fd, watch)
        assert Change("path", f"{vdir}/cal/b.ics") in got
        assert got[-1] == Change("path", f"{vdir}/moved/c.ics")
        assert not any("cal/c.ics" in c.value for c in got)
    finally:
        fd.close()


@linux_only
def test_a_directory_swapped_in_for_a_collection_is_watched_under_its_name(vdir):
    """A first download swaps its new directory in for the empty one in one step
    (VdirCollection.commit_whole): the watch follows the name to the new directory."""
    from syncd.vdir.storage import _exchange

    fd = I.Inotify()
    try:
        watch = RootWatch(str(vdir), fd, MARKER_PREFIX, _relevant_file)
        new = vdir / ".syncd-new-x.tmp"
        new.mkdir()
        (new / "a.ics").write_text("x")
        assert _exchange(str(new), str(vdir / "work"))
        drain(fd, watch)
        (vdir / "work" / "b.ics").write_text("x")
        got = drain(fd, watch)
        assert Change("path", f"{vdir}/work/b.ics") in got, got
        assert str(vdir / "work") in [fd_path for fd_path in _watched_paths(watch)]
    finally:
        fd.close()


def _watched_paths(watch: RootWatch) -> list[str]:
    return [f"{watch.root}/{name}" for name in watch.dirs.values()]


@linux_only
def test_the_kernel_ending_the_roots_watch(tmp_path):
    root = tmp_path / "vdir"
    root.mkdir()
    fd = I.Inotify()
    try:
        watch = RootWatch(str(root), fd, MARKER_PREFIX, _relevant_file)
        root.rename(tmp_path / "elsewhere")
        drain(fd, watch)
        assert watch.ended
    finally:
        fd.close()


@linux_only
def test_an_unwatchable_root_is_an_error(tmp_path):
    fd = I.Inotify()
    try:
        with pytest.raises(OSError) as caught:
            RootWatch(str(tmp_path / "absent"), fd, MARKER_PREFIX, _relevant_file)
        assert str(tmp_path / "absent") in str(caught.value)
    finally:
        fd.close()
