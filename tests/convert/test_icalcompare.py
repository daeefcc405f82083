"""The semantic comparator itself: equal meaning is no loss, every kind of change is one."""

from __future__ import annotations

import pytest

from tests.convert.icalcompare import compare, count_pairs


def cal(*lines: str, tz: bool = False) -> bytes:
    zone = [
        "BEGIN:VTIMEZONE",
        "TZID:Custom/Berlin",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
    ]
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN"]
    body += zone if tz else []
    body += ["BEGIN:VEVENT", "UID:u1", *lines, "END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(body).encode()


def lost(a: bytes, b: bytes) -> set[tuple[str, str]]:
    return {(loss.prop, loss.kind) for loss in compare(a, b).losses}


EQUAL = [
    # instants in UTC across zone names
    (
        ["DTSTART;TZID=Europe/Berlin:20240701T100000"],
        ["DTSTART;TZID=W. Europe Standard Time:20240701T100000"],
    ),
    (
        ["DTSTART;TZID=Europe/Berlin:20240701T100000"],
        ["DTSTART;TZID=Custom/Berlin:20240701T100000"],
    ),
    (["DTSTART:20240701T080000Z"], ["DTSTART;TZID=Etc/UTC:20240701T080000"]),
    # RRULE part order, defaults, BYDAY order
    (
        ["DTSTART:20240101T100000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5"],
        ["DTSTART:20240101T100000Z", "RRULE:COUNT=5;BYDAY=WE,MO;FREQ=WEEKLY;INTERVAL=1;WKST=MO"],
    ),
    # folded lines, escaping
    (
        ["SUMMARY:A long summary\\, with a comma and more text to fold"],
        ["SUMMARY:A long summary\\, with a comma", "  and more text to fold"],
    ),
    # DTEND vs DURATION
    (
        ["DTSTART;TZID=Europe/London:20240301T090000", "DTEND;TZID=Europe/London:20240301T103000"],
        ["DTSTART;TZID=Europe/London:20240301T090000", "DURATION:PT1H30M"],
    ),
    (
        ["DTSTART;VALUE=DATE:20240301", "DURATION:P2D"],
        ["DTSTART;VALUE=DATE:20240301", "DTEND;VALUE=DATE:20240303"],
    ),
    # parameter case, defaults
    (
        ["ATTENDEE;partstat=accepted;ROLE=req-participant:MAILTO:a@example.com"],
        ["ATTENDEE;PARTSTAT=ACCEPTED;X-JMAP-ID=p1:mailto:a@example.com"],
    ),
    # DTSTAMP ignored, defaults equal absent
    (["DTSTAMP:20200101T000000Z", "CLASS:PUBLIC", "SEQUENCE:0"], ["DTSTAMP:20990101T000000Z"]),
    # EXDATE as a set across lines
    (
        ["DTSTART:20240101T100000Z", "EXDATE:20240102T100000Z,20240103T100000Z"],
        ["DTSTART:20240101T100000Z", "EXDATE:20240103T100000Z", "EXDATE:20240102T100000Z"],
    ),
    (["CATEGORIES:a,b"], ["CATEGORIES:b", "CATEGORIES:a"]),
    # enumerated values in any case
    (["STATUS:confirmed"], ["STATUS:CONFIRMED"]),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_same_meaning_is_no_loss(a, b):
    report = compare(cal(*a, tz=True), cal(*b, tz=True))
    assert not report, str(report)


CHANGED = [
    (["SUMMARY:x"], [], ("SUMMARY", "missing")),
    (["SUMMARY:x"], ["SUMMARY:y"], ("SUMMARY", "value")),
    (["X-FOO;X-P=1:bar"], ["X-FOO:bar"], ("X-FOO", "param")),
    (
        ["ATTENDEE;CN=Ann;RSVP=TRUE:mailto:a@example.com"],
        ["ATTENDEE;CN=Ann:mailto:a@example.com"],
        ("ATTENDEE", "param"),
    ),
    # London turned into UTC: the same instant, another kind
    (
        ["DTSTART;TZID=Europe/London:20240301T090000"],
        ["DTSTART:20240301T090000Z"],
        ("DTSTART", "kind"),
    ),
    (["DTSTART:20240301T090000"], ["DTSTART:20240301T090000Z"], ("DTSTART", "kind")),
    (["DTSTART;VALUE=DATE:20240301"], ["DTSTART:20240301T000000"], ("DTSTART", "kind")),
    # date-only UNTIL moved to midnight UTC
    (
        ["DTSTART;VALUE=DATE:20240301", "RRULE:FREQ=DAILY;UNTIL=20240310"],
        ["DTSTART;VALUE=DATE:20240301", "RRULE:FREQ=DAILY;UNTIL=20240310T000000Z"],
        ("RRULE", "value"),
    ),
    (
        ["DTSTART:20240101T100000Z", "RRULE:FREQ=MONTHLY;RSCALE=HEBREW;SKIP=FORWARD"],
        ["DTSTART:20240101T100000Z", "RRULE:FREQ=MONTHLY"],
        ("RRULE", "value"),
    ),
    (
        ["DTSTART:20240101T100000Z", "DTEND:20240101T110000Z"],
        ["DTSTART:20240101T100000Z", "DURATION:PT2H"],
        ("DTEND", "value"),
    ),
    (
        ["DTSTART:20240101T100000Z", "RDATE:20240105T100000Z,20240106T100000Z"],
        ["DTSTART:20240101T100000Z", "RDATE:20240105T100000Z"],
        ("RDATE", "value"),
    ),
    (["PRIORITY:1"], [], ("PRIORITY", "missing")),
]


@pytest.mark.parametrize(("a", "b", "loss"), CHANGED)
def test_changes_are_reported(a, b, loss):
    assert loss in lost(cal(*a), cal(*b))


def test_added_properties_are_not_losses():
    assert not compare(cal("SUMMARY:x"), cal("SUMMARY:x", "X-NEW:1", "PRIORITY:3"))


def test_missing_component_loses_all_its_pairs():
    a = cal("SUMMARY:x", "LOCATION:y")
    b = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    report = compare(a, b)
    assert report.pairs == count_pairs(a) == 3  # UID, SUMMARY, LOCATION
    assert report.lost_pairs == 3
    assert {loss.kind for loss in report.losses} == {"component"}


def test_overrides_are_matched_by_recurrence_id_in_utc():
    a = cal(
        "DTSTART;TZID=Europe/Berlin:20240701T100000",
        "RRULE:FREQ=DAILY",
    ).replace(
        b"END:VCALENDAR",
        b"BEGIN:VEVENT\r\nUID:u1\r\nRECURRENCE-ID;TZID=Europe/Berlin:20240702T100000\r\n"
        b"DTSTART;TZID=Europe/Berlin:20240702T110000\r\nLOCATION:elsewhere\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR",
    )
    b = a.replace(
        b"RECURRENCE-ID;TZID=Europe/Berlin:20240702T100000", b"RECURRENCE-ID:20240702T080000Z"
    )
    report = compare(a, b)
    assert {(x.prop, x.kind) for x in report.losses} == {("RECURRENCE-ID", "kind")}
    c = a.replace(b"LOCATION:elsewhere", b"LOCATION:here")
    assert {(x.component, x.prop) for x in compare(a, c).losses} == {
        ("VEVENT u1 RID=2024-07-02T08:00:00Z", "LOCATION")
    }


def test_alarms_are_matched_by_trigger():
    a1 = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:a\r\nEND:VALARM"
    a2 = "BEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER;RELATED=END:PT0S\r\nDESCRIPTION:b\r\nEND:VALARM"
    a = cal("SUMMARY:x", a1, a2)
    b = cal("SUMMARY:x", a2, a1.replace("DESCRIPTION:a", "DESCRIPTION:a\r\nX-JMAP-ID:x"))
    assert not compare(a, b)
    c = cal("SUMMARY:x", a1.replace("-PT15M", "-PT10M"), a2)
    report = compare(a, c)
    assert {x.kind for x in report.losses} == {"component"}
    assert {x.prop for x in report.losses} == {"ACTION", "TRIGGER", "DESCRIPTION"}


def test_calendar_level_properties_count():
    a = cal("SUMMARY:x").replace(b"PRODID:-//t//EN", b"PRODID:-//t//EN\r\nX-WR-CALNAME:Home")
    report = compare(a, cal("SUMMARY:x"))
    assert [(x.component, x.prop) for x in report.losses] == [("VCALENDAR", "X-WR-CALNAME")]
