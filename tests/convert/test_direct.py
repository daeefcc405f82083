"""The direct writer (syncd.convert.ical_direct) takes the common events, and only
writes what the component path writes.

tests/convert/test_lean.py compares ``jscal_to_ics`` (which takes the direct path where it
can) with icalendar's own types on generated events and the real-world corpus; here: that
the direct path is really the one taken for events as servers send them, that what it
declines goes the general way, and the same comparison on shapes the others rarely make.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from hypothesis import given

from syncd.convert import ics_to_jscal, jscal_to_ics
from syncd.convert.ical_direct import event_file
from tests.convert.test_roundtrip_props import SETTINGS, events

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "bench"))
import seed  # noqa: E402

# What Cyrus 3.12 sends along with an event's own properties (CalendarEvent/get).
CYRUS_KEYS = {
    "prodId": "-//CyrusIMAP.org/Cyrus 3.12.4-Debian-3.12.4-1//EN",
    "created": "2026-11-28T10:39:36Z",
    "updated": "2026-11-28T10:39:36Z",
    "sequence": 0,
    "priority": 0,
    "descriptionContentType": "text/plain",
    "locale": None,
    "links": None,
    "relatedTo": None,
    "virtualLocations": None,
    "participants": None,
    "recurrenceOverrides": None,
    "useDefaultAlerts": False,
    "alerts": None,
    "isDraft": False,
    "isOrigin": True,
    "showWithoutTime": False,
    "id": "EB-x",
}


def as_cyrus_sends(obj: dict) -> dict:
    return {**CYRUS_KEYS, **obj}


def reference(obj: dict) -> bytes:
    return jscal_to_ics([obj], lean=False)


def direct_and_same(obj: dict) -> None:
    got = event_file(obj)
    assert got is not None, obj
    assert got == reference(obj), obj.get("uid")
    assert jscal_to_ics([obj]) == got


def test_the_benchmarks_events_as_cyrus_sends_them_are_written_directly():
    for ev in seed.make_events(400, prefix="direct"):
        direct_and_same(as_cyrus_sends(seed.to_jscal(ev)))


BASE = as_cyrus_sends(
    {
        "@type": "Event",
        "uid": "u1@example.com",
        "title": "Plan; review, then \\ ship\nnow",
        "description": "Zürich: über-long description " * 4,
        "start": "2026-04-28T12:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT30M",
        "status": "tentative",
        "freeBusyStatus": "free",
        "privacy": "private",
        "keywords": {"Work": True, "a,b": True, "off": False},
        "locations": {"b": {"@type": "Location", "name": "Room; 2"}, "a": {"name": "Hall"}},
    }
)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"timeZone": "Etc/UTC"},
        {"timeZone": "UTC"},
        {"timeZone": None},
        {"showWithoutTime": True, "timeZone": None, "duration": "P2D"},
        {"showWithoutTime": True, "duration": "P1D"},
        {"duration": "PT0S"},
        {"sequence": 3, "priority": 5, "updated": None},
        {"created": None, "updated": None},
        {"title": None, "description": ""},
        {
            "recurrenceRules": [
                {"@type": "RecurrenceRule", "frequency": "weekly", "until": "2026-12-01T23:59:59"}
            ],
            "recurrenceOverrides": {
                "2026-05-12T12:00:00": {"excluded": True},
                "2026-05-05T12:00:00": {"excluded": True},
            },
        },
        {
            "alerts": {
                "b": {
                    "@type": "Alert",
                    "action": "email",
                    "trigger": {"@type": "OffsetTrigger", "offset": "PT5M", "relativeTo": "end"},
                },
                "a": {"trigger": {"@type": "OffsetTrigger", "offset": "-P1DT2H"}},
            }
        },
        {
            "replyTo": {"imip": "mailto:boss@example.com"},
            "participants": {
                "p1": {
                    "name": "Boss, The",
                    "sendTo": {"imip": "mailto:boss@example.com"},
                    "roles": {"owner": True, "attendee": True},
                    "participationStatus": "accepted",
                },
                "p2": {
                    "name": "Ann",
                    "email": "ann@example.com",
                    "roles": {"attendee": True, "optional": True},
                    "expectReply": True,
                    "kind": "individual",
                },
            },
        },
        {"replyTo": {"imip": "mailto:only@example.com"}},
        {"locale": "de-CH"},
        {"locale": "de", "title": None},
        {
            "links": {
                "b": {"@type": "Link", "href": "https://example.com/agenda.pdf"},
                "a": {"href": "https://example.com/", "rel": "describedby"},
                "c": {"href": "cid:x@example.com", "contentType": "text/plain; charset=utf-8"},
                "d": {"href": ""},
            }
        },
        # Alerts the direct lines do not cover: made by the general path's _alarm.
        {
            "alerts": {
                "a": {"trigger": {"@type": "AbsoluteTrigger", "when": "2026-04-28T10:00:00Z"}}
            }
        },
        {"alerts": {"a": {"trigger": {"offset": "-PT5M"}, "acknowledged": "2026-04-28T10:00:00Z"}}},
        # Delegates are lists: icalendar's types, on the scratch component.
        {
            "participants": {
                "p1": {
                    "email": "a@example.com",
                    "roles": {"attendee": True},
                    "delegatedTo": {"p2": True},
                },
                "p2": {"email": "b@example.com", "roles": {"attendee": True}},
            }
        },
    ],
    ids=lambda change: ",".join(change) or "base",
)
def test_each_common_shape_is_written_directly_and_identically(change):
    direct_and_same({**copy.deepcopy(BASE), **change})


@pytest.mark.parametrize(
    "change",
    [
        {"@type": "Task"},
        {"syncd.app:icalKind": {"DTSTART": "utc"}},
        {"iCalComponent": {"properties": [["x-foo", {}, "text", "bar"]]}},
        {"someServerExtension": 1},
        {"color": "red"},
        {"timeZone": "Mars/Olympus_Mons"},
        {"timeZone": "/custom", "timeZones": {"/custom": {"@type": "TimeZone"}}},
        {"start": "2026-04-28T12:00:00.5"},
        {"updated": "2026-11-28T10:39:36+01:00"},
        {"sequence": "3"},
        {"recurrenceOverrides": {"2026-05-12T12:00:00": {"title": "Moved"}}},
        {"locations": {"a": {"name": "Hall", "coordinates": "geo:52.5,13.4"}}},
        {"virtualLocations": {"v": {"uri": "https://meet.example.com/x"}}},
    ],
    ids=lambda change: ",".join(change),
)
def test_what_the_direct_path_declines_goes_the_general_way(change):
    obj = {**copy.deepcopy(BASE), **change}
    assert event_file(obj) is None
    if obj["@type"] == "Event":
        assert jscal_to_ics([obj]) == reference(obj)


def test_a_value_the_general_path_refuses_is_refused_as_before():
    obj = {**copy.deepcopy(BASE), "start": "2026-13-45T12:00:00"}
    assert event_file(obj) is None
    with pytest.raises(ValueError):
        jscal_to_ics([obj])


@SETTINGS
@given(events())
def test_generated_events_without_their_vendor_keys_are_written_identically(data: bytes):
    """What the reader makes carries vendor keys (never written directly); without them,
    these are the many shapes a server could send."""
    for obj in ics_to_jscal(data):
        plain = {k: v for k, v in obj.items() if ":" not in k and k != "iCalComponent"}
        got = event_file(plain)
        if got is not None:
            assert got == reference(plain)


def test_most_real_world_events_are_written_directly_and_identically():
    """The 495-file corpus (contrib/corpus/fetch.py), as a server would send its events:
    without the reader's vendor keys.  9 in 10 take the direct path (6,567 of 6,837 when
    this was written; the rest carry custom zones, moved instances, relations)."""
    from tests.convert.corpus import corpus_files_or_skip

    events = direct = 0
    for path in corpus_files_or_skip():
        try:
            objs = ics_to_jscal(path.read_bytes())
        except Exception:  # noqa: BLE001 - files the reader refuses are not this test's
            continue
        for obj in objs:
            plain = {k: v for k, v in obj.items() if ":" not in k and k != "iCalComponent"}
            if plain.get("@type") != "Event":
                continue
            events += 1
            got = event_file(plain)
            if got is not None:
                direct += 1
                assert got == reference(plain), plain.get("uid")
    assert events > 5000 and direct >= 0.9 * events, (direct, events)


# The direct path remembers what repeats from event to event (UTC times, durations,
# parameters, rules, zones); what it remembers must depend on everything that shapes it.


@pytest.mark.parametrize(
    "stamp", ["2026-02-30T10:00:00Z", "2026-11-28T24:00:00Z", "0000-01-01T00:00:00Z"]
)
def test_a_utc_time_that_does_not_exist_goes_the_general_way_every_time(stamp):
    obj = {**copy.deepcopy(BASE), "updated": stamp}
    for _ in range(2):  # the second time is not answered from anything remembered
        assert event_file(obj) is None
    good = {**copy.deepcopy(BASE), "updated": "2026-02-28T10:00:00Z"}
    for _ in range(2):
        direct_and_same(good)
        assert b"LAST-MODIFIED:20260228T100000Z" in event_file(good)


def test_one_rule_in_different_zones_and_kinds_is_written_for_each():
    rule = {"@type": "RecurrenceRule", "frequency": "weekly", "until": "2026-12-01T23:59:59"}
    shapes = [
        {"timeZone": "Europe/Berlin"},
        {"timeZone": "America/New_York"},
        {"timeZone": None},
        {"showWithoutTime": True, "timeZone": None, "duration": "P1D"},
    ]
    untils = set()
    for _ in range(2):
        for shape in shapes:
            obj = {**copy.deepcopy(BASE), **shape, "recurrenceRules": [copy.deepcopy(rule)]}
            direct_and_same(obj)
            line = next(x for x in event_file(obj).split(b"\r\n") if x.startswith(b"RRULE"))
            untils.add(line)
    assert len(untils) == len(shapes), untils  # one UNTIL per zone and kind
    two = {
        **copy.deepcopy(BASE),
        "recurrenceRules": [rule, {**rule, "frequency": "daily", "count": 3, "until": None}],
    }
    direct_and_same(two)


def test_parameters_and_alarm_offsets_are_written_for_each_value():
    for name, offset in [("Ann", "-PT5M"), ('Bob "B"', "-PT15M"), ("Ann", "PT0S"), ("Ann", "-P1D")]:
        obj = {
            **copy.deepcopy(BASE),
            "participants": {
                "p1": {"name": name, "email": "a@example.com", "roles": {"attendee": True}}
            },
            "alerts": {"a": {"trigger": {"@type": "OffsetTrigger", "offset": offset}}},
        }
        direct_and_same(obj)


def test_zone_definitions_follow_the_events_years():
    for start in ["2026-04-28T12:00:00", "1999-04-28T12:00:00", "2026-04-28T12:00:00"]:
        obj = {**copy.deepcopy(BASE), "start": start}
        direct_and_same(obj)
