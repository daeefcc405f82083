"""Table tests: each iCalendar property with a JSCalendar mapping, both ways.

Each row is an iCalendar component body, the JSCalendar it must give (a subset:
only the keys named are checked), and the promise that ics -> jscal -> ics loses
nothing (semantic comparison) and that the result is a fixed point.
"""

from __future__ import annotations

from typing import Any

import pytest

from syncd.convert import canonical, for_upload, ics_to_jscal, jscal_to_ics
from tests.convert.icalcompare import compare


def cal(body: str, comp: str = "VEVENT", extra: str = "") -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        f"BEGIN:{comp}",
        "UID:map@example.com",
        "DTSTAMP:20240101T000000Z",
        *[line.strip() for line in body.strip().splitlines()],
        f"END:{comp}",
        *([extra.strip()] if extra else []),
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def subset(want: Any, got: Any, path: str = "") -> None:
    """Every key of ``want`` is in ``got`` with the same value (recursively for dicts)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: {got!r} is not an object"
        for key, value in want.items():
            assert key in got, f"{path}/{key} missing in {got!r}"
            subset(value, got[key], f"{path}/{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {got!r}"
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            subset(w, g, f"{path}/{i}")
    else:
        assert want == got, f"{path}: want {want!r}, got {got!r}"


START = "DTSTART;TZID=Europe/Berlin:20240301T090000"
TSTART = "DTSTART:20240301T090000Z"

EVENT_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "rrule-all-parts",
        f"""{START}
        RRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1MO,-1FR;BYMONTH=1,6;BYMONTHDAY=1,-1;BYHOUR=9;BYMINUTE=30;BYSECOND=0;BYSETPOS=1,-1;WKST=SU""",
        {
            "recurrenceRules": [
                {
                    "frequency": "monthly",
                    "interval": 2,
                    "count": 10,
                    "byDay": [
                        {"@type": "NDay", "day": "mo", "nthOfPeriod": 1},
                        {"@type": "NDay", "day": "fr", "nthOfPeriod": -1},
                    ],
                    "byMonth": ["1", "6"],
                    "byMonthDay": [1, -1],
                    "byHour": [9],
                    "byMinute": [30],
                    "bySecond": [0],
                    "bySetPosition": [1, -1],
                    "firstDayOfWeek": "su",
                }
            ]
        },
    ),
    (
        "rrule-yearday-weekno-until",
        f"""{START}
        RRULE:FREQ=YEARLY;BYYEARDAY=1,-1;BYWEEKNO=20;UNTIL=20300101T080000Z""",
        {
            "recurrenceRules": [
                {"byYearDay": [1, -1], "byWeekNo": [20], "until": "2030-01-01T09:00:00"}
            ]
        },
    ),
    (
        "rscale-skip",
        """DTSTART;VALUE=DATE:20240101
        RRULE:RSCALE=HEBREW;FREQ=YEARLY;BYMONTH=5L;BYMONTHDAY=8;SKIP=FORWARD""",
        {
            "recurrenceRules": [
                {"rscale": "hebrew", "skip": "forward", "byMonth": ["5L"], "byMonthDay": [8]}
            ]
        },
    ),
    (
        "exrule",
        f"""{START}
        RRULE:FREQ=DAILY;COUNT=10
        EXRULE:FREQ=WEEKLY;BYDAY=SA,SU""",
        {"excludedRecurrenceRules": [{"frequency": "weekly"}]},
    ),
    (
        "rdate-exdate",
        f"""{START}
        RRULE:FREQ=WEEKLY;COUNT=4
        RDATE;TZID=Europe/Berlin:20240305T140000,20240306T140000
        EXDATE;TZID=Europe/Berlin:20240308T090000""",
        {
            "recurrenceOverrides": {
                "2024-03-05T14:00:00": {},
                "2024-03-06T14:00:00": {},
                "2024-03-08T09:00:00": {"excluded": True},
            }
        },
    ),
    (
        "rdate-period",
        f"""{TSTART}
        DURATION:PT1H
        RDATE;VALUE=PERIOD:20240310T100000Z/PT3H""",
        {"recurrenceOverrides": {"2024-03-10T10:00:00": {"duration": "PT3H"}}},
    ),
    (
        "all-day-duration",
        """DTSTART;VALUE=DATE:20240301
        DTEND;VALUE=DATE:20240304""",
        {"start": "2024-03-01T00:00:00", "showWithoutTime": True, "duration": "P3D"},
    ),
    (
        "status-transp-class-priority-sequence-color",
        f"""{START}
        STATUS:TENTATIVE
        TRANSP:TRANSPARENT
        CLASS:CONFIDENTIAL
        PRIORITY:3
        SEQUENCE:7
        COLOR:turquoise""",
        {
            "status": "tentative",
            "freeBusyStatus": "free",
            "privacy": "secret",
            "priority": 3,
            "sequence": 7,
            "color": "turquoise",
        },
    ),
    (
        "class-private",
        f"""{START}
        CLASS:PRIVATE""",
        {"privacy": "private"},
    ),
    (
        "created-updated",
        f"""{START}
        CREATED:20230101T101010Z
        LAST-MODIFIED:20230202T202020Z""",
        {"created": "2023-01-01T10:10:10Z", "updated": "2023-02-02T20:20:20Z"},
    ),
    (
        "categories-keywords",
        f"""{START}
        CATEGORIES:work,travel
        CATEGORIES:family""",
        {"keywords": {"work": True, "travel": True, "family": True}},
    ),
    (
        "title-description-locale",
        f"""{START}
        SUMMARY;LANGUAGE=de:Besprechung
        DESCRIPTION:Line one\\nLine two\\, with comma""",
        {
            "title": "Besprechung",
            "locale": "de",
            "description": "Line one\nLine two, with comma",
        },
    ),
    (
        "locations",
        f"""{START}
        LOCATION;X-JMAP-ID=room:Room 4
        LOCATION:Building B""",
        {"locations": {"room": {"@type": "Location", "name": "Room 4"}}},
    ),
    (
        "conference",
        f"""{START}
        CONFERENCE;VALUE=URI;FEATURE=AUDIO,VIDEO;LABEL=Join;X-JMAP-ID=v1:https://meet.example/abc""",
        {
            "virtualLocations": {
                "v1": {
                    "uri": "https://meet.example/abc",
                    "name": "Join",
                    "features": {"audio": True, "video": True},
                }
            }
        },
    ),
    (
        "url-attach-links",
        f"""{START}
        URL;X-JMAP-ID=web:https://example.com/event
        ATTACH;FMTTYPE=application/pdf;X-JMAP-ID=doc:https://example.com/agenda.pdf""",
        {
            "links": {
                "web": {"href": "https://example.com/event", "rel": "describedby"},
                "doc": {"href": "https://example.com/agenda.pdf", "contentType": "application/pdf"},
            }
        },
    ),
    (
        "related-to",
        f"""{START}
        RELATED-TO:parent@example.com
        RELATED-TO;RELTYPE=SIBLING:sister@example.com""",
        {
            "relatedTo": {
                "parent@example.com": {"relation": {"parent": True}},
                "sister@example.com": {"relation": {"sibling": True}},
            }
        },
    ),
    (
        "participants",
        f"""{START}
        ORGANIZER;CN=Boss:mailto:boss@example.com
        ATTENDEE;CN=Ann;ROLE=CHAIR;PARTSTAT=ACCEPTED;X-JMAP-ID=ann:mailto:ann@example.com
        ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=TENTATIVE;RSVP=TRUE:mailto:bob@example.com
        ATTENDEE;ROLE=NON-PARTICIPANT;CUTYPE=ROOM:mailto:room@example.com
        ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:dan@example.com";X-JMAP-ID=cat:mailto:cat@example.com
        ATTENDEE;DELEGATED-FROM="mailto:cat@example.com";X-JMAP-ID=dan:mailto:dan@example.com""",
        {
            "participants": {
                "ann": {
                    "name": "Ann",
                    "roles": {"attendee": True, "chair": True},
                    "participationStatus": "accepted",
                    "sendTo": {"imip": "mailto:ann@example.com"},
                },
                "cat": {"participationStatus": "delegated", "delegatedTo": {"dan": True}},
                "dan": {"delegatedFrom": {"cat": True}},
            },
            "replyTo": {"imip": "mailto:boss@example.com"},
        },
    ),
    (
        "participant-scheduling-params",
        f"""{START}
        ATTENDEE;SENT-BY="mailto:assistant@example.com";LANGUAGE=de;SCHEDULE-AGENT=CLIENT;SCHEDULE-STATUS="2.0,2.8";X-JMAP-ID=eve:mailto:eve@example.com""",
        {
            "participants": {
                "eve": {
                    "sentBy": "assistant@example.com",
                    "language": "de",
                    "scheduleAgent": "client",
                    "scheduleStatus": ["2.0", "2.8"],
                }
            }
        },
    ),
    (
        "geo-on-the-location",
        f"""{START}
        LOCATION;X-JMAP-ID=park:Central Park
        GEO:40.779897;-73.968565""",
        {
            "locations": {
                "park": {"name": "Central Park", "coordinates": "geo:40.779897,-73.968565"}
            }
        },
    ),
    (
        "geo-alone",
        f"""{START}
        GEO:-33.8568;151.2153""",
        {"locations": {}},
    ),
    (
        "alerts",
        f"""{START}
        DURATION:PT1H
        BEGIN:VALARM
        X-JMAP-ID:before
        TRIGGER:-PT15M
        ACTION:DISPLAY
        DESCRIPTION:Soon
        END:VALARM
        BEGIN:VALARM
        X-JMAP-ID:after-end
        TRIGGER;RELATED=END:PT5M
        ACTION:DISPLAY
        DESCRIPTION:Over
        END:VALARM
        BEGIN:VALARM
        X-JMAP-ID:abs
        TRIGGER;VALUE=DATE-TIME:20240301T070000Z
        ACTION:EMAIL
        SUMMARY:Mail
        DESCRIPTION:Mail body
        ATTENDEE:mailto:me@example.com
        ACKNOWLEDGED:20240301T070100Z
        END:VALARM""",
        {
            "alerts": {
                "before": {"trigger": {"@type": "OffsetTrigger", "offset": "-PT15M"}},
                "after-end": {"trigger": {"offset": "PT5M", "relativeTo": "end"}},
                "abs": {
                    "trigger": {"@type": "AbsoluteTrigger", "when": "2024-03-01T07:00:00Z"},
                    "action": "email",
                    "acknowledged": "2024-03-01T07:01:00Z",
                },
            }
        },
    ),
]

