"""One stat of every item in a collection directory, as a fingerprint (syncd.vdir.look).

This is the whole of what a quiet ``syncd sync`` does per file, and it runs in a child
forked while the command starts up (syncd.vdir.prefetch), so it is kept to what the
child must import (no syncd.vdir.storage: 25 ms of imports the child would pay before
its first stat) and to as little Python per file as the stat allows.  At 50,000 files
the ``lstat`` calls are about 150 ms of the child's 200; listing, sorting and hashing
the rest.  From ``SPLIT_MIN`` items on, a helper process stats the second half while
the child stats the first: on two cores, 12-20 ms less of a quiet pass at 50,000
items, which waits for the child (contrib/bench/README.md, Session 13).

``look`` answers None wherever ``VdirCollection.list`` has more to do than stat (a
symlink to follow and check, a temp file that may be stale, a file that vanished
between listing and stat, a name the fingerprint cannot hold), and the pass then takes
that slower path, which also reports what it skips.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
import threading
from array import array
from collections.abc import Callable
from pathlib import Path

from syncd.vdir.fingerprint import Look, encode, of_data

_FILE_TYPE = 0o170000  # the S_IFMT bits of st_mode
TEMP_PREFIX, TEMP_SUFFIX = ".syncd-", ".tmp"  # syncd.vdir.storage's temp files
STAT_CHUNK = 4096
SPLIT_MIN = 8192  # from this many items, a helper process stats the second half


def look(directory: Path | str) -> Look | None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        names = os.listdir(fd)
        items = [name for name in names if name[-4:] == ".ics" and name[0] != "."]
        if len(items) < len(names) and any(
            name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) for name in names
        ):
            return None
        items.sort()
        if len(items) >= SPLIT_MIN and threading.active_count() == 1:
            half = len(items) // 2
            second = _in_helper(fd, items[half:])
            stats = _stat_items(fd, items[:half])
            more = second()
            if stats is None or more is None:
                return None
            for column, rest in zip(stats, more, strict=True):
                column.extend(rest)  # type: ignore[attr-defined]
        else:
            stats = _stat_items(fd, items)
        if stats is None:
            return None
    finally:
        os.close(fd)
    data = encode(*stats)
    return None if data is None else Look(of_data(data), data)


_Stats = tuple[list[str], array, array, array]  # kept names, mtimes, sizes, inodes


def _stat_items(fd: int, items: list[str]) -> _Stats | None:
    """The ``lstat`` of each of ``items`` (in that order), the regular files kept; None
    where ``list`` would have more to do (a symlink, a file gone, a value too big)."""
    kept: list[str] = []
    mtimes, sizes, inodes = array("q"), array("q"), array("Q")
    lstat = os.lstat
    # A chunk at a time: 50,000 stat results at once would be 20 MB more in the child.
    for start in range(0, len(items), STAT_CHUNK):
        chunk = items[start : start + STAT_CHUNK]
        try:
            stats = [lstat(name, dir_fd=fd) for name in chunk]
        except OSError:
            return None
        # Fields by index where a stat result has one (st[0] is st_mode, st[1] st_ino,
        # st[6] st_size): 8 ms less than by name at 50,000 files.
        kinds = {st[0] & _FILE_TYPE for st in stats}
        if stat.S_IFLNK in kinds:
            return None
        if kinds - {stat.S_IFREG}:  # a directory or fifo named *.ics: no item, as in list()
            regular = [i for i, st in enumerate(stats) if st[0] & _FILE_TYPE == stat.S_IFREG]
            chunk = [chunk[i] for i in regular]
            stats = [stats[i] for i in regular]
        kept += chunk
        try:
            mtimes.extend([st.st_mtime_ns for st in stats])
            sizes.extend([st[6] for st in stats])
            inodes.extend([st[1] for st in stats])
        except OverflowError:
            return None
    return kept, mtimes, sizes, inodes


def _in_helper(fd: int, items: list[str]) -> Callable[[], _Stats | None]:
    """``_stat_items`` of ``items`` in a forked helper process, while the caller stats
    the rest: the ``lstat`` calls are most of a big look, and the pass that waits for
    the look has a core free by then.  Only from a process with one thread (the
    fingerprint child): a fork copies only the calling thread, and a lock another
    thread held would stay held in the helper.  Returns a function that waits for the result;
    None from it (a helper that failed in any way) means no fingerprint, and the pass
    looks at the directory itself."""
    try:
        read_fd, write_fd = os.pipe()
    except OSError:
        return lambda: None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return lambda: None
    if pid == 0:  # pragma: no cover - the helper; checked through what it sends
        try:
            os.close(read_fd)
            data = pickle.dumps(_stat_items(fd, items), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
        finally:
            os._exit(0)
    os.close(write_fd)

    def result() -> _Stats | None:
        try:
            with os.fdopen(read_fd, "rb") as pipe:
                data = pipe.read()
            got = pickle.loads(data)  # from this process's own fork, over its own pipe
        except Exception:  # noqa: BLE001 - a failed helper only means no fingerprint
            got = None
        finally:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        return got if isinstance(got, tuple) else None

    return result


def plain_collections(root: Path | str) -> list[str]:
    """The root's collection directories that need no checks: not dot-prefixed, not a
    symlink (one leading inside the root is still a collection; ``VdirRoot`` checks it,
    and the pass looks at it itself)."""
    with os.scandir(root) as it:
        return sorted(
            entry.name
            for entry in it
            if entry.name[0] != "." and entry.is_dir(follow_symlinks=False)
        )
