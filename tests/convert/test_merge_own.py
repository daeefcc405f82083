"""A server change written over a file that holds nothing of its own
(``ical_out._over_own_rendering``): the very bytes the merge gives, without parsing the
old file with icalendar (2 ms a file; a pass of 1,000 server changes spent most of its
time there).  Anything the merge could bring back takes the merge."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar

from syncd.convert import ical_out, ics_to_jscal, jscal_to_ics
from syncd.convert.ical_direct import event_file
from tests.convert.test_merge_followers import EVENT, changed
from tests.convert.test_roundtrip_props import SETTINGS, events

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "bench"))
import seed  # noqa: E402


def merged(obj: dict, previous: bytes, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The general merge's file, the shortcut switched off."""
    with monkeypatch.context() as m:
        m.setattr(ical_out, "_over_own_rendering", lambda obj, previous: None)
        return jscal_to_ics([obj], previous=previous)


def plain(obj: dict) -> dict:
    """An object as a server sends it: without the reader's vendor keys."""
    return {k: v for k, v in obj.items() if ":" not in k and k != "iCalComponent"}


def same_or_declined(new: dict, previous: bytes, monkeypatch) -> bool:
    """The shortcut gives what the merge gives, or declines; True if it took it."""
    fast = ical_out._over_own_rendering(new, previous)
    if fast is not None:
        assert fast == merged(new, previous, monkeypatch), new.get("uid")
        assert jscal_to_ics([new], previous=previous) == fast
    return fast is not None


BENCH = [seed.to_jscal(ev) for ev in seed.make_events(300, prefix="own")]


def test_server_changes_over_the_benchmarks_files(monkeypatch):
    rnd = random.Random(21)
    retitled = other = 0
    for old in BENCH:
        previous = jscal_to_ics([old])
        retitled += same_or_declined(
            dict(old, title="changed on the server"), previous, monkeypatch
        )
        for new in (
            dict(old, start=rnd.choice(BENCH)["start"]),  # moved, perhaps out of its zone's span
            {**rnd.choice(BENCH), "uid": old["uid"]},  # anything else under that UID
        ):
            other += same_or_declined(new, previous, monkeypatch)
    # Every file syncd wrote holds nothing of its own: a new title always takes it.
    assert retitled == len(BENCH)
    assert other > len(BENCH) // 2  # others where the zones the file needs stay the same


@SETTINGS
@given(events(), events(), st.booleans())
def test_server_changes_over_generated_files(old_data, new_data, same_event):
    old = plain(ics_to_jscal(old_data)[0])
    previous = event_file(old)
    if previous is None or old.get("recurrenceId"):
        return
    new = plain(ics_to_jscal(new_data)[0])
    new = dict(old, title=new.get("title", "x")) if same_event else {**new, "uid": old["uid"]}
    with pytest.MonkeyPatch.context() as monkeypatch:
        same_or_declined(new, previous, monkeypatch)


def test_the_old_file_is_not_parsed_by_icalendar(monkeypatch):
    previous = jscal_to_ics([EVENT])

    def refuse(*args, **kwargs):
        raise AssertionError("parsed with icalendar")

    monkeypatch.setattr(Calendar, "from_ical", classmethod(refuse))
    out = jscal_to_ics([changed(title="Budget review")], previous=previous)
    assert b"SUMMARY:Budget review" in out


@pytest.mark.parametrize(
    "edit",
    [
        # a property of the file's own (a client's X- property)
        lambda f: f.replace(b"UID:", b"X-KHAL-THING:kept\r\nUID:"),
        # an alarm text of the user's
        lambda f: f.replace(
            b"DESCRIPTION:Architecture review\r\nTRIGGER:-PT15M",
            b"DESCRIPTION:Slides\r\nTRIGGER:-PT15M",
        ),
        # a calendar line of the file's
        lambda f: f.replace(b"VERSION:2.0\r\n", b"VERSION:2.0\r\nX-WR-CALNAME:Work\r\n"),
        # a zone written otherwise than syncd writes it
        lambda f: f.replace(b"TZNAME:CEST", b"TZNAME:MESZ"),
        # folded otherwise
        lambda f: f.replace(b"SUMMARY:Architecture review", b"SUMMARY:Architecture\r\n  review"),
    ],
)
def test_a_file_with_anything_of_its_own_is_merged(edit, monkeypatch):
    previous = edit(jscal_to_ics([EVENT]))
    assert previous != jscal_to_ics([EVENT])
    new = changed(title="Budget review")
    assert ical_out._over_own_rendering(new, previous) is None
    assert jscal_to_ics([new], previous=previous) == merged(new, previous, monkeypatch)


def test_a_zone_span_the_new_dates_need_otherwise_is_merged():
    previous = jscal_to_ics([EVENT])
    assert ical_out._over_own_rendering(changed(start="2031-07-01T10:00:00"), previous) is None
