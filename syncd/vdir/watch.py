"""Watching a vdir root with watchdog (inotify on Linux), feeding the daemon's scheduler.

watchdog calls us on its own thread; events cross into the event loop with an anyio
token.  What counts is decided by ``is_relevant`` (a pure function, tested alone):
only items, metadata files and collection directories; dot files (our temp files,
editors' swap files, .git) never.  Coalescing bursts is the scheduler's job.

``trusted_since`` says from when the watch has seen every change under the root: the
moment inotify's watches were in place, moved forward whenever events may have been
lost (the kernel's queue overflowed, the watch ended, the root was replaced).  The
daemon skips the stat of every file in a pass the server asked for only when nothing
was reported since a pass that did look, started after that moment (syncd.daemon).
Other platforms' observers make no such promise here, nor does inotify on a network or
FUSE filesystem, where other machines' changes raise no event (syncd.vdir.mounts):
``trusted_since`` stays None.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

try:  # Linux: the one observer whose events are trusted to be complete (see above)
    from watchdog.observers.inotify import InotifyObserver
except ImportError:  # pragma: no cover - other platforms
    InotifyObserver = None  # type: ignore[assignment,misc]

from syncd.vdir.mounts import remote_filesystem
from syncd.vdir.storage import META_KEYS, own_writes

log = logging.getLogger("syncd.watch")


def is_relevant(root: Path, path: str | bytes, is_directory: bool) -> bool:
    """Does a change at ``path`` matter for syncing the vdir at ``root``?"""
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    if not parts or any(p.startswith(".") for p in parts):
        return False
    if len(parts) == 1:
        return is_directory  # a collection directory appeared or went away
    if len(parts) == 2 and not is_directory:
        name = parts[1]
        return name.endswith(".ics") or name in META_KEYS
    return False


# The barrier's marker: a dot file in the root, which no vdir reader looks at.
MARKER_PREFIX = ".syncd-marker-"
BARRIER_TIMEOUT = 5.0
_marker_numbers = itertools.count(1)


def marker_name(root: Path, path: str | bytes) -> str | None:
    """PURE.  The marker's name, when ``path`` is one of our markers in ``root``."""
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    head, _, name = path.rpartition("/")
    if name.startswith(MARKER_PREFIX) and head == str(root):
        return name
    return None


class _Handler(FileSystemEventHandler):
    def __init__(
        self, root: Path, deliver: Callable[[str], None], marker: Callable[[str], None]
    ) -> None:
        self.root = root
        self.deliver = deliver
        self.marker = marker

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type == "created" and (name := marker_name(self.root, event.src_path)):
            self.marker(name)
            return
        if event.is_directory and event.event_type == "modified":
            return  # a directory's mtime moves with every file in it; the file event counts
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and is_relevant(self.root, path, event.is_directory):
                self.deliver(path if isinstance(path, str) else path.decode(errors="replace"))


