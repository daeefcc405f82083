"""How often the cycle collector runs in processes that make many objects quickly.

A first download parses 10,000 server objects that live until the pass ends, and its
conversion workers build and drop hundreds of thousands of small ones.  At CPython's
default (a collection of the youngest generation every 700 allocations, of all of them
every hundred of those) the collector walked the pass's objects again and again: 0.21 s
of the main process in one 10,000-event first download (three full collections and 31
middle ones), and 15 % of a conversion worker's CPU (1.82 against 1.55 s for 10,000
events in process).  These objects form almost no reference cycles; reference counting
frees them.  mypy raises its threshold for the same reason.

Only for processes that end with their work: ``syncd sync`` for the length of its pass,
and the conversion workers, which live for one pass.  The daemon keeps the default.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

THRESHOLD = 100_000  # allocations between two collections of the youngest generation


def collect_rarely() -> None:
    """For the rest of this process."""
    gc.set_threshold(THRESHOLD, *gc.get_threshold()[1:])


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """For the length of the block; the threshold before it is put back after."""
    before = gc.get_threshold()
    collect_rarely()
    try:
        yield
    finally:
        gc.set_threshold(*before)
