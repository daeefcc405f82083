"""VTODO <-> JMAP Task through the pure converter, one row per property (issue 7).

Each row: VTODO content lines, the JSCalendar Task properties they must give, and the
content lines the Task must give back (what a todoman user finds in the file after the
server's copy comes down).  A second table goes from server Tasks to VTODO lines.
"""

from __future__ import annotations

import pytest

from syncd import convert
from syncd.sync.remote import VENDOR_TASK, normalize_task


def ics(*lines: str) -> str:
    body = "".join(f"{line}\r\n" for line in lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\nUID:u1\r\n"
        f"DTSTAMP:20260101T000000Z\r\nSUMMARY:Task\r\n{body}END:VTODO\r\nEND:VCALENDAR\r\n"
    )


def lines_of(data: bytes) -> set[str]:
    text = data.decode().replace("\r\n ", "")
    return {line for line in text.splitlines() if line}


VTODO_TO_TASK = [
    pytest.param(
        ["DUE:20260301T100000Z"],
        {"due": "2026-03-01T10:00:00", "timeZone": "Etc/UTC"},
        ["DUE:20260301T100000Z"],
        id="DUE UTC (todoman writes UTC)",
    ),
    pytest.param(
        ["DUE;TZID=Europe/Berlin:20260301T100000"],
        {"due": "2026-03-01T10:00:00", "timeZone": "Europe/Berlin"},
        ["DUE;TZID=Europe/Berlin:20260301T100000"],
        id="DUE with zone",
    ),
    pytest.param(
        ["DUE;VALUE=DATE:20260301"],
        {"due": "2026-03-01T00:00:00", "showWithoutTime": True},
        ["DUE;VALUE=DATE:20260301"],
        id="DUE all day",
    ),
    pytest.param(
        ["DTSTART;TZID=Europe/Berlin:20260301T090000", "DUE;TZID=Europe/Berlin:20260302T170000"],
        {"start": "2026-03-01T09:00:00", "due": "2026-03-02T17:00:00"},
        ["DTSTART;TZID=Europe/Berlin:20260301T090000", "DUE;TZID=Europe/Berlin:20260302T170000"],
        id="DTSTART and DUE",
    ),
    pytest.param(
        ["DTSTART:20260301T090000"],
        {"start": "2026-03-01T09:00:00"},
        ["DTSTART:20260301T090000"],
        id="DTSTART floating",
    ),
    pytest.param(
        ["STATUS:COMPLETED", "COMPLETED:20260302T100000Z", "PERCENT-COMPLETE:100"],
        {
            "progress": "completed",
            "progressUpdated": "2026-03-02T10:00:00Z",
            "percentComplete": 100,
        },
        ["STATUS:COMPLETED", "COMPLETED:20260302T100000Z", "PERCENT-COMPLETE:100"],
        id="todo done: STATUS, COMPLETED, PERCENT-COMPLETE",
    ),
    pytest.param(
        ["STATUS:IN-PROCESS", "PERCENT-COMPLETE:40"],
        {"progress": "in-process", "percentComplete": 40},
        ["STATUS:IN-PROCESS", "PERCENT-COMPLETE:40"],
        id="in process",
    ),
    pytest.param(
        ["STATUS:NEEDS-ACTION"],
        {"progress": "needs-action"},
        ["STATUS:NEEDS-ACTION"],
        id="needs action",
    ),
    pytest.param(
        ["STATUS:CANCELLED"], {"progress": "cancelled"}, ["STATUS:CANCELLED"], id="cancelled"
    ),
    pytest.param(["PRIORITY:1"], {"priority": 1}, ["PRIORITY:1"], id="PRIORITY high"),
    pytest.param(["PRIORITY:9"], {"priority": 9}, ["PRIORITY:9"], id="PRIORITY low"),
    pytest.param(
        ["RELATED-TO:parent-uid"],
        {"relatedTo": {"parent-uid": {"@type": "Relation", "relation": {"parent": True}}}},
        ["RELATED-TO:parent-uid"],
        id="RELATED-TO parent (default RELTYPE)",
    ),
    pytest.param(
        ["RELATED-TO;RELTYPE=PARENT:parent-uid"],
        {"relatedTo": {"parent-uid": {"@type": "Relation", "relation": {"parent": True}}}},
        ["RELATED-TO:parent-uid"],
        id="RELATED-TO explicit PARENT",
    ),
    pytest.param(
        ["RELATED-TO;RELTYPE=CHILD:kid"],
        {"relatedTo": {"kid": {"@type": "Relation", "relation": {"child": True}}}},
        ["RELATED-TO;RELTYPE=CHILD:kid"],
        id="RELATED-TO child",
    ),
    pytest.param(
        ["DTSTART:20260301T090000Z", "RRULE:FREQ=WEEKLY;COUNT=3;BYDAY=MO"],
        {
            "recurrenceRules": [
                {
                    "@type": "RecurrenceRule",
                    "frequency": "weekly",
                    "count": 3,
                    "byDay": [{"@type": "NDay", "day": "mo"}],
                }
            ]
        },
        ["RRULE:FREQ=WEEKLY;COUNT=3;BYDAY=MO"],
        id="RRULE",
    ),
    pytest.param(
        ["CATEGORIES:home,errands"],
        {"keywords": {"home": True, "errands": True}},
        ["CATEGORIES:errands,home"],
        id="CATEGORIES",
    ),
    pytest.param(
        ["DESCRIPTION:two\\nlines"],
        {"description": "two\nlines"},
        ["DESCRIPTION:two\\nlines"],
        id="DESCRIPTION",
    ),
    pytest.param(
        ["LOCATION:Shop"],
        {"locations": {}},  # checked by key presence below
        ["LOCATION"],
        id="LOCATION",
    ),
]


