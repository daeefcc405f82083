"""Watching a vdir root, feeding the daemon's scheduler: on Linux with inotify read
directly (syncd.vdir.inotify, which says why not watchdog's observer there), elsewhere
with watchdog's observer.

Either way the events are read on a thread of their own and cross into the event loop
with an anyio token, in order.  What counts: only items, metadata files and collection
directories; dot files (our temp files, editors' swap files, .git) never (``is_relevant``
for watchdog's events, ``RootWatch`` for inotify's).  Coalescing bursts is the
scheduler's job.

``trusted_since`` says from when the watch has seen every change under the root: the
moment inotify's watches were in place, moved forward whenever events may have been
lost (the kernel's queue overflowed, the watch ended, the root was replaced); None while
a collection directory cannot be watched.  The
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
import select
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

from syncd.vdir import inotify
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
        if inotify.available():
            try:
                watch = inotify.Inotify()
            except OSError as exc:  # out of inotify instances (fs.inotify.max_user_instances)
                log.warning("watch: inotify: %s; watching through watchdog instead", exc.strerror)
            else:
                await self._observe_inotify(watch)
                return
        await self._observe_watchdog(deliver, marker)

    async def _observe_inotify(self, fd: inotify.Inotify) -> None:
        root_id = _identity(self.root)
        remote = remote_filesystem(self.root)
        try:
            watch = inotify.RootWatch(str(self.root), fd, MARKER_PREFIX, _relevant_file)
        except OSError as exc:
            fd.close()
            log.warning("watch: cannot watch %s (%s); retrying", self.root, exc.strerror)
            await anyio.sleep(5)
            return
        reader = _InotifyReader(fd, watch, self)
        reader.start()
        self._log_watching(remote)

        def trust() -> None:
            # Trusted while every collection directory is watched; a directory that could
            # not be watched (and is retried after an overflow) holds it back.
            if remote is None:
                self._set_trust(root_id, watch.complete)

        try:
            await self._hold(reader.is_alive, root_id, trust)
        finally:
            self._trusted_since = None
            reader.stop()
            await anyio.to_thread.run_sync(reader.join, 5)
            if not reader.is_alive():
                reader.close()
                fd.close()

    async def _hold(
        self,
        alive: Callable[[], bool],
        root_id: tuple[int, int] | None,
        tick: Callable[[], None] = lambda: None,
    ) -> None:
        """Until the watch ends, or the root is another directory than the one watched
        (``tick`` every 2 s meanwhile)."""
        while alive() and _identity(self.root) == root_id is not None:
            tick()
            await anyio.sleep(2)
        log.warning("watch: lost the watch on %s", self.root)

    def _set_trust(self, root_id: tuple[int, int] | None, complete: bool) -> None:
        if not complete:
            self._trusted_since = None
        elif self._trusted_since is None:
            self._root_id, self._trusted_since = root_id, time.monotonic()

    def _log_watching(self, remote: str | None) -> None:
        if remote is not None:
            log.info(
                "watch: watching %s, on %s: changes made there by other machines raise no "
                "event here, so every pass looks at every file",
                self.root,
                remote,
            )
        else:
            log.info("watch: watching %s", self.root)

    def _take(self, changes: list[inotify.Change]) -> None:
        """A batch of the inotify reader's changes, in the event loop, in their order."""
        for change in changes:
            if change.kind == "path":
                self.on_change(change.value)
            elif change.kind == "marker":
                self._marker_seen(change.value)
            else:
                self.events_lost()

    async def _observe_watchdog(
        self, deliver: Callable[[str], None], marker: Callable[[str], None]
    ) -> None:
        observer = Observer()
        observer.schedule(_Handler(self.root, deliver, marker), str(self.root), recursive=True)
        root_id = _identity(self.root)
        remote = remote_filesystem(self.root)
        observer.start()  # the watches are in place when this returns (on_thread_start)
        if remote is None and InotifyObserver is not None and isinstance(observer, InotifyObserver):
            self._root_id, self._trusted_since = root_id, time.monotonic()
        self._log_watching(remote)
        try:
            await self._hold(observer.is_alive, root_id)
        finally:
            self._trusted_since = None
            observer.stop()
            await anyio.to_thread.run_sync(observer.join, 5)


def _news(changes: list[inotify.Change]) -> list[inotify.Change]:
    """A batch's changes less syncd's own writes and the repeats of a path (a save is a
    create, writes and a close): a path once is as good as many, as it comes before any
    marker that came after its repeats."""
    out, told = [], set()
    for change in changes:
        if change.kind == "path":
            if change.value in told or own_writes.is_echo(change.value):
                continue
            told.add(change.value)
        out.append(change)
    return out


def _relevant_file(name: str) -> bool:
    return name.endswith(".ics") or name in META_KEYS


class _InotifyReader(threading.Thread):
    """Reads the kernel's events as they come, on a thread of its own, so that a busy
    event loop never lets the kernel's queue (fs.inotify.max_queued_events) fill up.  The
    changes of one read go into the loop in one call, in order, and syncd's own writes
    (``own_writes``) are left out here, where they cost the loop nothing."""

    PAUSE = 0.005  # after a batch: a burst's events then come in a few reads, not thousands

    def __init__(self, fd: inotify.Inotify, watch: inotify.RootWatch, watcher: VdirWatcher) -> None:
        super().__init__(name="syncd-inotify", daemon=True)
        self.fd, self.watch, self.watcher = fd, watch, watcher
        self.token = anyio.lowlevel.current_token()
        self._wake_r, self._wake_w = os.pipe()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.fd.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self.watch.ended:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready:
                    return
                changes = _news(self.watch.changes(self.fd.read(self.watch.dirs)))
                if any(c.kind == "lost" for c in changes):
                    self.watcher._trust_from_now()  # before the loop hears of it
                if changes:
                    with contextlib.suppress(RuntimeError):  # the loop is shutting down
                        anyio.from_thread.run_sync(self.watcher._take, changes, token=self.token)
                time.sleep(self.PAUSE)
        except OSError as exc:
            log.warning("watch: reading inotify's events failed (%s)", exc.strerror)
        except Exception:  # the watch is taken up again; the loop's _hold sees this thread end
            log.exception("watch: the inotify reader stopped")

    def close(self) -> None:
        """After ``join``, the wake-up pipe.  Not closed by the thread as it ends: a
        ``stop`` coming after that could write into whatever file took the number."""
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# -- inotify queue overflow, through watchdog ----------------------------------------------
# When the kernel's queue of events fills up (fs.inotify.max_queued_events, 16,384 by
# default: a big copy into the vdir while the watcher thread is slow), events are dropped.
# Read directly (syncd.vdir.inotify) that is an IN_Q_OVERFLOW event.  watchdog's observer,
# used where inotify cannot be read directly, rebuilds its watches and logs a warning, but
# tells no handler; that warning is how the watchers here learn that they missed something.

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
