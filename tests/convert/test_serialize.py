"""syncd's iCalendar writer is byte-identical to icalendar's own, only faster."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar, Event

from syncd.convert import jscal_to_ics
from syncd.convert.ical_out import serialize

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "bench"))
import seed  # noqa: E402


@pytest.mark.parametrize("index", range(0, 400, 7))
def test_generated_files_match_icalendar_byte_for_byte(index):
    ev = seed.make_events(400)[index]
    data = jscal_to_ics([seed.to_jscal(ev)])
    cal = Calendar.from_ical(data)
    assert serialize(cal) == cal.to_ical() == data


@given(
    summary=st.text(min_size=0, max_size=200),
    location=st.text(alphabet='aé€😀,;:\\" \n', min_size=0, max_size=120),
    cn=st.text(alphabet='ab :;,"é', min_size=1, max_size=40),
)
def test_folding_escaping_and_parameters_match(summary, location, cn):
    cal = Calendar()
    ev = Event()
    ev.add("UID", "u1")
    ev.add("SUMMARY", summary)
    ev.add("LOCATION", location)
    ev.add("ATTENDEE", "mailto:a@example.com", parameters={"CN": cn, "ROLE": "CHAIR"})
    cal.add_component(ev)
    assert serialize(cal) == cal.to_ical()


def test_shared_generated_zone_is_written_whole_in_every_file():
    objs = [
        seed.to_jscal(ev)
        for ev in seed.make_events(60)
        if ev.zone == "Europe/Berlin" and not ev.all_day
    ][:2]
    assert len(objs) == 2
    for obj in objs:
        text = jscal_to_ics([obj]).decode()
        assert text.count("BEGIN:VTIMEZONE") == 1 and "TZID:Europe/Berlin" in text
        assert "BEGIN:DAYLIGHT" in text and "END:VTIMEZONE" in text


@given(st.text(alphabet="ab\\^,;: é€", max_size=400))
def test_fast_folding_is_icalendars_folding(line):
    from icalendar.parser.string import _foldline

    from syncd.convert.ical_out import fold

    assert fold(line) == _foldline(line)


def test_missing_tzids_agrees_with_icalendar_on_the_corpus_and_seeds(tmp_path):
    from syncd.convert.ical_out import missing_tzids

    calendars = [
        Calendar.from_ical(jscal_to_ics([seed.to_jscal(ev)])) for ev in seed.make_events(200)
    ]
    for cal in calendars:
        # with the zones present and without them
        assert missing_tzids(cal) == cal.get_missing_tzids()
        bare = Calendar.from_ical(cal.to_ical())
        bare.subcomponents = [c for c in bare.subcomponents if c.name != "VTIMEZONE"]
        assert missing_tzids(bare) == bare.get_missing_tzids()