@pytest.mark.parametrize(("props", "expected", "back"), VTODO_TO_TASK)
def test_vtodo_to_task_and_back(props, expected, back):
    [obj] = convert.ics_to_jscal(ics(*props))
    assert obj["@type"] == "Task" and obj["uid"] == "u1" and obj["title"] == "Task"
    for key, value in expected.items():
        if value == {}:
            assert obj.get(key), key
        else:
            assert obj.get(key) == value, (key, obj)
    uploaded = convert.for_upload(obj)
    assert not any(":" in k for k in uploaded), "vendor keys never go to the server"
    out = lines_of(convert.jscal_to_ics([obj]))
    assert "BEGIN:VTODO" in out and "BEGIN:VEVENT" not in out
    for line in back:
        assert any(
            x == line or x.startswith(line + ";") or x.startswith(line + ":") for x in out
        ), (
            line,
            out,
        )
    # and it is a fixed point: the file written back reads as the same Task
    [again] = convert.ics_to_jscal(convert.jscal_to_ics([obj]))
    assert convert.canonical(again) == convert.canonical(obj)


def test_alarm_relative_to_due():
    [obj] = convert.ics_to_jscal(
        ics(
            "DUE:20260301T100000Z",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:Reminder",
            "TRIGGER;RELATED=END:-PT15M",
            "END:VALARM",
        )
    )
    [alert] = obj["alerts"].values()
    assert alert["trigger"] == {"@type": "OffsetTrigger", "offset": "-PT15M", "relativeTo": "end"}
    out = convert.jscal_to_ics([obj]).decode()
    assert "TRIGGER;RELATED=END:-PT15M" in out


def test_absolute_alarm():
    [obj] = convert.ics_to_jscal(
        ics(
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:x",
            "TRIGGER;VALUE=DATE-TIME:20260301T080000Z",
            "END:VALARM",
        )
    )
    [alert] = obj["alerts"].values()
    assert alert["trigger"]["@type"] == "AbsoluteTrigger"
    [again] = convert.ics_to_jscal(convert.jscal_to_ics([obj]))
    assert list(again["alerts"].values())[0]["trigger"] == alert["trigger"]


def test_x_properties_stay_in_the_file_when_the_server_version_comes_down():
    local = ics("X-TODOMAN-THING;X-P=1:keep me", "PRIORITY:5").encode()
    [obj] = convert.ics_to_jscal(local)
    # Unmapped properties ride in the conversion draft's iCalComponent (as jCal), and
    # never go to the server.
    assert ["x-todoman-thing", {"x-p": "1"}, "unknown", "keep me"] in obj["iCalComponent"][
        "properties"
    ]
    assert "iCalComponent" not in convert.for_upload(obj)
    server = {
        **convert.for_upload(obj),
        "id": "T1",
        "taskListId": "L",
        "title": "Edited on the phone",
        "updated": "2026-03-01T10:00:00Z",
    }
    out = convert.jscal_to_ics([server], previous=local).decode()
    assert "SUMMARY:Edited on the phone" in out
    assert "X-TODOMAN-THING;X-P=1:keep me" in out


