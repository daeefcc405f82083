"""Run in a worker process: which modules it had loaded before this one.  Kept apart from
the test modules, which import the converters themselves when a worker unpickles a call
to one of their functions."""

from __future__ import annotations

import sys


def loaded(names: list[str]) -> list[bool]:
    return [name in sys.modules for name in names]
