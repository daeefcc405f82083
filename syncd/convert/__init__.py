"""PURE conversion between iCalendar (RFC 5545) and JSCalendar (RFC 8984).

No I/O here: bytes or dicts in, bytes or dicts out, deterministic.  The sync
engine uses four functions: ``ics_to_jscal`` and ``jscal_to_ics`` to move
items, ``for_upload`` to shape what goes to the server, and ``canonical`` to
compare versions without seeing conversion or server noise.
"""

from typing import Any

from syncd.convert.canon import canonical, for_upload

# The iCalendar side loads icalendar (~0.15 s): only when a pass has something to convert,
# not for a pass where nothing changed (PEP 562 lazy attributes).
_LAZY = {
    "ConversionError": "syncd.convert.ical_in",
    "VENDOR_ICAL": "syncd.convert.ical_in",
    "ics_to_jscal": "syncd.convert.ical_in",
    "jscal_to_ics": "syncd.convert.ical_out",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'syncd.convert' has no attribute {name!r}")


__all__ = [
    "ConversionError",
    "VENDOR_ICAL",
    "canonical",
    "for_upload",
    "ics_to_jscal",
    "jscal_to_ics",
]