OVERRIDE = """BEGIN:VEVENT
UID:map@example.com
DTSTAMP:20240101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20240308T090000
DTSTART;TZID=Europe/Berlin:20240308T110000
DURATION:PT2H
SUMMARY:Moved
LOCATION;X-JMAP-ID=elsewhere:Elsewhere
ATTENDEE;PARTSTAT=DECLINED;X-JMAP-ID=ann:mailto:ann@example.com
BEGIN:VALARM
X-JMAP-ID:own
TRIGGER:-PT1H
ACTION:DISPLAY
DESCRIPTION:Moved
END:VALARM
END:VEVENT"""

TASK_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "due-progress-percent",
        """DTSTART;TZID=Europe/Paris:20240301T090000
        DUE;TZID=Europe/Paris:20240305T170000
        STATUS:IN-PROCESS
        PERCENT-COMPLETE:40
        PRIORITY:1""",
        {
            "@type": "Task",
            "start": "2024-03-01T09:00:00",
            "due": "2024-03-05T17:00:00",
            "timeZone": "Europe/Paris",
            "progress": "in-process",
            "percentComplete": 40,
            "priority": 1,
        },
    ),
    (
        "completed",
        """DUE;VALUE=DATE:20240305
        STATUS:COMPLETED
        COMPLETED:20240304T101500Z""",
        {
            "due": "2024-03-05T00:00:00",
            "showWithoutTime": True,
            "progress": "completed",
            "progressUpdated": "2024-03-04T10:15:00Z",
        },
    ),
    (
        "completed-without-status",
        """COMPLETED:20260302T100000Z
        PERCENT-COMPLETE:100""",
        {
            "progress": "completed",
            "progressUpdated": "2026-03-02T10:00:00Z",
            "percentComplete": 100,
        },
    ),
    (
        "completed-then-reopened",
        """STATUS:NEEDS-ACTION
        COMPLETED:20260302T100000Z""",
        {"progress": "needs-action"},
    ),
    (
        "estimated-duration",
        """DUE:20240305T170000Z
        ESTIMATED-DURATION:PT2H30M""",
        {"estimatedDuration": "PT2H30M"},
    ),
    (
        "todo-duration-as-estimate",
        """DTSTART:20240305T150000Z
        DURATION:PT1H""",
        {"estimatedDuration": "PT1H"},
    ),
    (
        "todo-alarm-categories-related",
        """DUE:20240305T170000Z
        CATEGORIES:home
        RELATED-TO;RELTYPE=PARENT:project@example.com
        BEGIN:VALARM
        TRIGGER;RELATED=END:-PT1H
        ACTION:DISPLAY
        DESCRIPTION:Due soon
        END:VALARM""",
        {
            "keywords": {"home": True},
            "relatedTo": {"project@example.com": {"relation": {"parent": True}}},
        },
    ),
]


