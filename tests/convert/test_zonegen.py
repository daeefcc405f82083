"""syncd.convert.zonegen makes the VTIMEZONE icalendar's from_tzinfo makes, faster.

The files syncd writes must not change with the generator: a zone written by an older
syncd and one written now are the same lines, whatever zone and span."""

from __future__ import annotations

import zoneinfo
from datetime import date

import pytest
from icalendar import Timezone

from syncd.convert.zonegen import vtimezone_over

ALL_ZONES = sorted(zoneinfo.available_timezones())

# Zones whose history is unusual: changes a month apart (Casablanca's Ramadan), a
# half-hour shift (Lord Howe), negative DST (Dublin), DST abolished (Sao Paulo,
# Istanbul), a day skipped at the date line (Apia), +14 (Kiritimati), no change since
# 1951 (Tokyo), a two-hour DST (Troll), local mean time before 1900.
UNUSUAL = [
    "Africa/Casablanca",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "America/Sao_Paulo",
    "Europe/Istanbul",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Asia/Tokyo",
    "Antarctica/Troll",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "UTC",
    "Etc/GMT+12",
]
SPANS = [
    (date(1880, 1, 1), date(1925, 1, 1)),
    (date(1969, 1, 1), date(1972, 1, 1)),
    (date(2010, 1, 1), date(2013, 1, 1)),
    (date(2025, 3, 30), date(2025, 10, 26)),  # starting and ending on a change's day
    (date(2024, 1, 1), date(2024, 11, 15)),  # a change less than a step before the end
    (date(2026, 1, 1), date(2059, 1, 1)),
]


def _icalendar(tzid: str, first: date, last: date) -> bytes:
    return Timezone.from_tzinfo(zoneinfo.ZoneInfo(tzid), tzid, first, last).to_ical()


def _ours(tzid: str, first: date, last: date) -> bytes:
    return vtimezone_over(zoneinfo.ZoneInfo(tzid), tzid, first, last).to_ical()


def test_every_zone_over_a_span_of_years_is_written_as_icalendar_writes_it():
    first, last = date(2025, 1, 1), date(2029, 1, 1)
    differ = [z for z in ALL_ZONES if _ours(z, first, last) != _icalendar(z, first, last)]
    assert len(ALL_ZONES) > 300
    assert differ == []


@pytest.mark.parametrize("tzid", UNUSUAL)
@pytest.mark.parametrize(("first", "last"), SPANS)
def test_unusual_zones_and_spans_are_written_as_icalendar_writes_them(tzid, first, last):
    assert _ours(tzid, first, last) == _icalendar(tzid, first, last)


def test_a_zone_with_changes_has_them_all_and_a_zone_without_has_one_observance():
    berlin = _ours("Europe/Berlin", date(2025, 1, 1), date(2028, 1, 1)).decode()
    assert "RDATE:20260329T030000,20270328T030000" in berlin
    assert berlin.count("BEGIN:DAYLIGHT") == 1 and berlin.count("BEGIN:STANDARD") == 2
    tokyo = _ours("Asia/Tokyo", date(2025, 1, 1), date(2060, 1, 1)).decode()
    assert tokyo.count("BEGIN:STANDARD") == 1 and "DAYLIGHT" not in tokyo
    assert "TZOFFSETTO:+0900" in tokyo


def test_a_zone_that_no_longer_changes_is_not_followed_to_the_end_of_time():
    """The reason for the module: icalendar steps a zone without changes to year 9999.
    Counted, not timed: the number of offsets asked for."""

    class Counting(zoneinfo.ZoneInfo):
        calls = 0

        def utcoffset(self, dt):
            Counting.calls += 1
            return super().utcoffset(dt)

    tz = Counting("Asia/Tokyo")
    vtimezone_over(tz, "Asia/Tokyo", date(2025, 1, 1), date(2029, 1, 1))
    ours = Counting.calls
    Counting.calls = 0
    Timezone.from_tzinfo(tz, "Asia/Tokyo", date(2025, 1, 1), date(2029, 1, 1))
    assert ours < 100 < 10_000 < Counting.calls
