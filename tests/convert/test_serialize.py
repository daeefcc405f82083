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


@given(st.text(alphabet="ab\\^,;: é€中😀", max_size=400))
def test_fast_folding_is_icalendars_folding(line):
    from icalendar.parser import string

    from syncd.convert.ical_out import fold

    icalendars = getattr(string, "_foldline", None)  # private: may be renamed
    if icalendars is None:
        pytest.skip("this icalendar has no _foldline to compare with")
    assert fold(line) == icalendars(line)


@pytest.mark.parametrize(
    ("line", "lines"),
    [
        ("é" * 37 + "x", ["é" * 37, "x"]),  # 74 octets fill a line
        ("x" + "é" * 37, ["x" + "é" * 36, "é"]),  # a 2-octet character is not split
        ("x" * 72 + "€y", ["x" * 72, "€y"]),  # nor a 3-octet one (75 octets with it)
        ("x" * 71 + "€y", ["x" * 71 + "€", "y"]),
        ("é" + "x" * 71 + "\\n", ["é" + "x" * 71, "\\n"]),  # an escape stays whole
        ("é" + "x" * 71 + "^n", ["é" + "x" * 71, "^n"]),
        ("😀" * 19 + "ab", ["😀" * 18, "😀ab"]),
    ],
)
def test_folding_counts_octets_and_keeps_characters_and_escapes_whole(line, lines):
    from syncd.convert.ical_out import fold

    folded = fold(line)
    assert folded.split("\r\n ") == lines
    assert all(len(part.encode()) <= 74 for part in lines)


@given(st.text(alphabet="ab\\N\r\n,;:é", max_size=80))
def test_the_direct_writers_escaping_is_icalendars(text):
    from icalendar.prop import vText

    from syncd.convert.ical_out import icalendar_escape

    assert icalendar_escape(text) == vText(text).to_ical().decode()


def test_syncd_uses_no_private_name_of_icalendar():
    """The declared icalendar versions (pyproject.toml) must hold: a private name can
    go in any release (``_foldline`` and ``_escape_char`` came and moved within 7.x)."""
    import ast

    root = Path(__file__).parents[2] / "syncd"
    found = [
        f"{path.relative_to(root)}:{node.lineno}: {node.module}.{alias.name}"
        for path in root.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("icalendar")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert found == [] and root.is_dir()


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