def _check(data: bytes, want: dict[str, Any]) -> dict[str, Any]:
    objs = ics_to_jscal(data)
    assert len(objs) == 1
    subset(want, objs[0])
    out = jscal_to_ics(objs)
    report = compare(data, out)
    assert not report, f"{report}\n{out.decode()}"
    assert jscal_to_ics(ics_to_jscal(out)) == out, "not a fixed point"
    return objs[0]


@pytest.mark.parametrize(
    ("body", "want"), [r[1:] for r in EVENT_ROWS], ids=[r[0] for r in EVENT_ROWS]
)
def test_event_mapping(body: str, want: dict[str, Any]) -> None:
    _check(cal(body), want)


@pytest.mark.parametrize(
    ("body", "want"), [r[1:] for r in TASK_ROWS], ids=[r[0] for r in TASK_ROWS]
)
def test_task_mapping(body: str, want: dict[str, Any]) -> None:
    _check(cal(body, "VTODO"), want)


def test_override_with_its_own_alarm_location_and_participant() -> None:
    body = f"""{START}
    DURATION:PT1H
    SUMMARY:Weekly
    RRULE:FREQ=WEEKLY;COUNT=4
    ATTENDEE;PARTSTAT=ACCEPTED;X-JMAP-ID=ann:mailto:ann@example.com"""
    obj = _check(
        cal(body, extra=OVERRIDE),
        {
            "recurrenceOverrides": {
                "2024-03-08T09:00:00": {
                    "start": "2024-03-08T11:00:00",
                    "duration": "PT2H",
                    "title": "Moved",
                }
            }
        },
    )
    patch = obj["recurrenceOverrides"]["2024-03-08T09:00:00"]
    assert patch["locations"] == {"elsewhere": {"@type": "Location", "name": "Elsewhere"}}
    assert patch["alerts"]["own"]["trigger"]["offset"] == "-PT1H"
    assert patch["participants"]["ann"]["participationStatus"] == "declined"