class VdirWatcher:
    """Calls ``on_change(path)`` in the event loop for each relevant change not made by us."""

    def __init__(self, root: Path, on_change: Callable[[str], None]) -> None:
        self.root = root
        self.on_change = on_change
        self._trusted_since: float | None = None  # time.monotonic()
        self._root_id: tuple[int, int] | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None
        self._markers: dict[str, anyio.Event] = {}  # markers written, not yet reported
        _watchers.add(self)

    @property
    def trusted_since(self) -> float | None:
        """When the watch began seeing every change under the root (None: it does not).
        Checks that the root is still the directory that is watched: one replaced
        (restored from a backup, recreated) is another inode, which inotify does not
        watch."""
        if self._trusted_since is None or _identity(self.root) != self._root_id:
            return None
        return self._trusted_since

    def events_lost(self) -> None:
        """Events may have been lost: trust the watch only from now on, and ask for a
        pass that looks at every file.  In the event loop."""
        self._trust_from_now()
        self.on_change(str(self.root))

    def _events_lost_from_thread(self) -> None:
        """``events_lost``, told on watchdog's thread (or, logged there, on the loop's)."""
        if threading.get_ident() == self._loop_thread:
            self.events_lost()
            return
        self._trust_from_now()
        token = self._token
        if token is not None:
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                anyio.from_thread.run_sync(self.on_change, str(self.root), token=token)

    async def barrier(self, timeout: float = BARRIER_TIMEOUT) -> bool:
        """Wait until the watch has reported every change made under the root before this
        call; False when it cannot say so (a watch not trusted, a root we cannot write
        to, a marker not reported in time), and the caller must look at every file.

        inotify queues a change's event as the change is made, in order, and watchdog
        hands them to the handler in that order, each one delivered into the event loop
        before the next (``anyio.from_thread.run_sync``).  So once a file made now is
        reported, so is everything made before it: a ``syncd sync`` right after a save
        finds the save among the daemon's reasons (syncd.control)."""
        if self.trusted_since is None:
            return False
        name = f"{MARKER_PREFIX}{os.getpid()}-{next(_marker_numbers)}"  # two pairs, one root
        path = self.root / name
        seen = self._markers[name] = anyio.Event()
        try:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except OSError as exc:
                log.info("watch: cannot write the marker %s (%s)", path, exc.strerror)
                return False
            with anyio.move_on_after(timeout):
                await seen.wait()
                return self.trusted_since is not None
            log.warning(
                "watch: the watcher did not report %s within %.0f s; this pass looks at every file",
                path,
                timeout,
            )
            return False
        finally:
            self._markers.pop(name, None)
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _marker_seen(self, name: str) -> None:
        seen = self._markers.get(name)
        if seen is not None:
            seen.set()

    def _trust_from_now(self) -> None:
        if self._trusted_since is not None:
            self._trusted_since = time.monotonic()

    async def run(self) -> None:
        """Watch until cancelled.  A root that is missing now is waited for, not an error."""
        token = self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()

        def deliver(path: str) -> None:
            if own_writes.is_echo(Path(path)):
                return
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                anyio.from_thread.run_sync(self.on_change, path, token=token)

        def marker(name: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                anyio.from_thread.run_sync(self._marker_seen, name, token=token)

        first = True
        while True:
            if not self.root.is_dir():
                log.warning("watch: %s is not there (unmounted?); waiting for it", self.root)
                while not self.root.is_dir():
                    await anyio.sleep(5)
            if not first:
                self.on_change(str(self.root))  # catch up with what happened meanwhile
            first = False
            await self._observe(deliver, marker)

    async def _observe(self, deliver: Callable[[str], None], marker: Callable[[str], None]) -> None:
        observer = Observer()
        observer.schedule(_Handler(self.root, deliver, marker), str(self.root), recursive=True)
        root_id = _identity(self.root)
        remote = remote_filesystem(self.root)
        observer.start()  # the watches are in place when this returns (on_thread_start)
        if remote is not None:
            log.info(
                "watch: watching %s, on %s: changes made there by other machines raise no "
                "event here, so every pass looks at every file",
                self.root,
                remote,
            )
        else:
            if InotifyObserver is not None and isinstance(observer, InotifyObserver):
                self._root_id, self._trusted_since = root_id, time.monotonic()
            log.info("watch: watching %s", self.root)
        try:
            while observer.is_alive() and _identity(self.root) == root_id is not None:
                await anyio.sleep(2)
            log.warning("watch: lost the watch on %s", self.root)
        finally:
            self._trusted_since = None
            observer.stop()
            await anyio.to_thread.run_sync(observer.join, 5)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# -- inotify queue overflow ---------------------------------------------------------------
# When the kernel's queue of events fills up (fs.inotify.max_queued_events, 16,384 by
# default: a big copy into the vdir while the watcher thread is slow), events are dropped.
# watchdog rebuilds its watches and logs a warning, but tells no handler; that warning
# is how the watchers here learn that they missed something.

_watchers: weakref.WeakSet[VdirWatcher] = weakref.WeakSet()
OVERFLOW_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


class _OverflowHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" not in str(record.msg).lower():
            return
        for watcher in list(_watchers):
            watcher._events_lost_from_thread()


def _hear_overflows() -> None:
    for name in OVERFLOW_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _OverflowHandler) for h in logger.handlers):
            logger.addHandler(_OverflowHandler(logging.WARNING))


_hear_overflows()
