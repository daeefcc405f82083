"""Merge-back parses each VTIMEZONE once per process (ical_out._parse_sharing_zones):
the parsed file, and the file merged from it, are exactly what a whole parse gives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from icalendar import Calendar

from syncd.convert import ical_out, ics_to_jscal, jscal_to_ics
from tests.convert.corpus import corpus_files_or_skip

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "bench"))


def merged_both_ways(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    objs = ics_to_jscal(data)
    changed = [dict(objs[0], title="changed on the server")] + objs[1:]
    fast = jscal_to_ics(changed, previous=data)
    with monkeypatch.context() as m:
        m.setattr(ical_out, "_parse_sharing_zones", lambda previous: None)
        whole = jscal_to_ics(changed, previous=data)
    return fast, whole


def test_a_file_syncd_wrote_merges_the_same_and_its_zone_is_parsed_once(monkeypatch):
    import seed

    events = [seed.to_jscal(ev) for ev in seed.make_events(40, prefix="zones")]
    files = [jscal_to_ics([obj]) for obj in events if obj.get("timeZone")]
    assert len(files) > 10
    # The merge itself: a file syncd wrote otherwise takes the shortcut (test_merge_own).
    monkeypatch.setattr(ical_out, "_over_own_rendering", lambda obj, previous: None)
    ical_out._parsed_zone.cache_clear()
    for data in files:
        fast, whole = merged_both_ways(data, monkeypatch)
        assert fast == whole
        assert b"changed on the server" in fast
    info = ical_out._parsed_zone.cache_info()
    assert info.hits > 0 and info.currsize < len(files), info
    for data in files:  # shared zones are read-only: a second merge is the same again
        assert merged_both_ways(data, monkeypatch)[0] == merged_both_ways(data, monkeypatch)[1]


def test_zones_after_the_items_or_none_at_all_take_the_whole_parse():
    zone = (
        b"BEGIN:VTIMEZONE\r\nTZID:Custom/Zone\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        b"TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    event = (
        b"BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20260101T000000Z\r\n"
        b"DTSTART;TZID=Custom/Zone:20260301T090000\r\nEND:VEVENT\r\n"
    )
    head, tail = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n", b"END:VCALENDAR\r\n"
    assert ical_out._parse_sharing_zones(head + event + zone + tail) is None
    assert ical_out._parse_sharing_zones(head + event + tail) is None
    fine = ical_out._parse_sharing_zones(head + zone + event + tail)
    assert fine is not None
    assert fine.to_ical() == Calendar.from_ical(head + zone + event + tail).to_ical()
    unix = (head + zone + event + tail).replace(b"\r\n", b"\n")
    parsed = ical_out._parse_sharing_zones(unix)
    assert parsed is not None and parsed.to_ical() == Calendar.from_ical(unix).to_ical()


def test_the_real_world_corpus_merges_the_same(monkeypatch):
    """Every corpus file with a VTIMEZONE (contrib/corpus/fetch.py), if fetched."""
    files = corpus_files_or_skip()
    checked = shared = 0
    for path in files:
        data = path.read_bytes()
        if b"BEGIN:VTIMEZONE" not in data:
            continue
        try:
            whole_parse = Calendar.from_ical(data).to_ical()
        except Exception:  # noqa: BLE001 - files icalendar refuses are not this test's
            continue
        parsed = ical_out._parse_sharing_zones(data)
        if parsed is not None:
            assert parsed.to_ical() == whole_parse, path.name
            shared += 1
        checked += 1
        if len(data) > 100_000:
            continue  # thousands of items in one file: parsed above, too slow to merge twice
        try:
            fast, whole = merged_both_ways(data, monkeypatch)
        except Exception:  # noqa: BLE001 - files the reader refuses are not this test's
            continue
        assert fast == whole, path.name
    assert checked > 100 and shared > 100  # 115 of 133 take the shared-zone parse
