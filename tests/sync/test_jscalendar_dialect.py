"""A server that speaks JSCalendar 2.0 (draft-ietf-calext-jscalendarbis), end to end.

The fake server, set to ``jscalendar="jscalendarbis"``, refuses RFC 8984-only names
(``recurrenceRules``, ``replyTo``, a participant's ``sendTo``) on /set and in /get's
``properties``, as a strict 2.0 server would: what it holds proves what syncd sent.
"""

from __future__ import annotations

import icalendar
import pytest

from syncd.convert.dialect import CARRIER

MEETING = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:{uid}\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260302T100000\r
DURATION:PT1H\r
SUMMARY:{title}\r
{rules}ORGANIZER;CN=Olga:mailto:olga@example.com\r
ATTENDEE;CN=Ann;PARTSTAT=ACCEPTED:mailto:ann@example.com\r
ATTENDEE;ROLE=OPT-PARTICIPANT;LANGUAGE=de:mailto:bob@example.com\r
END:VEVENT\r
END:VCALENDAR\r
"""
WEEKLY = "RRULE:FREQ=WEEKLY;COUNT=10\r\n"
MONTHLY = "RRULE:FREQ=MONTHLY;BYMONTHDAY=1\r\n"


def set_account_key(pair, line: str) -> None:
    """Add a key to the harness's account ``home`` (``write_config`` only writes the pair)."""
    text = pair.config_path.read_text()
    pair.config_path.write_text(text.replace("pairs:\n", f"    {line}\npairs:\n", 1))


def write_meeting(pair, uid: str = "m1", title: str = "Planning", rules: str = WEEKLY) -> None:
    d = pair.root / "personal"
    d.mkdir(exist_ok=True)
    (d / f"{uid}.ics").write_text(MEETING.format(uid=uid, title=title, rules=rules))


def vevent(data: bytes) -> icalendar.cal.Component:
    return next(iter(icalendar.Calendar.from_ical(data).walk("VEVENT")))


@pytest.fixture
def bis_pair(pair):
    pair.server.jscalendar = "jscalendarbis"
    return pair


@pytest.mark.parametrize("setting", ["auto", "jscalendarbis"])
def test_a_local_meeting_reaches_a_2_0_server_in_2_0_names(bis_pair, setting):
    set_account_key(bis_pair, f"jscalendar: {setting}")
    write_meeting(bis_pair)
    result = bis_pair.sync()
    assert result.ok, result.summary()
    stored = bis_pair.server.by_uid("m1")
    assert stored is not None
    assert stored["recurrenceRule"]["frequency"] == "weekly"
    assert stored["organizerCalendarAddress"] == "mailto:olga@example.com"
    assert stored["version"] == "2.0"
    assert "recurrenceRules" not in stored and "replyTo" not in stored
    people = {p["calendarAddress"]: p for p in stored["participants"].values()}
    assert set(people) == {
        "mailto:olga@example.com",
        "mailto:ann@example.com",
        "mailto:bob@example.com",
    }
    assert not any("sendTo" in p for p in people.values())
    assert people["mailto:ann@example.com"]["roles"] == {"required": True}
    assert people["mailto:bob@example.com"]["roles"] == {"optional": True}
    assert people["mailto:bob@example.com"][CARRIER] == {"language": "de"}  # no 2.0 place
    assert people["mailto:olga@example.com"]["roles"] == {"owner": True}

    again = bis_pair.sync()  # the server's copy compares equal: nothing crosses back
    assert again.ok and again.changes == 0


def test_a_2_0_object_on_the_server_comes_down_as_the_right_ics(bis_pair):
    bis_pair.server.put_event(
        {
            "@type": "Event",
            "version": "2.0",
            "uid": "srv1",
            "title": "Standup",
            "start": "2026-03-02T09:00:00",
            "timeZone": "Europe/Berlin",
            "duration": "PT15M",
            "recurrenceRule": {"@type": "RecurrenceRule", "frequency": "daily", "count": 5},
            "organizerCalendarAddress": "mailto:olga@example.com",
            "participants": {
                "o": {
                    "calendarAddress": "mailto:olga@example.com",
                    "name": "Olga",
                    "roles": {"owner": True},
                },
                "a": {
                    "calendarAddress": "mailto:ann@example.com",
                    "roles": {"required": True},
                    "participationStatus": "tentative",
                },
                "c": {"calendarAddress": "mailto:cy@example.com", "roles": {"chair": True}},
            },
            "recurrenceOverrides": {
                "2026-03-04T09:00:00": {"participants/a/participationStatus": "declined"}
            },
        }
    )
    result = bis_pair.sync()
    assert result.ok, result.summary()
    data = bis_pair.files()["srv1.ics"]
    cal = icalendar.Calendar.from_ical(data)
    master, moved = sorted(cal.walk("VEVENT"), key=lambda c: "RECURRENCE-ID" in c)
    assert master["RRULE"]["FREQ"] == ["DAILY"] and master["RRULE"]["COUNT"] == [5]
    assert str(master["ORGANIZER"]) == "mailto:olga@example.com"
    attendees = {str(a): a.params for a in master["ATTENDEE"]}
    assert set(attendees) == {"mailto:ann@example.com", "mailto:cy@example.com"}
    assert attendees["mailto:ann@example.com"]["ROLE"] == "REQ-PARTICIPANT"
    assert attendees["mailto:ann@example.com"]["PARTSTAT"] == "TENTATIVE"
    assert attendees["mailto:cy@example.com"]["ROLE"] == "CHAIR"
    declined = {str(a): a.params.get("PARTSTAT") for a in moved["ATTENDEE"]}
    assert declined["mailto:ann@example.com"] == "DECLINED"

    again = bis_pair.sync()
    assert again.ok and again.changes == 0
    assert bis_pair.files()["srv1.ics"] == data


