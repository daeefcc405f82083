"""Watching a vdir root with watchdog (inotify on Linux), feeding the daemon's scheduler.

watchdog calls us on its own thread; events cross into the event loop with an anyio
token.  What counts is decided by ``is_relevant`` (a pure function, tested alone):
only items, metadata files and collection directories; dot files (our temp files,
editors' swap files, .git) never.  Coalescing bursts is the scheduler's job.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

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


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, deliver: Callable[[str], None]) -> None:
        self.root = root
        self.deliver = deliver

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
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

    async def run(self) -> None:
        """Watch until cancelled.  A root that is missing now is waited for, not an error."""
        token = anyio.lowlevel.current_token()

        def deliver(path: str) -> None:
            if own_writes.is_echo(Path(path)):
                return
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                anyio.from_thread.run_sync(self.on_change, path, token=token)

        first = True
        while True:
            if not self.root.is_dir():
                log.warning("watch: %s is not there (unmounted?); waiting for it", self.root)
                while not self.root.is_dir():
                    await anyio.sleep(5)
            if not first:
                self.on_change(str(self.root))  # catch up with what happened meanwhile
            first = False
            await self._observe(deliver)

    async def _observe(self, deliver: Callable[[str], None]) -> None:
        observer = Observer()
        observer.schedule(_Handler(self.root, deliver), str(self.root), recursive=True)
        observer.start()
        log.info("watch: watching %s", self.root)
        try:
            while observer.is_alive() and self.root.is_dir():
                await anyio.sleep(2)
            log.warning("watch: lost the watch on %s", self.root)
        finally:
            observer.stop()
            await anyio.to_thread.run_sync(observer.join, 5)
