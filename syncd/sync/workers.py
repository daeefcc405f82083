"""Where the worker processes of a big pass come from, and how many there are.

Conversion workers (syncd.sync.prepare) and parsing workers (syncd.sync.readahead) are
forked by one ``forkserver``: forking the main process itself is not safe once it has
threads, and a forkserver starts clean with the converters already loaded.  Kept apart
from the pools so that ``syncd sync`` can start the forkserver before it loads the sync
code (``start_forkserver``): this module costs only multiprocessing's own import.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("syncd.prepare")

ENV_WORKERS = "SYNCD_WORKERS"  # how many worker processes; "0": none
WORKER_NICENESS = 10  # added to the workers' nice value (syncd.sync.prepare._start_worker)

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
