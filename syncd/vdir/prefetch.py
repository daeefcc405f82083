"""Directory fingerprints computed by a forked child while ``syncd sync`` starts up.

A pass with nothing to do must still stat every file (an edit made in place moves no
directory's mtime), and at 50,000 files that is 0.3 s of Python: as long as the rest
of the pass.  The stat does not need the network, the journal or the converters, so a
child forked right after the arguments are parsed (with the roots an earlier run
remembered; else right after the configuration is read) does it on the other core while
this process loads, connects and asks the server for changes.  What comes back is
one ``Look`` per collection directory: its fingerprint (syncd.vdir.fingerprint), which
the pass compares with the journal's, and the listing it hashes, which a pass that finds
them different compares file by file instead of stat'ing every file again.

Using a value taken a moment before the pass looks is the same as the pass having
looked at that moment: an edit made since is in the next pass's fingerprint, and a
write by this pass to a file edited since is refused by its etag check.  What would
make a value wrong is this process itself changing the directory after the fork (a
crashed pass's intents being settled, an earlier pair's pass), so a write recorded in
``own_writes`` since the fork retires the value of the directory it was made in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.paths import default_cache_dir, default_config_path
from syncd.records import read_record, write_record
from syncd.vdir.fingerprint import Look
from syncd.vdir.look import look, plain_collections

if TYPE_CHECKING:  # imported by the pass, after the fork
    from syncd.vdir.storage import VdirCollection

log = logging.getLogger(__name__)

_child: _Child | None = None


class _Child:
    """The parent's end of the pipe.  The child writes two messages: every directory's
    fingerprint, then every directory's listing.  A pass reads the second only if a
    fingerprint differs from the journal's; otherwise ``stop`` ends the child unread."""

    def __init__(self, pid: int, fd: int, writes_at_fork: dict[str, int]) -> None:
        self.pid = pid
        self.fd: int | None = fd
        self.writes_at_fork = writes_at_fork
        self.found: dict[str, int | None] | None = None  # directory -> fingerprint
        self.listings: dict[str, bytes] | None = None  # directory -> Look.data

    def fingerprints(self) -> dict[str, int | None]:
        """The child's fingerprints, waiting for them; {} if it failed in any way."""
        if self.found is None:
            got = self._message()
            self.found = got if isinstance(got, dict) else {}
        return self.found

    def listing_data(self, directory: str) -> bytes | None:
        if self.listings is None:
            self.fingerprints()
            got = self._message()
            self.listings = got if isinstance(got, dict) else {}
            self.close()
        return self.listings.get(directory)

    def _message(self) -> object:
        """One length-prefixed pickle from the child; None (and the pipe closed) if
        there is none to be had."""
        if self.fd is None:
            return None
        try:
            size = int.from_bytes(_read_exactly(self.fd, _LENGTH_BYTES), "little")
            # From this process's own fork, over a pipe only the two of them hold.
            return pickle.loads(_read_exactly(self.fd, size))
        except Exception:  # noqa: BLE001 - a failed child only means looking here
            self.close()
            return None

    def close(self) -> None:
        """Close the pipe and reap the child.  One still looking, or blocked writing
        listings nobody will read, is killed: it only ever reads the disk."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (a SIGCHLD handler): its pid
                return  # may be another process's by now, so it is not signalled
            if not done:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                _reap(self.pid)


_LENGTH_BYTES = 8


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the fingerprint child ended early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(_LENGTH_BYTES, "little") + data)
    while view:
        view = view[os.write(fd, view) :]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # reaped already (a SIGCHLD handler)
        os.waitpid(pid, 0)


def _looks(roots: Iterable[Path]) -> dict[str, Look | None]:
    """What the child sends back: the ``Look`` of every plain collection directory.  A
    root or directory it cannot read, or a symlinked collection, is left out: the pass
    looks at those itself, and reports what is wrong with them."""
    out: dict[str, Look | None] = {}
    for root in roots:
        try:
            names = plain_collections(root)
        except OSError:
            continue
        for name in names:
            path = Path(root) / name
            try:
                out[str(path)] = look(path)
            except OSError:
                continue
    return out


def start(roots: Iterable[Path]) -> bool:
    """Fork the child that fingerprints every collection directory under ``roots``.

    Not where another thread runs (a fork copies only the calling thread, and whatever
    lock another one held stays held in the child) or where fork does not exist."""
    global _child
    roots = list(roots)
    if _child is not None or not roots or not hasattr(os, "fork"):
        return False
    if threading.active_count() > 1:
        return False
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        log.debug("no fingerprint child: %s", exc)
        return False
    if pid == 0:  # pragma: no cover - the child; its work is checked through the parent
        try:
            os.close(read_fd)
            looks = _looks(roots)
            _send(write_fd, {key: look and look.fingerprint for key, look in looks.items()})
            _send(write_fd, {key: look.data for key, look in looks.items() if look})
        finally:
            os._exit(0)  # no atexit handlers, no flushing of the parent's buffers
    os.close(write_fd)
    storage = sys.modules.get("syncd.vdir.storage")  # not loaded yet: nothing written yet
    _child = _Child(pid, read_fd, dict(storage.own_writes.writes_in) if storage else {})
    return True


REMEMBERED_CONFIGS = 16  # configuration files whose roots are kept (tests make many)


def _roots_file() -> Path:
    return default_cache_dir() / "roots.json"


def _stamp(config_path: Path) -> list[int]:
    st = os.stat(config_path)
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def _config_key(config_path: Path | None) -> Path:
    return Path(os.path.abspath(config_path or default_config_path()))


def start_early(config_path: Path | None, pairs: list[str]) -> bool:
    """Fork the child before the configuration is loaded (yaml and the configuration's
    checks take 40-60 ms, which the child would otherwise wait for), with the vdir roots
    an earlier run remembered for this very configuration file (same mtime, size and
    inode).  A stale or missing record only means no early start: the child's values are
    asked for by directory path, and a path it did not look at is looked at here."""
    try:
        config = _config_key(config_path)
        entry = read_record(_roots_file())[str(config)]
        if entry["stamp"] != _stamp(config):
            return False
        roots = entry["roots"]
        names = pairs or list(roots)
        if any(name not in roots for name in names):
            return False
        return start(Path(roots[name]) for name in names)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def remember_roots(config_path: Path, roots: dict[str, Path]) -> None:
    """Keep the pairs' vdir roots for the next ``start_early`` (paths only, no secrets)."""
    try:
        config = _config_key(config_path)
        record = {"stamp": _stamp(config), "roots": {k: str(v) for k, v in roots.items()}}
        target = _roots_file()
        known = read_record(target)
        if known.get(str(config)) == record:
            return
        known.pop(str(config), None)
        known[str(config)] = record  # last: the oldest of too many are dropped first
        for stale in list(known)[:-REMEMBERED_CONFIGS]:
            del known[stale]
        write_record(target, known)
    except OSError as exc:  # a read-only home: no early start, nothing else
        log.debug("could not remember the vdir roots: %s", exc)


def started() -> bool:
    return _child is not None


def directory_look(vdir: VdirCollection) -> Look | None:
    """The collection's ``Look``: the child's where it has one that is still good, else
    taken here.  Each of the child's is used once."""
    from syncd.vdir.storage import own_writes

    child = _child
    if child is not None:
        key = str(vdir.path)
        value = child.fingerprints().pop(key, None)
        written = own_writes.writes_in.get(key, 0)
        if value is not None and written == child.writes_at_fork.get(key, 0):
            return Look(value, fetch=lambda: child.listing_data(key))
    return vdir.look()


def stop() -> None:
    """End the child and forget its values (at the end of ``syncd sync``; tests)."""
    global _child
    child, _child = _child, None
    if child is not None:
        child.close()