def test_a_recurring_task_with_an_overridden_instance():
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VTODO\r\nUID:r\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Water plants\r\n"
        "DTSTART:20260302T090000Z\r\nDUE:20260302T100000Z\r\nRRULE:FREQ=WEEKLY\r\nEND:VTODO\r\n"
        "BEGIN:VTODO\r\nUID:r\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Water plants\r\n"
        "RECURRENCE-ID:20260309T090000Z\r\nDTSTART:20260309T090000Z\r\nDUE:20260309T100000Z\r\n"
        "STATUS:COMPLETED\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    [obj] = convert.ics_to_jscal(text)
    assert list(obj["recurrenceOverrides"]) == ["2026-03-09T09:00:00"]
    assert obj["recurrenceOverrides"]["2026-03-09T09:00:00"]["progress"] == "completed"
    out = convert.jscal_to_ics([obj]).decode()
    assert out.count("BEGIN:VTODO") == 2 and "RECURRENCE-ID:20260309T090000Z" in out


TASK_TO_VTODO = [
    pytest.param(
        {"progress": "completed", "progressUpdated": "2026-03-02T10:00:00Z"},
        ["STATUS:COMPLETED", "COMPLETED:20260302T100000Z"],
        id="completed",
    ),
    pytest.param({"percentComplete": 50}, ["PERCENT-COMPLETE:50"], id="percent"),
    pytest.param(
        {"due": "2026-03-01T10:00:00", "timeZone": "America/New_York"},
        ["DUE;TZID=America/New_York:20260301T100000"],
        id="due in a zone",
    ),
    pytest.param(
        {"relatedTo": {"p": {"@type": "Relation", "relation": {"parent": True}}}},
        ["RELATED-TO:p"],
        id="subtask of p",
    ),
    pytest.param({"keywords": {"a": True, "b": True}}, ["CATEGORIES:a,b"], id="keywords"),
    pytest.param({"priority": 3}, ["PRIORITY:3"], id="priority"),
]


@pytest.mark.parametrize(("props", "expected"), TASK_TO_VTODO)
def test_server_task_to_vtodo(props, expected):
    server = normalize_task(
        {
            "@type": "Task",
            "id": "T1",
            "taskListId": "L",
            "uid": "u1",
            "title": "From the server",
            "updated": "2026-03-01T10:00:00Z",
            "sortOrder": 0,
            "isDraft": False,
            **props,
        }
    )
    out = lines_of(convert.jscal_to_ics([server]))
    assert "SUMMARY:From the server" in out
    for line in expected:
        assert line in out, (line, out)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"sortOrder": 0, "isDraft": False, "utcDue": "x"}, {}),
        ({"sortOrder": 4}, {VENDOR_TASK: {"sortOrder": 4}}),
        ({"workflowStatus": None, "estimatedWork": 2}, {VENDOR_TASK: {"estimatedWork": 2}}),
        ({"impact": "major"}, {VENDOR_TASK: {"impact": "major"}}),
    ],
)
def test_normalize_task_parks_what_icalendar_cannot_hold(raw, expected):
    base = {"@type": "Task", "uid": "u", "title": "t"}
    got = normalize_task({**base, **raw})
    assert got == {**base, **expected}
    # parked properties never reach the comparison nor an upload
    assert convert.canonical(got) == convert.canonical(base)
    assert convert.for_upload(got) == convert.for_upload(base)


def test_completed_without_status_survives_the_server():
    # Some clients mark a to-do done with COMPLETED (and 100 %) but no STATUS; todoman
    # reads such a task as done.  After a trip through the server it must still be.
    [obj] = convert.ics_to_jscal(ics("COMPLETED:20260302T100000Z", "PERCENT-COMPLETE:100"))
    server = {**convert.for_upload(obj), "id": "T1", "updated": "2026-03-03T10:00:00Z"}
    assert "COMPLETED:20260302T100000Z" in convert.jscal_to_ics([server]).decode()
