"""A server change written over a file (``jscal_to_ics(..., previous=...)``): what the old
file had of its own stays, what was only written for the old version follows the new.

Two things that were kept and should not have been (found comparing merged files with
fresh ones, session 21): an alarm's text that was the old title, and a VTIMEZONE
generated for a span of years the event has left."""

from __future__ import annotations

import copy
import re

from icalendar import Calendar

from syncd.convert import ics_to_jscal, jscal_to_ics

EVENT = {
    "@type": "Event",
    "uid": "review@example.com",
    "title": "Architecture review",
    "start": "2026-06-10T10:00:00",
    "timeZone": "Europe/Berlin",
    "duration": "PT1H",
    "alerts": {
        "a1": {
            "@type": "Alert",
            "trigger": {"@type": "OffsetTrigger", "offset": "-PT15M"},
            "action": "display",
        },
        "a2": {
            "@type": "Alert",
            "trigger": {"@type": "OffsetTrigger", "offset": "-PT1H"},
            "action": "email",
        },
    },
}


def changed(**fields) -> dict:
    return {**copy.deepcopy(EVENT), **fields}


def alarm_texts(data: bytes) -> list[tuple[str, str, str]]:
    cal = Calendar.from_ical(data)
    return [
        (str(a["ACTION"]), str(a.get("SUMMARY", "")), str(a.get("DESCRIPTION", "")))
        for a in cal.walk("VALARM")
    ]


def test_an_alarm_text_that_was_the_old_title_follows_the_new_title():
    before = jscal_to_ics([EVENT])
    assert ("DISPLAY", "", "Architecture review") in alarm_texts(before)
    after = jscal_to_ics([changed(title="Budget review")], previous=before)
    assert alarm_texts(after) == alarm_texts(jscal_to_ics([changed(title="Budget review")]))
    assert ("DISPLAY", "", "Budget review") in alarm_texts(after)
    assert ("EMAIL", "Budget review", "Budget review") in alarm_texts(after)


def test_an_alarm_text_of_its_own_is_kept():
    before = jscal_to_ics([EVENT]).replace(
        b"DESCRIPTION:Architecture review\r\nTRIGGER:-PT15M",
        b"DESCRIPTION:Bring the slides\r\nTRIGGER:-PT15M",
    )
    assert b"Bring the slides" in before
    after = jscal_to_ics([changed(title="Budget review")], previous=before)
    assert ("DISPLAY", "", "Bring the slides") in alarm_texts(after)


def test_an_email_alarm_written_with_the_old_description_follows_the_new_one():
    old = changed(description="Room 4")
    before = jscal_to_ics([old])
    assert ("EMAIL", "Architecture review", "Room 4") in alarm_texts(before)
    after = jscal_to_ics([changed(description="Room 7")], previous=before)
    assert ("EMAIL", "Architecture review", "Room 7") in alarm_texts(after)


def span(data: bytes) -> tuple[str, str]:
    m = re.search(rb"This timezone only works from (\S+) to (\S+)\.", data)
    assert m is not None
    return m[1].decode(), m[2].decode()


def test_a_generated_zone_the_event_moved_out_of_is_made_again_for_its_new_dates():
    before = jscal_to_ics([EVENT])
    assert span(before) == ("2025-01-01", "2028-01-01")
    moved = changed(start="2031-07-01T10:00:00")
    after = jscal_to_ics([moved], previous=before)
    assert span(after) == span(jscal_to_ics([moved]))  # the zone a new file would get
    # Its observances reach the new date: that spring's change to summer time is listed
    # (read by RFC 5545's rules, the old zone's last onset, winter time in 2027, would
    # have gone on for ever).
    assert b"20310330T030000" in after and b"20310330T030000" not in before
    assert ics_to_jscal(after)[0]["start"] == "2031-07-01T10:00:00"


def test_a_generated_zone_that_still_covers_the_event_is_kept_as_it_was():
    before = jscal_to_ics([EVENT])
    after = jscal_to_ics([changed(start="2026-09-01T10:00:00")], previous=before)
    assert span(after) == span(before)


def test_a_zone_without_a_span_is_a_clients_own_and_is_kept():
    # Thunderbird's compact zone: RRULE-based, no span named.  It covers any year.
    compact = (
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
        "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
        "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
        "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
        "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\n"
    )
    fresh = jscal_to_ics([EVENT]).decode()
    start, end = fresh.index("BEGIN:VTIMEZONE"), fresh.index("END:VTIMEZONE\r\n") + 15
    before = (fresh[:start] + compact + fresh[end:]).encode()
    after = jscal_to_ics([changed(start="2031-07-01T10:00:00")], previous=before)
    assert b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3" in after  # the same zone, as written
    assert b"only works" not in after


def test_a_span_comment_naming_no_real_date_leaves_the_zone_as_it_was():
    before = jscal_to_ics([EVENT]).replace(b"2028-01-01.", b"2028-13-01.")
    after = jscal_to_ics([changed(start="2031-07-01T10:00:00")], previous=before)
    assert b"2028-13-01" in after  # kept: nothing to go by
