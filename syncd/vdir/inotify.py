"""Linux's inotify, read directly: which paths under a vdir root changed, in order, and
whether the kernel dropped events (syncd.vdir.watch turns that into passes).

Why not watchdog's observer on Linux: it pairs each IN_MOVED_FROM with its IN_MOVED_TO
by scanning its queue of pending events from the front (``watchdog.utils.delayed_queue``),
on three threads of its own that compete with the pass for the interpreter.  A daemon
pass writes each file as a temp file renamed into place, so a first download of 10,000
events is 10,000 renames the watcher must read: watchdog fell thousands of events behind,
each scan grew with the backlog, and the pass took 9-12 s against 3 s without a watcher
(session 21).  The watcher needs none of that: only the changed paths, cheap to skip when
they are syncd's own temp files, and the kernel's word when events were lost, which
IN_Q_OVERFLOW says directly (watchdog only logs it).

What is watched: the root (collection directories appearing, going, renamed; the barrier's
marker files) and each collection directory in it (item and metadata files).  Nothing
deeper, and no dot directory: nothing there is synced.  ``parse`` and ``RootWatch.changes``
are pure over what the kernel said; ``Inotify`` is the thin I/O under them."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
import os
import struct
import sys
from collections.abc import Callable, Container, Iterable
from typing import NamedTuple, Protocol

log = logging.getLogger("syncd.watch")

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000

ROOT_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
ROOT_MASK |= IN_ONLYDIR
# IN_MODIFY as well as IN_CLOSE_WRITE: a program may write a file and keep it open.
COLLECTION_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE
COLLECTION_MASK |= IN_MODIFY | IN_ATTRIB | IN_ONLYDIR
_ROOT_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT
_APPEARS = IN_CREATE | IN_MOVED_TO
_GOES = IN_DELETE | IN_MOVED_FROM

READ_BYTES = 1 << 18  # one read takes up to about 4,000 events of 64 bytes
_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name


class Event(NamedTuple):
    wd: int
    mask: int
    cookie: int
    name: str


def parse(buffer: bytes, hidden_from: Container[int] = ()) -> list[Event]:
    """PURE.  The events in the bytes of one ``read`` of an inotify descriptor (the name
    is NUL-padded; a name the file system gives in another encoding is surrogate-escaped,
    as ``os.listdir`` gives it).

    Events that name a dot file in a watch of ``hidden_from`` (the collection
    directories, where ``RootWatch`` ignores dot files) are left out unread: syncd's
    temp files make four of the five events of each file it writes, and a daemon's first
    download of 10,000 events read 50,000 on a thread that takes the GIL from the pass."""
    events = []
    pos, end, size = 0, len(buffer), _HEADER.size
    while pos + size <= end:
        wd, mask, cookie, length = _HEADER.unpack_from(buffer, pos)
        pos += size
        if length and pos < end and buffer[pos] == _DOT and wd in hidden_from:
            pos += length
            continue
        raw = buffer[pos : pos + length]
        pos += length
        events.append(Event(wd, mask, cookie, os.fsdecode(raw.rstrip(b"\0"))))
    return events


_DOT = ord(".")


class Change(NamedTuple):
    """One thing ``RootWatch.changes`` found, in the kernel's order: ``path`` changed,
    a ``marker`` (the barrier's file, by name) was made, or events were ``lost``."""

    kind: str  # "path", "marker" or "lost"
    value: str


class Watches(Protocol):
    def add_watch(self, path: str, mask: int) -> int: ...
    def rm_watch(self, wd: int) -> None: ...


class RootWatch:
    """The watches on one vdir root and its collection directories, and what their events
    mean.  ``complete`` is False while some collection directory could not be watched
    (out of inotify watches, no permission): changes there go unseen, so the watch must
    not vouch for the vdir."""

    def __init__(
        self,
        root: str,
        watches: Watches,
        marker_prefix: str,
        relevant_file: Callable[[str], bool],
    ) -> None:
        self.root = root.rstrip("/") or "/"
        self.watches = watches
        self.marker_prefix = marker_prefix
        self.relevant_file = relevant_file
        self.dirs: dict[int, str] = {}  # wd -> collection directory's name
        self.unwatched: set[str] = set()  # collection directories that could not be watched
        self.root_wd = watches.add_watch(self.root, ROOT_MASK)
        self.ended = False
        self.watch_all()

    @property
    def complete(self) -> bool:
        return not self.unwatched and not self.ended

    def watch_all(self) -> None:
        """Watch every collection directory not watched yet (at the start, and after an
        overflow, when a directory made meanwhile may have gone unseen)."""
        watched = set(self.dirs.values())
        try:
            names = os.listdir(self.root)
        except OSError:
            return  # the root itself is gone: its own events say so
        for name in sorted(names):
            if name not in watched and not name.startswith(".") and self._is_dir(name):
                self._watch(name)

    def _is_dir(self, name: str) -> bool:
        """A collection directory as VdirRoot.collections() has them: a directory, or a
        link to one inside the root (a link leading out of it is no collection)."""
        path = f"{self.root}/{name}"
        if not os.path.isdir(path):
            return False
        if not os.path.islink(path):
            return True
        inside = os.path.realpath(self.root).rstrip("/") + "/"
        return os.path.realpath(path).startswith(inside)

    def _watch(self, name: str) -> bool:
        try:
            wd = self.watches.add_watch(f"{self.root}/{name}", COLLECTION_MASK)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return False  # gone again, or not a directory: its own event follows
            if name not in self.unwatched:
                log.warning(
                    "watch: cannot watch %s/%s (%s); changes there are found by the passes "
                    "that look at every file%s",
                    self.root,
                    name,
                    exc.strerror,
                    " (raise fs.inotify.max_user_watches)" if exc.errno == errno.ENOSPC else "",
                )
            self.unwatched.add(name)
            return False
        self.unwatched.discard(name)
        # A directory renamed onto a watched name keeps its own watch: one wd, one name.
        for old in [w for w, n in self.dirs.items() if n == name and w != wd]:
            del self.dirs[old]
        self.dirs[wd] = name
        return True

    def _unwatch(self, name: str) -> None:
        self.unwatched.discard(name)
        for wd in [w for w, n in self.dirs.items() if n == name]:
            del self.dirs[wd]
            with contextlib.suppress(OSError):  # already gone with its directory
                self.watches.rm_watch(wd)

    def changes(self, events: Iterable[Event]) -> list[Change]:
        """What the events mean, in their order.  Adds and removes watches as collection
        directories come and go; sets ``ended`` when the root's own watch is gone (the
        root was removed, renamed, unmounted), after which nothing more is reported."""
        out: list[Change] = []
        root, dirs, relevant_file = self.root, self.dirs, self.relevant_file
        moving: dict[int, str] = {}  # cookie -> a watched directory's name, moved from
        for ev in events:
            if self.ended:
                break
            mask, name = ev.mask, ev.name
            if mask & IN_Q_OVERFLOW:
                out.append(Change("lost", root))
                self.watch_all()
                continue
            if ev.wd == self.root_wd:
                if mask & _ROOT_GONE:
                    self.ended = True
                    break
                if not name:
                    continue
                if name.startswith("."):
                    if mask & IN_CREATE and name.startswith(self.marker_prefix):
                        out.append(Change("marker", name))
                    continue
                if mask & IN_MOVED_TO and ev.cookie in moving:
                    # Renamed within the root: the directory keeps its watch, under its
                    # new name (its events queued after the rename are its new name's).
                    old = moving.pop(ev.cookie)
                    self._unwatch(name)  # a directory it replaced, if any
                    for wd in [w for w, n in dirs.items() if n == old]:
                        dirs[wd] = name
                    out.append(Change("path", f"{root}/{name}"))
                elif mask & _APPEARS and (mask & IN_ISDIR or self._is_dir(name)):
                    self._watch(name)
                    out.append(Change("path", f"{root}/{name}"))
                elif mask & _GOES and (mask & IN_ISDIR or name in dirs.values()):
                    if mask & IN_MOVED_FROM and name in dirs.values():
                        moving[ev.cookie] = name  # its IN_MOVED_TO follows if it stays
                    else:
                        self._unwatch(name)
                    out.append(Change("path", f"{root}/{name}"))
                continue
            coll = dirs.get(ev.wd)
            if coll is None:
                continue  # a watch removed since the event was queued
            if mask & IN_IGNORED:
                del dirs[ev.wd]  # the directory went; the root's event reported it
                continue
            if not name or name.startswith(".") or mask & IN_ISDIR or not relevant_file(name):
                continue
            out.append(Change("path", f"{root}/{coll}/{name}"))
        for name in moving.values():  # moved out of the root, or to a dot name
            # A directory may have taken the name meanwhile (one swapped in for it,
            # VdirCollection.commit_whole): the name's watch then stays, on it.
            if not (self._is_dir(name) and self._watch(name)):
                self._unwatch(name)
        return out


class Inotify:
    """One inotify descriptor (non-blocking, close-on-exec): the thin I/O under RootWatch."""

    def __init__(self) -> None:
        libc = _libc()
        if libc is None:
            raise OSError(errno.ENOSYS, "inotify is not available on this system")
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise _error(ctypes.get_errno(), "inotify_init1")
        self.fd = fd
        self._libc = libc

    def add_watch(self, path: str, mask: int) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise _error(ctypes.get_errno(), path)
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        if self._libc.inotify_rm_watch(self.fd, wd) < 0:
            raise _error(ctypes.get_errno(), f"watch {wd}")

    def read(self, hidden_from: Container[int] = ()) -> list[Event]:
        """The events waiting now; none if there are none (it never blocks).
        ``hidden_from``: as ``parse`` has it."""
        try:
            return parse(os.read(self.fd, READ_BYTES), hidden_from)
        except BlockingIOError:
            return []

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _error(number: int, what: str) -> OSError:
    return OSError(number, os.strerror(number), what)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


def available() -> bool:
    return _libc() is not None