def test_override_equal_to_its_master_stays_an_override() -> None:
    body = f"""{START}
    DURATION:PT1H
    RRULE:FREQ=WEEKLY;COUNT=4"""
    same = OVERRIDE.split("DTSTART")[0] + (
        "DTSTART;TZID=Europe/Berlin:20240308T090000\r\nDURATION:PT1H\r\nEND:VEVENT"
    )
    obj = _check(cal(body, extra=same), {})
    assert obj["recurrenceOverrides"]["2024-03-08T09:00:00"] != {}  # {} would be an RDATE


def test_sub_object_ids_survive() -> None:
    """Ids Cyrus writes as X-JMAP-ID come back as the same map keys, and go out again."""
    obj = _check(cal(dict((r[0], r[1]) for r in EVENT_ROWS)["participants"]), {})
    assert {"ann", "cat", "dan"} <= set(obj["participants"])
    out = jscal_to_ics([obj]).decode()
    assert "X-JMAP-ID=ann" in out


def test_x_properties_and_parameters_travel_but_never_upload() -> None:
    data = cal(
        f"""{START}
        X-KHAL-THING;X-A=b:kept
        ATTENDEE;X-NUM-GUESTS=2;X-JMAP-ID=ann:mailto:ann@example.com
        SUMMARY;X-FOO=bar:Title"""
    )
    obj = _check(data, {"title": "Title"})
    assert obj["iCalComponent"]["properties"] == [["x-khal-thing", {"x-a": "b"}, "unknown", "kept"]]
    assert any(":" in k for k in obj)  # unmapped parameters: a vendor property
    up = for_upload(obj)
    assert not [k for k in up if ":" in k] and "iCalComponent" not in up
    assert canonical(obj) == canonical(up)  # vendor data is never a difference
    out = jscal_to_ics([obj]).decode()
    assert "X-KHAL-THING;X-A=b:kept" in out
    assert "X-NUM-GUESTS=2" in out
    assert "X-FOO=bar" in out


