"""How often the cycle collector runs in processes that make many objects quickly.

A first download parses 10,000 server objects that live until the pass ends, and its
conversion workers build and drop hundreds of thousands of small ones.  At CPython's
default (a collection of the youngest generation every 700 allocations, of all of them
every hundred of those) the collector walked the pass's objects again and again: 0.21 s
of the main process in one 10,000-event first download (three full collections and 31
middle ones), and 15 % of a conversion worker's CPU (1.82 against 1.55 s for 10,000
events in process).  These objects form almost no reference cycles; reference counting
frees them.  mypy raises its threshold for the same reason.

For the length of a pass: ``syncd sync``'s, and each of the daemon's (whose first
download of 10,000 events spent 0.42 s in 443 collections, against 0.06 s for
``syncd sync``'s); between passes the daemon keeps the default, so that what a long life
leaves in cycles is still collected as usual, and after a big pass it collects once
(syncd.memory).  The conversion workers, which live for one pass, for all of it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

THRESHOLD = 100_000  # allocations between two collections of the youngest generation


def collect_rarely() -> None:
    """For the rest of this process."""
    gc.set_threshold(THRESHOLD, *gc.get_threshold()[1:])


_holders = 0  # blocks inside rare_collections() now (the daemon's pairs pass at once)
_before: tuple[int, ...] = ()  # the threshold the first of them found


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """For the length of the block; the threshold before it is put back when the last
    block that overlaps it ends (two pairs' passes may overlap, and the one ending first
    must not put the default back under the other).  For one thread's blocks: the
    daemon's event loop, or ``syncd sync``'s main thread."""
    global _holders, _before
    if _holders == 0:
        _before = gc.get_threshold()
        collect_rarely()
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0:
            gc.set_threshold(*_before)
