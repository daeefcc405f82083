"""Time zones through the converter.

A VTIMEZONE for every TZID the output uses, covering the item's whole span; Outlook's
Windows zone names mapped to IANA by CLDR; an unknown custom zone keeps its definition;
floating, UTC and date values stay what they were.
"""

from __future__ import annotations

from datetime import date, datetime

import icalendar
import pytest

from syncd.convert import for_upload, ics_to_jscal, jscal_to_ics
from syncd.convert.windows_zones import WINDOWS_TO_IANA, iana_name
from tests.convert.icalcompare import compare


def cal(*lines: str) -> bytes:
    body = "\r\n".join(lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + body + "\r\nEND:VCALENDAR\r\n"
    ).encode()


def event(*lines: str, uid: str = "tz@example.com") -> str:
    return "\r\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20240101T000000Z", *lines, "END:VEVENT"]
    )


def round_trip(data: bytes) -> tuple[list[dict], bytes]:
    objs = ics_to_jscal(data)
    return objs, jscal_to_ics(objs)


def zones_of(data: bytes) -> dict[str, icalendar.Timezone]:
    return {str(tz["TZID"]): tz for tz in icalendar.Calendar.from_ical(data).walk("VTIMEZONE")}


def last_transition_year(tz: icalendar.Timezone) -> int:
    """The latest year a VTIMEZONE defines an offset change for (DTSTART, RDATE, UNTIL)."""
    years = []
    for obs in tz.subcomponents:
        years.append(obs["DTSTART"].dt.year)
        rdates = obs.get("RDATE")
        for prop in rdates if isinstance(rdates, list) else [rdates] if rdates else []:
            years += [d.dt.year for d in prop.dts]
        rule = obs.get("RRULE")
        if rule is not None:
            years.append(9999 if "UNTIL" not in rule else rule["UNTIL"][0].year)
    return max(years)


# --------------------------------------------------------------------------- every TZID


def test_every_tzid_used_has_a_vtimezone() -> None:
    data = cal(
        event(
            "DTSTART;TZID=Europe/Berlin:20240301T090000",
            "DTEND;TZID=Europe/Berlin:20240301T100000",
            "RRULE:FREQ=WEEKLY;COUNT=5",
        ),
        "BEGIN:VEVENT\r\nUID:tz@example.com\r\nDTSTAMP:20240101T000000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Berlin:20240308T090000\r\n"
        "DTSTART;TZID=America/New_York:20240308T090000\r\n"
        "DTEND;TZID=America/New_York:20240308T100000\r\nEND:VEVENT",
    )
    _, out = round_trip(data)
    parsed = icalendar.Calendar.from_ical(out)
    assert parsed.get_missing_tzids() == set()
    assert set(zones_of(out)) == {"Europe/Berlin", "America/New_York"}
    assert not compare(data, out)


def test_vtimezone_is_not_written_for_utc_floating_or_dates() -> None:
    data = cal(
        event("DTSTART:20240301T090000Z", uid="a"),
        event("DTSTART:20240301T090000", uid="b"),
        event("DTSTART;VALUE=DATE:20240301", uid="c"),
    )
    _, out = round_trip(data)
    assert zones_of(out) == {}


@pytest.mark.parametrize(
    ("rule", "until_year"),
    [
        ("RRULE:FREQ=WEEKLY;COUNT=300", 2029),  # 300 weeks from 2024: into 2029
        ("RRULE:FREQ=YEARLY;UNTIL=20400301T080000Z", 2040),
        ("RRULE:FREQ=MONTHLY", 2044),  # open-ended: decades ahead
    ],
)
def test_vtimezone_covers_the_whole_series(rule: str, until_year: int) -> None:
    data = cal(event("DTSTART;TZID=Europe/London:20240301T090000", rule))
    _, out = round_trip(data)
    london = zones_of(out)["Europe/London"]
    assert last_transition_year(london) >= until_year
    first = min(obs["DTSTART"].dt for obs in london.subcomponents)
    assert first.year <= 2024


def test_vtimezone_covers_an_override_moved_years_later() -> None:
    data = cal(
        event(
            "DTSTART;TZID=Europe/Paris:20240301T090000", "RDATE;TZID=Europe/Paris:20350301T090000"
        )
    )
    _, out = round_trip(data)
    assert last_transition_year(zones_of(out)["Europe/Paris"]) >= 2035
    assert not compare(data, out)


def test_task_due_zone_is_defined() -> None:
    data = cal(
        "BEGIN:VTODO\r\nUID:t@example.com\r\nDTSTAMP:20240101T000000Z\r\n"
        "DUE;TZID=Asia/Tokyo:20300105T170000\r\nSUMMARY:Ship\r\nEND:VTODO"
    )
    objs, out = round_trip(data)
    assert objs[0]["timeZone"] == "Asia/Tokyo"
    assert objs[0]["due"] == "2030-01-05T17:00:00"
    assert "Asia/Tokyo" in zones_of(out)
    assert not compare(data, out)