def test_what_2_0_cannot_hold_survives_edits_on_both_sides(bis_pair):
    write_meeting(bis_pair, rules=WEEKLY + MONTHLY)  # two RRULEs: 2.0 holds one
    assert bis_pair.sync().ok
    stored = bis_pair.server.by_uid("m1")
    assert stored["recurrenceRule"]["frequency"] == "weekly"
    assert [r["frequency"] for r in stored[CARRIER]["recurrenceRules"]] == ["weekly", "monthly"]

    write_meeting(bis_pair, title="Planning (moved)", rules=WEEKLY + MONTHLY)
    result = bis_pair.sync()
    assert result.ok, result.summary()
    assert bis_pair.server.by_uid("m1")["title"] == "Planning (moved)"
    assert len(vevent(bis_pair.files()["m1.ics"]).get("RRULE")) == 2

    # another 2.0 client edits the title only: our second rule is still good
    stored = dict(bis_pair.server.by_uid("m1"))
    stored["title"] = "Planning (server)"
    bis_pair.server.put_event(stored)
    assert bis_pair.sync().ok
    ev = vevent(bis_pair.files()["m1.ics"])
    assert str(ev["SUMMARY"]) == "Planning (server)" and len(ev.get("RRULE")) == 2
    languages = {str(a): a.params.get("LANGUAGE") for a in ev["ATTENDEE"]}
    assert languages["mailto:bob@example.com"] == "de"  # parked on the participant

    # one rule again, locally: the parked list must go, or the next read resurrects it
    write_meeting(bis_pair, title="Planning (server)", rules=WEEKLY)
    assert bis_pair.sync().ok
    assert CARRIER not in bis_pair.server.by_uid("m1")
    assert bis_pair.sync().changes == 0
    assert isinstance(vevent(bis_pair.files()["m1.ics"]).get("RRULE"), icalendar.prop.vRecur)


def test_auto_on_an_empty_2_0_account_asks_before_the_first_write(bis_pair):
    write_meeting(bis_pair)
    before = len(bis_pair.server.request_args)
    assert bis_pair.sync().ok
    probes = [
        args["properties"]
        for req in bis_pair.server.request_args[before:]
        for name, args in req
        if name == "CalendarEvent/get" and args.get("properties") and args.get("ids") == []
    ]
    assert sorted(p[1] for p in probes) == ["recurrenceRule", "recurrenceRules"]
    assert "recurrenceRule" in bis_pair.server.by_uid("m1")


def test_auto_keeps_writing_rfc8984_to_a_1_0_server(pair):
    write_meeting(pair)
    assert pair.sync().ok
    stored = pair.server.by_uid("m1")
    assert stored["recurrenceRules"][0]["frequency"] == "weekly"
    assert "recurrenceRule" not in stored and "version" not in stored
    assert all("sendTo" in p for p in stored["participants"].values())


def test_a_forced_setting_is_obeyed_and_a_refusal_is_reported_per_item(bis_pair):
    set_account_key(bis_pair, "jscalendar: rfc8984")
    write_meeting(bis_pair)
    result = bis_pair.sync()
    assert not result.ok
    problems = [e for c in result.collections for e in c.errors]
    assert any("invalidProperties" in p and "recurrenceRules" in p for p in problems), problems
    assert bis_pair.server.by_uid("m1") is None
    assert (bis_pair.root / "personal" / "m1.ics").exists()

    set_account_key(bis_pair, "jscalendar: jscalendarbis")
    text = bis_pair.config_path.read_text().replace("    jscalendar: rfc8984\n", "")
    bis_pair.config_path.write_text(text)
    assert bis_pair.sync().ok
    assert "recurrenceRule" in bis_pair.server.by_uid("m1")
