"""One pass per pair at a time, whichever process runs it.

The daemon and a ``syncd sync`` started by hand (or a timer's, or a second daemon) would
otherwise run passes of the same pair at once: both see the same new file and both
create it on the server (Cyrus refuses the second with ``invalidProperties: uid``;
another server may keep two copies), and both plan against a journal the other is
changing.  So a pass holds an exclusive ``flock`` on ``state_dir/PAIR.lock`` from its
first read of the journal to its last write, and a second pass waits for it, saying
once whom it waits for.

``flock`` rather than a pid file: the kernel drops the lock when its holder exits, even
by SIGKILL or a crash, so there is never a stale lock to clean up.  The holder's pid is
written into the file only to name it in that message.  Where the filesystem cannot lock
(``ENOLCK``: some network filesystems), the pass goes ahead unlocked, with a warning: a
missed lock is the situation before this module, while refusing to sync would be worse.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/BSD/macOS
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("syncd.lock")

POLL_SECONDS = 0.2  # a waiting pass checks this often; the wait is an event-loop sleep


def lock_path(journal: Path) -> Path:
    """``state_dir/PAIR.lock`` next to the pair's journal ``state_dir/PAIR.sqlite3``."""
    return journal.with_suffix(".lock")


def holder(path: Path) -> str:
    """Who holds the lock, as the waiting message names it."""
    with contextlib.suppress(OSError):
        words = path.read_text().split()  # empty until the holder writes its pid
        if words and words[0].isdigit():
            return f"syncd process {words[0]}"
    return "another syncd process"


@contextlib.asynccontextmanager
async def pair_lock(
    path: Path, pair: str, on_wait: Callable[[str], None] | None = None
) -> AsyncIterator[None]:
    """Hold ``path`` exclusively for the body; wait (cancellably) while another holds it.

    ``on_wait`` gets the one message said when the pass has to wait."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        told = False
        locked = True
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    message = (
                        f"{pair}: waiting for the pass {holder(path)} is running on this pair "
                        f"(lock {path})"
                    )
                    log.info("%s", message)
                    if on_wait is not None:
                        on_wait(message)
                    told = True
                await anyio.sleep(POLL_SECONDS)
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                log.warning(
                    "%s: %s cannot be locked (%s); this pass runs without the lock that keeps "
                    "two syncd processes from syncing the pair at once",
                    pair,
                    path,
                    exc.strerror,
                )
                locked = False
                break
        if told:
            log.info("%s: the other pass is done; this one starts", pair)
        if locked:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # and with it the lock
