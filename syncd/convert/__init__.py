"""PURE conversion between iCalendar (RFC 5545) and JSCalendar (RFC 8984).

No I/O here: bytes or dicts in, bytes or dicts out, deterministic.  The sync
engine uses four functions: ``ics_to_jscal`` and ``jscal_to_ics`` to move
items, ``for_upload`` to shape what goes to the server, and ``canonical`` to
compare versions without seeing conversion or server noise.
"""

from syncd.convert.canon import canonical, for_upload
from syncd.convert.ical_in import VENDOR_ICAL, ConversionError, ics_to_jscal
from syncd.convert.ical_out import jscal_to_ics

__all__ = [
    "ConversionError",
    "VENDOR_ICAL",
    "canonical",
    "for_upload",
    "ics_to_jscal",
    "jscal_to_ics",
]
