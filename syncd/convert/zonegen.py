"""PURE: the VTIMEZONE of a zoneinfo zone over a span of dates, as icalendar makes it.

icalendar's ``Timezone.from_tzinfo`` finds the zone's offset changes between the two
dates by stepping through wall time (64 days, then halving down to a second), and it
follows the last stretch of constant offset until the next change, which for a zone
that no longer changes (Asia/Tokyo, Asia/Kolkata, UTC-like zones, half the world) means
stepping 64 days at a time to the year 9999: about 10 ms per VTIMEZONE against 0.5 ms
for Europe/Berlin.  A first download of 10,000 events generates about 50 (zone, span)
pairs in each conversion worker; the zones without changes took two thirds of the time
spent generating them.

``vtimezone_over`` is the same search, stopped as soon as a stretch is seen to reach
the end of the span: what comes after it is never written, so the component is the
same one, property for property (tests/convert/test_zonegen.py compares them for every
zone zoneinfo knows).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, tzinfo

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard

# The wall-time steps of icalendar's search (``Timezone._from_tzinfo_skip_search`` in
# icalendar 6 and 7), largest first; the same ones, so the same changes are found (two
# changes closer together than a step can be stepped over, by icalendar as by this).
_STEPS: list[timedelta] = [timedelta(days=days) for days in (64, 32, 16, 8, 4, 2, 1)] + [
    timedelta(hours=4),
    timedelta(hours=1),
    timedelta(minutes=20),
    timedelta(minutes=5),
    timedelta(minutes=1),
    timedelta(seconds=20),
    timedelta(seconds=5),
    timedelta(seconds=1),
]

_Key = tuple[timedelta | None, timedelta | None, str, bool]


class _ReachesTheEnd(Exception):
    """The stretch being followed keeps its offset to the end of the span."""


def vtimezone_over(tz: tzinfo, tzid: str, first_date: date, last_date: date) -> Timezone:
    """``Timezone.from_tzinfo(tz, tzid, first_date, last_date)`` for a zoneinfo zone."""
    first_datetime = datetime(first_date.year, first_date.month, first_date.day, tzinfo=tz)
    last_datetime = datetime(last_date.year, last_date.month, last_date.day, tzinfo=tz)
    offsets: dict[_Key, list[datetime]] = defaultdict(list)
    start = first_datetime
    offset_to: timedelta | None = None
    while start < last_datetime:
        offset_from = offset_to
        end = start
        offset_to = end.utcoffset()
        reaches_the_end = False
        try:
            for step in _STEPS:
                last_end = end
                end = end + step
                try:
                    while end.utcoffset() == offset_to:
                        if end >= last_datetime:
                            raise _ReachesTheEnd
                        last_end = end
                        end = end + step
                except OverflowError:
                    break
                end = last_end
        except _ReachesTheEnd:
            reaches_the_end = True
        is_standard = start.dst() == timedelta()
        name = start.tzname()
        if name is None:
            name = str(offset_to)
        offsets[(offset_from, offset_to, name, is_standard)].append(start.replace(tzinfo=None))
        if reaches_the_end:
            break
        start = end + _STEPS[-1]
    return _component(tzid, first_date, last_date, offsets)


def _component(
    tzid: str, first_date: date, last_date: date, offsets: dict[_Key, list[datetime]]
) -> Timezone:
    """Built as icalendar builds it, so that it serialises to the same lines."""
    tz = Timezone()
    tz.add("TZID", tzid)
    tz.add("COMMENT", f"This timezone only works from {first_date} to {last_date}.")
    for (offset_from, offset_to, tzname, is_standard), starts in offsets.items():
        first_start = min(starts)
        starts.remove(first_start)
        if first_start.date() == last_date:
            first_start = datetime(last_date.year, last_date.month, last_date.day)
        sub = TimezoneStandard() if is_standard else TimezoneDaylight()
        if offset_from is None:
            offset_from = offset_to
        sub.TZOFFSETFROM = offset_from
        sub.TZOFFSETTO = offset_to
        sub.add("TZNAME", tzname)
        sub.DTSTART = first_start
        if starts:
            sub.add("RDATE", starts)
        tz.add_component(sub)
    return tz
