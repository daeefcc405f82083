"""Custom zones go to the server under an IANA name that keeps the same time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from syncd import convert
from syncd.convert.zonematch import equivalent_zone

PRIVATE_CET = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VTIMEZONE\r
TZID:Our Office Time\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:office-1\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Our Office Time:20260701T090000\r
DURATION:PT1H\r
RRULE:FREQ=WEEKLY;COUNT=40\r
SUMMARY:Weekly\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_a_private_name_for_central_european_time_goes_up_as_a_real_zone():
    [obj] = convert.ics_to_jscal(PRIVATE_CET.encode())
    up = convert.for_upload(obj)
    assert "timeZones" not in up
    zone = ZoneInfo(up["timeZone"])
    # The same offsets as the private zone all year round (summer and winter).
    berlin = ZoneInfo("Europe/Berlin")
    from datetime import datetime

    for month in (1, 4, 7, 10, 12):
        t = datetime(2026, month, 15, 12)
        assert t.replace(tzinfo=zone).utcoffset() == t.replace(tzinfo=berlin).utcoffset()


def test_the_file_keeps_its_own_zone_when_the_server_version_comes_back():
    [obj] = convert.ics_to_jscal(PRIVATE_CET.encode())
    server = {**convert.for_upload(obj), "title": "Weekly (edited)", "id": "E1"}
    text = convert.jscal_to_ics([server], previous=PRIVATE_CET.encode()).decode()
    assert "DTSTART;TZID=Our Office Time:20260701T090000" in text
    assert "TZID:Our Office Time" in text and "SUMMARY:Weekly (edited)" in text


def test_a_zone_like_no_other_is_not_matched():
    from datetime import timedelta, timezone

    odd = timezone(timedelta(hours=1, minutes=7))
    assert equivalent_zone(odd, 2025, 2027) is None
    assert equivalent_zone(ZoneInfo("Asia/Kolkata"), 2025, 2027) is not None
