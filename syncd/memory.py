"""Giving back the memory of a big pass, for the daemon, which lives on after it.

After a first download of 10,000 events the daemon stayed at the 130 MB it peaked at,
idle, for days: CPython had freed the pass's objects, but glibc's allocator keeps a freed
heap for the process's next allocations, and returns it only when asked
(``malloc_trim``).  Asked after the pass, it gives back 40-70 MB of that.  A pass of
a few changes grows nothing, so only a pass after which the process is much bigger than
before it pays for the collection and the trim (tens of milliseconds)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import sys
from collections.abc import Callable

log = logging.getLogger("syncd.memory")

GROWTH = 32 << 20  # bytes of resident memory a pass added before it is worth giving back


def resident() -> int | None:
    """This process's resident set now, in bytes; None where it cannot be read cheaply."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def after_pass(before: int | None) -> None:
    """Give memory back if the pass that began at ``before`` (``resident()``) grew the
    process by GROWTH or more."""
    if before is None:
        return
    now = resident()
    if now is None or now - before < GROWTH:
        return
    give_back()
    later = resident()
    if later is not None:
        log.debug("memory: %d MB after the pass, %d MB given back", now >> 20, (now - later) >> 20)


def stop_forkserver() -> bool:
    """Stop the conversion workers' forkserver and its resource tracker, if they run.
    They are two interpreters (one with the converter loaded), about 40 MB resident
    together, that multiprocessing keeps for the life of the process that started them:
    a daemon kept them for days after its first download.  The daemon stops them when no
    pass is running (its pools are all shut down then); the next big pass starts others
    (about 0.13 s, on the other core).  Through multiprocessing's own stops, which its
    tests use (``ForkServer._stop``, ``ResourceTracker._stop``): where they are missing or
    fail, the processes stay, as before.  True if a forkserver was stopped."""
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    if getattr(server, "_forkserver_pid", None) is None or not _stopped(server):
        return False
    tracker = getattr(
        sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None
    )
    if getattr(tracker, "_pid", None) is not None:
        _stopped(tracker)
    return True


def _stopped(process_owner: object) -> bool:
    stop = getattr(process_owner, "_stop", None)
    if stop is None:
        return False
    try:
        stop()
    except Exception as exc:  # noqa: BLE001 - only memory is at stake
        log.debug("memory: %s could not be stopped (%s)", type(process_owner).__name__, exc)
        return False
    return True


def give_back() -> None:
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim; None elsewhere (musl, macOS: their allocators differ)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]
