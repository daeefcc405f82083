"""PURE: an IANA zone that keeps the same time as a custom VTIMEZONE.

Cyrus 3.12 refuses JSCalendar ``timeZones`` (custom zone definitions) with
``invalidProperties``, so an event in a zone no database knows ("Lunar Base Standard",
a Lotus or Exchange export's private name) could not be uploaded at all.  Almost every
such zone is a real zone under another name; the server gets that name, and the local
file keeps its own definition (merge-back keeps a file's VTIMEZONEs).
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

SAMPLE_DAYS = 5  # one instant every five days over the span: DST edges move by days


def _samples(first_year: int, last_year: int) -> list[datetime]:
    start = datetime(first_year, 1, 1, 12, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, 12, tzinfo=UTC)
    out = []
    while start < end:
        out.append(start)
        start += timedelta(days=SAMPLE_DAYS)
    return out


def equivalent_zone(zone: tzinfo, first_year: int, last_year: int) -> str | None:
    """The IANA name whose offsets equal ``zone``'s at every sample, or None."""
    samples = _samples(first_year, last_year)
    probes = [samples[0], samples[len(samples) // 2]]
    wanted = [_offset(zone, t) for t in probes]
    candidates = [
        name for name in _zone_names() if [_offset(_zone(name), t) for t in probes] == wanted
    ]
    full = [_offset(zone, t) for t in samples]
    for name in candidates:
        if [_offset(_zone(name), t) for t in samples] == full:
            return name
    return None


def _offset(zone: tzinfo, instant: datetime) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


@functools.cache
def _zone_names() -> list[str]:
    """CLDR's representative zones first (Europe/Berlin rather than Africa/Ceuta for
    central European time), then other Region/City names, legacy and Etc/ names last."""
    from syncd.convert.windows_zones import WINDOWS_TO_IANA

    golden = set(WINDOWS_TO_IANA.values())
    return sorted(
        available_timezones(),
        key=lambda n: (
            n not in golden,
            "/" not in n or n.startswith(("Etc/", "SystemV/")),
            n,
        ),
    )


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def for_server(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with each custom zone it uses renamed to an equivalent IANA zone and its
    definition dropped; a zone with no equivalent stays (the server may take it)."""
    zones = obj.get("timeZones")
    if not isinstance(zones, dict) or not zones:
        return obj
    year = item_year(obj)
    renamed: dict[str, str] = {}
    for key, definition in zones.items():
        name = _match(json.dumps(definition, sort_keys=True), year)
        if name is not None:
            renamed[key] = name
    if not renamed:
        return obj
    out = rename_zones(obj, renamed)
    left = {k: v for k, v in zones.items() if k not in renamed}
    if left:
        out["timeZones"] = left
    else:
        out.pop("timeZones", None)
    return out


@functools.lru_cache(maxsize=64)
def _match(definition_json: str, year: int) -> str | None:
    from syncd.convert.ical_out import _rrule
    from syncd.convert.zones import vtimezone

    try:
        zone = vtimezone(json.loads(definition_json), lambda r: _rrule(r, None, False)).to_tz()
        return equivalent_zone(zone, year - 1, year + 2)
    except Exception:  # noqa: BLE001 - a definition we cannot evaluate has no equivalent
        return None


@functools.lru_cache(maxsize=64)
def stand_in_for(vtimezone_text: bytes, year: int) -> str | None:
    """The IANA stand-in of a file's own VTIMEZONE (as ``for_server`` chose it), cached:
    every write over a file with a custom zone asks again."""
    from icalendar.cal import Component

    try:
        return equivalent_zone(Component.from_ical(vtimezone_text).to_tz(), year - 1, year + 2)
    except Exception:  # noqa: BLE001 - a definition we cannot evaluate has no stand-in
        return None


def item_year(obj: dict[str, Any]) -> int:
    try:
        return int(str(obj.get("start") or obj.get("due") or "")[:4])
    except ValueError:
        return datetime.now(UTC).year


def rename_zones(value: Any, renamed: dict[str, str], key: str = "") -> Any:
    """A copy of a JSCalendar object with every time-zone reference (``timeZone``,
    ``recurrenceIdTimeZone``, a location's ``timeZone``, ...) renamed."""
    if isinstance(value, dict):
        return {k: rename_zones(v, renamed, k) for k, v in value.items() if k != "timeZones"}
    if isinstance(value, list):
        return [rename_zones(v, renamed) for v in value]
    if isinstance(value, str) and key.endswith(("timeZone", "TimeZone")) and value in renamed:
        return renamed[value]
    return value
