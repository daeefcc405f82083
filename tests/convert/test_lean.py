"""The lean property path (``ical_out._Line``) writes the very bytes icalendar's types do.

A file made from scratch (a download, no previous file) is built with ``_Line``s; the
reference is the same mapping with icalendar's own property types (``lean=False``).
Any difference, on any input, is a bug in ``_lean_line``.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given

from syncd.convert import ics_to_jscal, jscal_to_ics
from syncd.convert.ical_out import _lean_line, _Line
from tests.convert.corpus import corpus_files_or_skip
from tests.convert.test_roundtrip_props import SETTINGS, events, tasks

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "bench"))
import seed  # noqa: E402


def same_both_ways(objs: list[dict]) -> None:
    for obj in objs:
        assert jscal_to_ics([obj]) == jscal_to_ics([obj], lean=False), obj.get("uid")
    assert jscal_to_ics(objs) == jscal_to_ics(objs, lean=False)


def test_benchmark_events_are_written_identically():
    same_both_ways([seed.to_jscal(ev) for ev in seed.make_events(300, prefix="lean")])


@SETTINGS
@given(events())
def test_generated_events_are_written_identically(data: bytes):
    same_both_ways(ics_to_jscal(data))


@SETTINGS
@given(tasks())
def test_generated_tasks_are_written_identically(data: bytes):
    same_both_ways(ics_to_jscal(data))


def test_the_real_world_corpus_is_written_identically():
    """495 files from public packages' test data (contrib/corpus/fetch.py), if fetched."""
    files = corpus_files_or_skip()
    checked = 0
    for path in files:
        try:
            objs = ics_to_jscal(path.read_bytes())
        except Exception:  # noqa: BLE001 - files the reader refuses are not this test's
            continue
        same_both_ways(objs)
        checked += len(objs)
    assert checked > 1000


@pytest.mark.parametrize(
    ("name", "value", "params", "text", "expect_params"),
    [
        ("SUMMARY", "a;b,c\\d\ne", None, None, {}),
        ("UID", "x;y", None, "x\\;y", {}),
        ("X-JMAP-ID", "a;b", None, "a;b", {}),  # icalendar writes unknown names verbatim
        ("SEQUENCE", 3, None, "3", {}),
        ("DTSTART", date(2026, 3, 1), None, "20260301", {"VALUE": "DATE"}),
        ("DTSTART", datetime(2026, 3, 1, 9), None, "20260301T090000", {}),
        ("DTSTART", datetime(2026, 3, 1, 9, tzinfo=UTC), None, "20260301T090000Z", {}),
        (
            "DTSTART",
            datetime(2026, 3, 1, 9, tzinfo=ZoneInfo("Europe/Berlin")),
            None,
            "20260301T090000",
            {"TZID": "Europe/Berlin"},
        ),
        # icalendar counts some zones of offset 0 as UTC
        ("DTSTART", datetime(2026, 3, 1, 9, tzinfo=ZoneInfo("Africa/Abidjan")), None, None, {}),
        ("TRIGGER", timedelta(minutes=-90), {"RELATED": "END"}, "-PT1H30M", {"RELATED": "END"}),
        ("CATEGORIES", ["a,b", "c"], None, "a\\,b,c", {}),
        ("ATTENDEE", "mailto:a@example.com", {"CN": "A B"}, None, {"CN": "A B"}),
    ],
)
def test_each_kind_of_value_matches_icalendar(name, value, params, text, expect_params):
    from icalendar import Event

    lean = _lean_line(name, value, dict(params) if params else None)
    assert isinstance(lean, _Line)
    ref = Event()
    ref.add(name, value, parameters=dict(params) if params else None)
    assert lean.text == ref[name].to_ical().decode()
    assert dict(lean.params) == dict(ref[name].params)
    if text is not None:
        assert lean.text == text
    assert dict(lean.params) == expect_params or name == "DTSTART" and text is None


@pytest.mark.parametrize(
    ("name", "value", "params"),
    [
        ("DTSTAMP", datetime(2026, 3, 1, 9), None),  # naive: icalendar makes it UTC itself
        ("ATTENDEE", "mailto:a@example.com\r\nX: y", None),  # icalendar refuses it
        ("ATTENDEE", "mailto:a@example.com", {"DELEGATED-TO": ["mailto:b@example.com"]}),
        ("CONFERENCE", "https://meet.example", {"VALUE": "URI"}),
        ("RRULE", {"FREQ": "DAILY"}, None),
        ("EXDATE", [datetime(2026, 3, 1, 9)], None),
        ("SEQUENCE", True, None),
    ],
)
def test_other_values_are_left_to_icalendar(name, value, params):
    assert _lean_line(name, value, params) is None