# --------------------------------------------------------------------------- Windows names


OUTLOOK_ZONE = """BEGIN:VTIMEZONE\r
TZID:W. Europe Standard Time\r
BEGIN:STANDARD\r
DTSTART:16010101T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:16010101T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r
END:DAYLIGHT\r
END:VTIMEZONE"""


def test_outlook_zone_becomes_iana_by_cldr() -> None:
    data = cal(
        OUTLOOK_ZONE,
        event(
            "DTSTART;TZID=W. Europe Standard Time:20240715T090000",
            "DTEND;TZID=W. Europe Standard Time:20240715T100000",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ),
    )
    objs, out = round_trip(data)
    assert objs[0]["timeZone"] == "Europe/Berlin"
    assert objs[0]["start"] == "2024-07-15T09:00:00"
    assert "TZID=Europe/Berlin:20240715T090000" in out.decode()
    assert set(zones_of(out)) == {"Europe/Berlin"}
    assert not compare(data, out)  # the same instants, in the same kind (zoned)


@pytest.mark.parametrize(
    ("windows", "iana"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Eastern Standard Time", "America/New_York"),
        ("GMT Standard Time", "Europe/London"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("India Standard Time", "Asia/Calcutta"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
    ],
)
def test_cldr_mapping(windows: str, iana: str) -> None:
    from syncd.convert.values import get_zone

    assert WINDOWS_TO_IANA[windows] == iana
    assert get_zone(iana_name(windows)) is not None


def test_every_cldr_target_is_a_zone_this_system_knows() -> None:
    from syncd.convert.values import get_zone

    unknown = sorted({v for v in WINDOWS_TO_IANA.values() if get_zone(iana_name(v) or v) is None})
    assert unknown == []


# --------------------------------------------------------------------------- custom zones


CUSTOM_ZONE = """BEGIN:VTIMEZONE\r
TZID:Office Time\r
BEGIN:STANDARD\r
DTSTART:19700101T000000\r
TZOFFSETFROM:+0530\r
TZOFFSETTO:+0530\r
TZNAME:OFT\r
END:STANDARD\r
END:VTIMEZONE"""


def test_unknown_custom_zone_keeps_its_definition() -> None:
    data = cal(
        CUSTOM_ZONE,
        event(
            "DTSTART;TZID=Office Time:20240301T090000",
            "DTEND;TZID=Office Time:20240301T100000",
            "RRULE:FREQ=DAILY;COUNT=3",
            "EXDATE;TZID=Office Time:20240302T090000",
        ),
    )
    objs, out = round_trip(data)
    assert objs[0]["timeZone"] == "/Office Time"  # a custom id (RFC 8984 4.7.2)
    assert objs[0]["timeZones"]["/Office Time"] == {
        "@type": "TimeZone",
        "tzId": "Office Time",
        "standard": [
            {
                "@type": "TimeZoneRule",
                "start": "1970-01-01T00:00:00",
                "offsetFrom": "+0530",
                "offsetTo": "+0530",
                "names": {"OFT": True},
            }
        ],
    }
    zones = zones_of(out)
    assert set(zones) == {"Office Time"}
    assert zones["Office Time"].to_ical() == icalendar.Component.from_ical(CUSTOM_ZONE).to_ical()
    text = out.decode()
    assert "DTSTART;TZID=Office Time:20240301T090000" in text
    assert "EXDATE;TZID=Office Time:20240302T090000" in text
    assert not compare(data, out)
    # and again: a fixed point
    assert jscal_to_ics(ics_to_jscal(out)) == out


DST_ZONE = """BEGIN:VTIMEZONE\r
TZID:Custom Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
TZNAME:CET\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
TZNAME:CEST\r
END:DAYLIGHT\r
END:VTIMEZONE"""


def test_custom_zone_travels_as_timezones_and_comes_back_from_the_server() -> None:
    """No vendor data and no previous file: the VTIMEZONE is rebuilt from ``timeZones``."""
    data = cal(
        DST_ZONE,
        event(
            "DTSTART;TZID=Custom Berlin:20240701T090000",
            "DTEND;TZID=Custom Berlin:20240701T100000",
            "RRULE:FREQ=MONTHLY;COUNT=8",
            "EXDATE;TZID=Custom Berlin:20240801T090000",
        ),
    )
    objs = ics_to_jscal(data)
    # Cyrus gets an IANA stand-in (tests/convert/test_zonematch.py); a server that takes
    # custom zones gets timeZones, as here.
    assert for_upload(objs[0])["timeZone"] == "Europe/Berlin"
    server = {k: v for k, v in for_upload({**objs[0], "timeZones": {}}).items()}
    server["timeZone"], server["timeZones"] = objs[0]["timeZone"], objs[0]["timeZones"]
    assert server["timeZone"] == "/Custom Berlin"
    rules = server["timeZones"]["/Custom Berlin"]
    assert rules["daylight"][0]["offsetTo"] == "+0200"
    assert rules["standard"][0]["recurrenceRules"][0]["byMonth"] == ["10"]
    out = jscal_to_ics([server])
    assert "BEGIN:VTIMEZONE" in out.decode() and "TZID:Custom Berlin" in out.decode()
    assert not compare(data, out)  # summer 09:00 is 07:00Z, winter 09:00 is 08:00Z
    assert jscal_to_ics(ics_to_jscal(out)) == out


def test_custom_zone_survives_a_server_edit_through_the_previous_file() -> None:
    data = cal(CUSTOM_ZONE, event("DTSTART;TZID=Office Time:20240301T090000", "SUMMARY:old"))
    objs = ics_to_jscal(data)
    server = {k: v for k, v in objs[0].items() if ":" not in k}  # the server keeps no vendor data
    server["title"] = "new"
    out = jscal_to_ics([server], previous=data)
    assert "Office Time" in zones_of(out)
    assert "SUMMARY:new" in out.decode()


# --------------------------------------------------------------------------- kinds stay


@pytest.mark.parametrize(
    ("dtstart", "expect_zone", "kind"),
    [
        ("DTSTART:20240301T090000", None, datetime),
        ("DTSTART:20240301T090000Z", "Etc/UTC", datetime),
        ("DTSTART;VALUE=DATE:20240301", None, date),
        ("DTSTART;TZID=Europe/London:20240301T090000", "Europe/London", datetime),
    ],
)
def test_value_kinds_stay(dtstart: str, expect_zone: str | None, kind: type) -> None:
    data = cal(event(dtstart, "RRULE:FREQ=DAILY;COUNT=3"))
    objs, out = round_trip(data)
    assert objs[0].get("timeZone") == expect_zone
    assert bool(objs[0].get("showWithoutTime")) == (kind is date)
    start = icalendar.Calendar.from_ical(out).walk("VEVENT")[0]["DTSTART"]
    assert type(start.dt) is kind
    assert (start.dt.tzinfo is None) == (expect_zone is None) if kind is datetime else True
    assert dtstart.split(":")[-1] in out.decode()
    assert not compare(data, out)


def test_london_series_stays_in_london_time() -> None:
    """The loss other converters have: a London series turned into UTC."""
    data = cal(
        event(
            "DTSTART;TZID=Europe/London:20240320T090000",
            "RRULE:FREQ=WEEKLY;UNTIL=20240501T080000Z",
            "EXDATE;TZID=Europe/London:20240327T090000",
        )
    )
    objs, out = round_trip(data)
    assert objs[0]["timeZone"] == "Europe/London"
    assert objs[0]["recurrenceRules"][0]["until"] == "2024-05-01T09:00:00"  # BST wall clock
    assert "2024-03-27T09:00:00" in objs[0]["recurrenceOverrides"]
    text = out.decode()
    assert "UNTIL=20240501T080000Z" in text
    assert "EXDATE;TZID=Europe/London:20240327T090000" in text
    assert not compare(data, out)


def test_date_only_until_stays_a_date() -> None:
    data = cal(event("DTSTART;VALUE=DATE:20240301", "RRULE:FREQ=DAILY;UNTIL=20240310"))
    _, out = round_trip(data)
    assert "UNTIL=20240310;" in out.decode() or "UNTIL=20240310\r" in out.decode()
    assert not compare(data, out)


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=DAILY;UNTIL=20240310T235959Z",  # a date-time UNTIL on an all-day series
        "RRULE:FREQ=DAILY;UNTIL=20240310",
    ],
)
def test_until_kind_of_the_file_is_kept(rule: str) -> None:
    data = cal(event("DTSTART;VALUE=DATE:20240301", rule))
    objs, out = round_trip(data)
    assert not compare(data, out)
    assert jscal_to_ics(ics_to_jscal(out)) == out


def test_utc_exdate_on_a_zoned_series_stays_utc() -> None:
    data = cal(
        event(
            "DTSTART;TZID=Europe/Berlin:20240301T090000",
            "RRULE:FREQ=DAILY;COUNT=5",
            "EXDATE:20240302T080000Z",
        )
    )
    objs, out = round_trip(data)
    assert objs[0]["recurrenceOverrides"] == {"2024-03-02T09:00:00": {"excluded": True}}
    assert "EXDATE:20240302T080000Z" in out.decode()
    assert not compare(data, out)
