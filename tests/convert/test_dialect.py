"""JSCalendar 2.0 (draft-ietf-calext-jscalendarbis) at the server boundary.

The internal model stays RFC 8984; ``to_server``/``patch_to_server`` and ``from_server``
translate.  The promises the engine relies on: internal -> 2.0 -> internal is the
identity (what 2.0 cannot hold rides in ``syncd.app:rfc8984``), a parked value never
outlives an edit another client made to what it was derived from, and the engine's
update patches, applied by a 2.0 server, leave the object the engine meant.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.convert import canonical, for_upload, ics_to_jscal
from syncd.convert.dialect import (
    CARRIER,
    Dialect,
    detect,
    from_probe,
    from_server,
    patch_to_server,
    to_server,
)
from tests.convert.test_roundtrip_props import SETTINGS, events, tasks

BIS = Dialect.JSCALENDARBIS
V1 = Dialect.RFC8984

WEEKLY = {"@type": "RecurrenceRule", "frequency": "weekly", "count": 10}
MONTHLY = {"@type": "RecurrenceRule", "frequency": "monthly", "byMonthDay": [1]}


def base(**extra: Any) -> dict[str, Any]:
    return {
        "@type": "Event",
        "uid": "u1@example.com",
        "title": "Review",
        "start": "2026-03-01T10:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        **extra,
    }


def person(addr: str, **extra: Any) -> dict[str, Any]:
    return {"@type": "Participant", "sendTo": {"imip": f"mailto:{addr}"}, **extra}


def round_trip(obj: dict[str, Any]) -> dict[str, Any]:
    """Through the server as JSON, as a server stores it."""
    return from_server(json.loads(json.dumps(to_server(obj, BIS))), BIS)


# -- the names ------------------------------------------------------------------------


def test_one_recurrence_rule_is_renamed_and_nothing_is_parked() -> None:
    out = to_server(base(recurrenceRules=[WEEKLY]), BIS)
    assert out["recurrenceRule"] == WEEKLY
    assert "recurrenceRules" not in out and CARRIER not in out
    assert out["version"] == "2.0"
    assert round_trip(base(recurrenceRules=[WEEKLY])) == base(recurrenceRules=[WEEKLY])


def test_a_second_rule_and_an_exrule_are_parked_and_come_back() -> None:
    obj = base(recurrenceRules=[WEEKLY, MONTHLY], excludedRecurrenceRules=[MONTHLY])
    out = to_server(obj, BIS)
    assert out["recurrenceRule"] == WEEKLY
    assert "excludedRecurrenceRules" not in out
    assert out[CARRIER] == {
        "recurrenceRules": [WEEKLY, MONTHLY],
        "excludedRecurrenceRules": [MONTHLY],
    }
    assert round_trip(obj) == obj


def test_a_parked_rule_list_is_dropped_once_another_client_changed_the_rule() -> None:
    server = to_server(base(recurrenceRules=[WEEKLY, MONTHLY]), BIS)
    server["recurrenceRule"] = {"@type": "RecurrenceRule", "frequency": "daily"}
    assert from_server(server, BIS)["recurrenceRules"] == [server["recurrenceRule"]]
    del server["recurrenceRule"]  # and now it does not recur at all
    assert "recurrenceRules" not in from_server(server, BIS)


def test_reply_to_becomes_the_organizer_address() -> None:
    out = to_server(base(replyTo={"imip": "mailto:org@example.com"}), BIS)
    assert out["organizerCalendarAddress"] == "mailto:org@example.com"
    assert "replyTo" not in out and CARRIER not in out
    web = base(replyTo={"imip": "mailto:org@example.com", "web": "https://org.example/rsvp"})
    out = to_server(web, BIS)
    assert out["organizerCalendarAddress"] == "mailto:org@example.com"
    assert out[CARRIER] == {"replyTo": web["replyTo"]}
    assert round_trip(web) == web


def test_a_server_organizer_comes_back_as_reply_to() -> None:
    assert from_server(base(organizerCalendarAddress="mailto:o@example.com"), BIS) == base(
        replyTo={"imip": "mailto:o@example.com"}
    )
    assert from_server(base(organizerCalendarAddress="https://o.example/"), BIS) == base(
        replyTo={"other": "https://o.example/"}
    )


def test_send_to_becomes_the_calendar_address() -> None:
    obj = base(
        participants={
            "a": person("ann@example.com", roles={"attendee": True}),
            "b": {
                "@type": "Participant",
                "sendTo": {"imip": "mailto:bob@example.com", "other": "xmpp:bob@example.com"},
            },
        }
    )
    out = to_server(obj, BIS)["participants"]
    assert out["a"] == {
        "@type": "Participant",
        "calendarAddress": "mailto:ann@example.com",
        "roles": {"required": True},
    }
    assert out["b"]["calendarAddress"] == "mailto:bob@example.com"
    assert out["b"][CARRIER] == {"sendTo": obj["participants"]["b"]["sendTo"]}
    assert round_trip(obj) == obj


@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        ({"attendee": True}, {"required": True}),
        ({"attendee": True, "chair": True}, {"chair": True}),
        ({"attendee": True, "optional": True}, {"optional": True}),
        ({"informational": True}, {"informational": True}),
        ({"owner": True}, {"owner": True}),
        ({"owner": True, "attendee": True}, {"owner": True, "required": True}),
    ],
)
def test_roles_lose_attendee_and_gain_required(v1: dict, v2: dict) -> None:
    obj = base(participants={"p": person("p@example.com", roles=v1)})
    out = to_server(obj, BIS)["participants"]["p"]
    assert out["roles"] == v2 and CARRIER not in out
    assert round_trip(obj) == obj


def test_roles_2_0_cannot_say_are_parked() -> None:
    obj = base(participants={"p": person("p@example.com", roles={"contact": True})})
    assert to_server(obj, BIS)["participants"]["p"][CARRIER] == {"roles": {"contact": True}}
    assert round_trip(obj) == obj


def test_delegation_names_addresses_not_participant_ids() -> None:
    obj = base(
        participants={
            "ann": person("ann@example.com", delegatedTo={"bob": True}),
            "bob": person("bob@example.com", delegatedFrom={"ann": True}),
            "cy": person("cy@example.com", delegatedTo={"mailto:nobody@example.com": True}),
        }
    )
    out = to_server(obj, BIS)["participants"]
    assert out["ann"]["delegatedTo"] == {"mailto:bob@example.com": True}
    assert out["bob"]["delegatedFrom"] == {"mailto:ann@example.com": True}
    assert out["cy"]["delegatedTo"] == {"mailto:nobody@example.com": True}
    assert round_trip(obj) == obj


def test_obsolete_and_reserved_participant_properties_are_parked() -> None:
    parked = {
        "language": "de",
        "scheduleAgent": "client",
        "scheduleStatus": ["2.0"],
        "locationId": "room",
        "invitedBy": "x",
    }
    obj = base(participants={"p": person("p@example.com", **parked, scheduleSequence=2)})
    out = to_server(obj, BIS)["participants"]["p"]
    assert out[CARRIER] == parked
    assert out["scheduleSequence"] == 2  # reserved *for* JMAP Calendars: it stays
    assert not set(parked) & set(out)
    assert round_trip(obj) == obj


def test_locations_links_and_virtual_locations() -> None:
    obj = base(
        locations={
            "room": {"@type": "Location", "name": "Room 1", "description": "2nd floor"},
            "end": {"@type": "Location", "relativeTo": "end", "timeZone": "Asia/Tokyo"},
        },
        virtualLocations={
            "v": {"@type": "VirtualLocation", "uri": "https://m", "description": "d"}
        },
        links={"l": {"@type": "Link", "href": "https://x/a.png", "display": "badge", "cid": "c1"}},
    )
    out = to_server(obj, BIS)
    assert out["endTimeZone"] == "Asia/Tokyo"
    assert out["locations"] == {
        "room": {"@type": "Location", "name": "Room 1", CARRIER: {"description": "2nd floor"}}
    }
    assert out["virtualLocations"]["v"][CARRIER] == {"description": "d"}
    assert out["links"]["l"]["display"] == {"badge": True}
    assert out["links"]["l"][CARRIER] == {"cid": "c1"}
    assert round_trip(obj) == obj


def test_a_server_end_time_zone_comes_back_as_an_end_location() -> None:
    got = from_server(base(endTimeZone="Asia/Tokyo"), BIS)
    assert got["locations"] == {
        "end": {"@type": "Location", "relativeTo": "end", "timeZone": "Asia/Tokyo"}
    }
    assert "endTimeZone" not in got


def test_obsolete_and_reserved_top_level_properties_are_parked() -> None:
    parked = {
        "timeZones": {"/X": {"@type": "TimeZone", "tzId": "X"}},
        "localizations": {"de": {"title": "Prüfung"}},
        "requestStatus": "2.0;Success",
        "sentBy": "boss@example.com",
    }
    obj = base(**parked, useDefaultAlerts=True, method="request")
    out = to_server(obj, BIS)
    assert out[CARRIER] == parked
    assert out["useDefaultAlerts"] is True and out["method"] == "request"
    assert round_trip(obj) == obj
    task = {"@type": "Task", "uid": "t", "progress": "completed", "progressUpdated": "2024Z"}
    assert to_server(task, BIS)[CARRIER] == {"progressUpdated": "2024Z"}
    assert round_trip(task) == task


# -- overrides ------------------------------------------------------------------------


def test_override_patches_are_translated_pointer_by_pointer() -> None:
    obj = base(
        recurrenceRules=[WEEKLY],
        participants={"a": person("ann@example.com", roles={"attendee": True})},
        replyTo={"imip": "mailto:ann@example.com"},
        recurrenceOverrides={
            "2026-03-08T10:00:00": {"participants/a/participationStatus": "declined"},
            "2026-03-15T10:00:00": {"excluded": True},
            "2026-03-22T10:00:00": {
                "participants/a/sendTo": {"imip": "mailto:ann@other.example"},
                "participants/a/roles": {"attendee": True, "chair": True},
                "participants/a/language": "fr",
                "participants/b": person("bob@example.com", delegatedFrom={"a": True}),
                "replyTo": {"imip": "mailto:bob@example.com"},
                "privacy": "private",
                "title": "Moved",
                "locations/l1/description": "basement",
            },
        },
    )
    out = to_server(obj, BIS)["recurrenceOverrides"]
    assert out["2026-03-08T10:00:00"] == {"participants/a/participationStatus": "declined"}
    assert out["2026-03-15T10:00:00"] == {"excluded": True}
    moved = out["2026-03-22T10:00:00"]
    assert moved["participants/a/calendarAddress"] == "mailto:ann@other.example"
    assert moved["participants/a/roles"] == {"chair": True}
    assert moved["participants/b"]["delegatedFrom"] == {"mailto:ann@example.com": True}
    assert moved["organizerCalendarAddress"] == "mailto:bob@example.com"
    assert moved["locations/l1/" + CARRIER] == {"description": "basement"}
    assert "participants/a/sendTo" not in moved and "replyTo" not in moved
    # 2.0 ignores these pointers in an override: the RFC 8984 values are kept too
    assert moved["participants/a/" + CARRIER] == {
        "sendTo": {"imip": "mailto:ann@other.example"},
        "language": "fr",
    }
    assert moved[CARRIER] == {"replyTo": {"imip": "mailto:bob@example.com"}, "privacy": "private"}
    assert round_trip(obj) == obj


def test_ignored_override_pointers_a_server_dropped_still_come_back() -> None:
    obj = base(
        recurrenceRules=[WEEKLY],
        recurrenceOverrides={"2026-03-08T10:00:00": {"privacy": "private", "title": "x"}},
    )
    server = to_server(obj, BIS)
    del server["recurrenceOverrides"]["2026-03-08T10:00:00"]["privacy"]
    assert from_server(server, BIS) == obj


def test_a_2_0_servers_override_comes_back_in_rfc_8984_names() -> None:
    server = base(
        recurrenceRule=WEEKLY,
        organizerCalendarAddress="mailto:o@example.com",
        participants={"p": {"calendarAddress": "mailto:p@example.com", "roles": {"owner": True}}},
        recurrenceOverrides={
            "2026-03-08T10:00:00": {
                "participants/p/roles": {"owner": True, "required": True},
                "participants/p/calendarAddress": None,
                "recurrenceRule": None,
                "endTimeZone": "Asia/Tokyo",
            }
        },
    )
    got = from_server(server, BIS)
    assert got["recurrenceRules"] == [WEEKLY]
    assert got["participants"]["p"] == {
        "sendTo": {"imip": "mailto:p@example.com"},
        "roles": {"owner": True},
    }
    assert got["recurrenceOverrides"]["2026-03-08T10:00:00"] == {
        "participants/p/roles": {"attendee": True, "owner": True},
        "participants/p/sendTo": None,
        "recurrenceRules": None,
        "locations": {"end": {"@type": "Location", "relativeTo": "end", "timeZone": "Asia/Tokyo"}},
    }


# -- what stays as it is ---------------------------------------------------------------


def test_rfc8984_dialect_is_the_identity() -> None:
    obj = base(recurrenceRules=[WEEKLY], replyTo={"imip": "mailto:o@example.com"})
    assert to_server(obj, V1) == obj and from_server(obj, V1) == obj
    assert patch_to_server({"title": "x", "replyTo": None}, V1) == {"title": "x", "replyTo": None}


def test_reading_an_rfc8984_object_as_2_0_changes_nothing() -> None:
    obj = base(
        recurrenceRules=[WEEKLY, MONTHLY],
        replyTo={"imip": "mailto:o@example.com"},
        participants={"p": person("p@example.com", roles={"attendee": True, "owner": True})},
        locations={"end": {"@type": "Location", "relativeTo": "end", "timeZone": "Asia/Tokyo"}},
        recurrenceOverrides={"2026-03-08T10:00:00": {"participants/p/participationStatus": "x"}},
    )
    assert from_server(copy.deepcopy(obj), BIS) == obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (base(version="2.0"), BIS),
        (base(recurrenceRule=WEEKLY), BIS),
        (base(participants={"p": {"calendarAddress": "mailto:p@x"}}), BIS),
        (base(recurrenceRules=[WEEKLY]), V1),
        (base(participants={"p": person("p@x")}), V1),
        (base(), None),
        (base(recurrenceRule=WEEKLY, replyTo={"imip": "mailto:o@x"}), None),
    ],
)
def test_detect_only_says_what_the_names_say(obj: dict, expected: Dialect | None) -> None:
    assert detect(obj) is expected


@pytest.mark.parametrize(
    ("bis", "v1", "expected"),
    [
        (True, False, BIS),
        (False, True, V1),
        (True, True, None),  # a lenient server: no answer
        (False, False, None),
        (True, None, None),  # another error than invalidArguments
    ],
)
def test_probe_answers(bis: bool | None, v1: bool | None, expected: Dialect | None) -> None:
    assert from_probe({BIS: bis, V1: v1}) is expected


# -- update patches, as the engine makes them and a 2.0 server applies them --------------


def engine_patch(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """What PairSync._patch sends: every top-level property, null for what went away."""
    patch = {k: v for k, v in new.items() if k != "uid"}
    patch.update({k: None for k in set(old) - set(new) if k != "uid"})
    return patch


def apply(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 8984 PatchObject semantics (implicit leading "/"), as a server applies it."""
    out = copy.deepcopy(obj)
    for pointer, value in patch.items():
        *parents, last = pointer.split("/")
        target = out
        for part in parents:
            target = target[part]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(value)
    return out


