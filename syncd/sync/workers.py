"""Where the worker processes of a big pass come from, and how many there are.

Conversion workers (syncd.sync.prepare) and parsing workers (syncd.sync.readahead) are
forked by one ``forkserver``: forking the main process itself is not safe once it has
threads, and a forkserver starts clean with the converters already loaded.  Kept apart
from the pools so that ``syncd sync`` can start the forkserver before it loads the sync
code (``start_forkserver``): this module costs only multiprocessing's own import.
Every worker ends with the pass it works for, even one killed outright (``end_with``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import select
import threading
import time
from typing import Any

from syncd.gctune import collect_rarely

log = logging.getLogger("syncd.workers")

ENV_WORKERS = "SYNCD_WORKERS"  # how many worker processes; "0": none
WORKER_NICENESS = 10  # added to the workers' nice value (see start_worker)

# What the workers' forkserver loads before it forks any: the file writer, which loads
# the parser too (syncd.convert.ical_in), so that the parsing workers of a first pass
# over a full vdir (syncd.sync.readahead) and the conversion workers of a download come
# ready from the same forkserver, whichever pool started it.
FORKSERVER_PRELOAD = ["syncd.convert.ical_out"]


def forkserver_context() -> Any:
    """The multiprocessing context every worker pool comes from."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


def start_forkserver() -> bool:
    """Start the workers' forkserver now, for a command that is about to run a pair's
    first pass.  It is a new interpreter loading the converters, about 0.15 s of CPU: by
    the time the pass begins (``Preparer.start_early``), ``syncd sync`` has spent 0.05 s
    more on one core loading the sync code and connecting, while the other core had
    nothing to do.  Started here it takes that idle time, and the first page's objects
    no longer wait for the workers.  It costs this process about 4 ms (two spawns); a
    first pass that turns out small leaves it unused, as ``start_early`` would.  False
    when there will be no workers, or it could not start (the pass starts it later, or
    converts here)."""
    if worker_count() < 2:
        return False
    try:
        forkserver_context()
        from multiprocessing import forkserver

        forkserver.ensure_running()
    except (OSError, RuntimeError, ImportError, ValueError) as exc:
        log.info("the conversion workers' forkserver did not start early (%s)", exc)
        return False
    return True


def worker_count() -> int:
    """Worker processes for a big batch: one per usable core (0: not worth a pool)."""
    wanted = os.environ.get(ENV_WORKERS, "")
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    n = int(wanted) if wanted.isdigit() else cpus
    return min(n, 8) if n >= 2 else 0


def start_worker(parent: int) -> None:
    """A worker's start (every pool's ``initializer``, with ``os.getpid()`` of the pass):
    the converters loaded (already, where the forkserver preloaded them), reference
    cycles collected rarely (syncd.gctune: a worker lives for one pass), a lower priority
    than the main process, and an end of its own when that process is gone.

    The priority: the main process writes every file the workers make, and its writes
    after the last page are the one part of a first download that runs on one core:
    given the CPU first while the workers convert, it keeps up with them instead of
    finishing alone (20 alternating first downloads of 10,000 events: 4.91 s against
    5.38 s).  It also leaves the rest of the machine its share while a big pass
    converts."""
    for module in FORKSERVER_PRELOAD:
        importlib.import_module(module)
    collect_rarely()
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    end_with(parent)


def end_with(parent: int, poll: float = 1.0) -> None:
    """End this process as soon as ``parent`` is gone.  A pool's worker waits on its task
    queue, of which it holds the writing end too (multiprocessing hands a queue over
    whole), so the workers of a pass killed outright (``kill -9``, the OOM killer, a
    stop timeout) waited forever; and with them the forkserver, which lives while any
    process holds its ``alive`` pipe, as every worker does: three idle processes, about
    100 MB, left by each such kill.  A thread waits on the parent's pidfd (polls its pid
    where there is none) and ends the process; a worker has nothing of its own to save."""
    try:
        watched: int | None = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(0)  # gone before this worker started
    except (AttributeError, OSError):  # no pidfd (Linux before 5.3, other systems)
        watched = None

    def watch() -> None:
        if watched is not None:
            select.select([watched], [], [])
        else:
            while _alive(parent):
                time.sleep(poll)
        os._exit(0)

    threading.Thread(target=watch, name="syncd-end-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has the pid now
        return False
    return True
