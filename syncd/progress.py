"""A one-line progress display for long passes, on stderr, only for a person at a terminal.

The engine calls ``Progress(done, total)`` as it works through a pass's items.  Nothing
is drawn when stderr is not a terminal, under systemd (``JOURNAL_STREAM`` or
``INVOCATION_ID`` set: the journal wants no carriage returns), with ``TERM=dumb``, or
for a pass that ends within ``delay`` seconds -- a quiet pass stays silent.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO


def wanted(stream: TextIO) -> bool:
    """True when a person is watching this stream."""
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """``label: 120/2000 items (6%), 340/s`` redrawn in place, at most every ``interval``."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        *,
        delay: float = 0.5,
        interval: float = 0.1,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = wanted(self.stream) if enabled is None else enabled
        self.delay = delay
        self.interval = interval
        self.clock = clock
        self.started: float | None = None
        self.last_draw: float | None = None
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self.started is None or done == 0:
            self.started = self.started if self.started is not None else now
            return
        if now - self.started < self.delay:
            return
        final = done >= total
        if not final and self.last_draw is not None and now - self.last_draw < self.interval:
            return
        self.last_draw = now
        elapsed = max(now - self.started, 1e-6)
        pct = 100 * done // total if total else 100
        text = f"{self.label}: {done}/{total} items ({pct}%), {done / elapsed:.0f}/s"
        self._write(f"\r{text}\x1b[K")
        self.drawn = True

    def finish(self) -> None:
        """Clear the line, so what follows starts clean."""
        if self.drawn:
            self._write("\r\x1b[K")
        self.drawn = False
        self.started = self.last_draw = None

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