def test_merge_back_from_the_previous_file() -> None:
    """A server edit over a local file keeps the file's unmapped extras."""
    data = cal(
        f"""{START}
        SUMMARY:old
        X-KHAL-THING:kept
        ATTENDEE;X-NUM-GUESTS=2:mailto:ann@example.com"""
    )
    server = for_upload(ics_to_jscal(data)[0])
    server["title"] = "new"
    out = jscal_to_ics([server], previous=data).decode()
    assert "SUMMARY:new" in out
    assert "X-KHAL-THING:kept" in out
    assert "X-NUM-GUESTS=2" in out


def test_jscal_to_ics_mapping() -> None:
    """The other direction, from an object as a server serves it."""
    obj = {
        "@type": "Event",
        "uid": "srv@example.com",
        "title": "Planning",
        "start": "2024-03-01T09:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H30M",
        "status": "cancelled",
        "freeBusyStatus": "free",
        "privacy": "private",
        "priority": 5,
        "sequence": 2,
        "color": "red",
        "keywords": {"a": True},
        "updated": "2024-02-01T00:00:00Z",
        "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly", "count": 3}],
        "virtualLocations": {"v": {"@type": "VirtualLocation", "uri": "tel:+1234"}},
    }
    text = jscal_to_ics([obj]).decode()
    for line in (
        "SUMMARY:Planning",
        "DTSTART;TZID=Europe/Berlin:20240301T090000",
        "DTEND;TZID=Europe/Berlin:20240301T103000",
        "STATUS:CANCELLED",
        "TRANSP:TRANSPARENT",
        "CLASS:PRIVATE",
        "PRIORITY:5",
        "SEQUENCE:2",
        "COLOR:red",
        "CATEGORIES:a",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "DTSTAMP:20240201T000000Z",
        "LAST-MODIFIED:20240201T000000Z",
    ):
        assert line in text, line
    assert "CONFERENCE;" in text and "tel:+1234" in text
    back = ics_to_jscal(text.encode())[0]
    assert canonical(back) == canonical(obj)


def test_merge_back_keeps_what_surrounded_the_item_and_empty_lines() -> None:
    """Calendar properties (X-WR-CALNAME, METHOD) and an empty DESCRIPTION the server
    cannot tell from none come back from the previous file after a server edit."""
    data = cal(
        f"""{START}
        SUMMARY:old
        DESCRIPTION:"""
    ).replace(
        b"PRODID:-//test//EN\r\n", b"PRODID:-//test//EN\r\nX-WR-CALNAME:Home\r\nMETHOD:PUBLISH\r\n"
    )
    server = for_upload(ics_to_jscal(data)[0])
    assert "description" not in server or server["description"] == ""
    server["title"] = "new"
    out = jscal_to_ics([server], previous=data)
    text = out.decode()
    assert "X-WR-CALNAME:Home" in text and "METHOD:PUBLISH" in text
    assert "DESCRIPTION:\r\n" in text
    report = compare(data, out)
    assert {loss.prop for loss in report.losses} == {"SUMMARY"}  # the edit, nothing else