def test_an_update_patch_clears_what_the_new_version_no_longer_parks() -> None:
    old = base(
        recurrenceRules=[WEEKLY, MONTHLY],
        replyTo={"imip": "mailto:o@example.com"},
        locations={"end": {"@type": "Location", "relativeTo": "end", "timeZone": "Asia/Tokyo"}},
    )
    new = base(recurrenceRules=[WEEKLY], locations={"r": {"@type": "Location", "name": "R"}})
    patch = patch_to_server(engine_patch(new, old), BIS)
    assert patch[CARRIER] is None
    assert patch["organizerCalendarAddress"] is None
    assert patch["endTimeZone"] is None
    assert patch["version"] == "2.0"
    assert "recurrenceRules" not in patch and "replyTo" not in patch
    server = apply(to_server(old, BIS), patch)
    assert from_server(server, BIS) == new
    back = apply(server, patch_to_server(engine_patch(old, new), BIS))
    assert from_server(back, BIS) == old


# -- properties over generated items ---------------------------------------------------


def internal(data: bytes) -> dict[str, Any]:
    """What the engine hands to RemoteStore.write: a converted file, shaped for upload."""
    return for_upload(ics_to_jscal(data)[0])


@st.composite
def extras(draw: st.DrawFn, obj: dict[str, Any]) -> dict[str, Any]:
    """What real files have and 2.0 has no place for, added to a generated item."""
    obj = copy.deepcopy(obj)
    if obj.get("recurrenceRules") and draw(st.booleans()):
        obj["recurrenceRules"].append(MONTHLY)
    if draw(st.integers(0, 3)) == 0:
        obj["excludedRecurrenceRules"] = [MONTHLY]
    if draw(st.integers(0, 3)) == 0:
        obj["replyTo"] = {"imip": "mailto:o@example.com", "web": "https://o.example/"}
    for p in (obj.get("participants") or {}).values():
        if draw(st.integers(0, 3)) == 0:
            p["language"] = "de"
        if draw(st.integers(0, 3)) == 0:
            p["sendTo"] = {**p.get("sendTo", {}), "other": "xmpp:p@example.com"}
    return obj


ITEMS = st.one_of(events(), tasks()).map(internal).flatmap(extras)


@SETTINGS
@given(ITEMS)
def test_internal_to_2_0_and_back_is_the_identity(obj: dict[str, Any]) -> None:
    server = to_server(obj, BIS)
    assert "recurrenceRules" not in server and "replyTo" not in server
    assert not any("sendTo" in p for p in (server.get("participants") or {}).values())
    assert round_trip(obj) == obj


@SETTINGS
@given(ITEMS, ITEMS)
def test_update_patches_leave_the_server_holding_the_new_version(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    new = {**new, "uid": old["uid"], "@type": old["@type"]}
    server = apply(
        json.loads(json.dumps(to_server(old, BIS))),
        patch_to_server(engine_patch(new, old), BIS, old["@type"]),
    )
    assert from_server(server, BIS) == new
    assert canonical(from_server(server, BIS)) == canonical(new)
