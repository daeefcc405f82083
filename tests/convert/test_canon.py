"""``canonical``: what the engine compares, and ``for_upload``: what goes to the server.

The same event read from a file and served by Cyrus must compare equal even though
the two name their alerts, locations and participants differently, and a server never
returns the vendor properties the converter carries.
"""

from __future__ import annotations

import copy
from typing import Any

from syncd.convert import canonical, for_upload


def event(ids: dict[str, str]) -> dict[str, Any]:
    """One event; ``ids`` names its sub-objects (a file's names or a server's)."""
    ann, bob, room, alarm = ids["ann"], ids["bob"], ids["room"], ids["alarm"]
    return {
        "@type": "Event",
        "uid": "same@example.com",
        "title": "Review",
        "start": "2024-03-01T09:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        "locations": {room: {"@type": "Location", "name": "Room 1"}},
        "alerts": {
            alarm: {"@type": "Alert", "trigger": {"@type": "OffsetTrigger", "offset": "-PT5M"}}
        },
        "participants": {
            ann: {
                "@type": "Participant",
                "sendTo": {"imip": "mailto:ann@example.com"},
                "roles": {"attendee": True},
                "participationStatus": "delegated",
                "delegatedTo": {bob: True},
                "locationId": room,
            },
            bob: {
                "@type": "Participant",
                "sendTo": {"imip": "mailto:bob@example.com"},
                "email": "bob@example.com",
                "roles": {"attendee": True},
                "delegatedFrom": {ann: True},
            },
        },
        "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly", "count": 3}],
        "recurrenceOverrides": {
            "2024-03-08T09:00:00": {f"participants/{bob}/participationStatus": "declined"},
        },
    }


FILE_IDS = {"ann": "pa1b2c3", "bob": "pd4e5f6", "room": "l0a0b", "alarm": "a77"}
SERVER_IDS = {"ann": "1", "bob": "2", "room": "loc1", "alarm": "f00-ba7"}


def test_sub_object_ids_do_not_matter() -> None:
    assert canonical(event(FILE_IDS)) == canonical(event(SERVER_IDS))


def test_references_follow_the_renamed_ids() -> None:
    canon = canonical(event(SERVER_IDS))
    by_mail = {p["sendTo"]["imip"]: (pid, p) for pid, p in canon["participants"].items()}
    ann_id, ann = by_mail["mailto:ann@example.com"]
    bob_id, bob = by_mail["mailto:bob@example.com"]
    assert ann["delegatedTo"] == {bob_id: True}
    assert bob["delegatedFrom"] == {ann_id: True}
    assert ann["locationId"] in canon["locations"]
    patch = canon["recurrenceOverrides"]["2024-03-08T09:00:00"]
    assert patch == {f"participants/{bob_id}/participationStatus": "declined"}


def test_a_real_change_still_shows() -> None:
    changed = event(SERVER_IDS)
    changed["alerts"]["f00-ba7"]["trigger"]["offset"] = "-PT10M"
    assert canonical(changed) != canonical(event(FILE_IDS))
    moved = event(SERVER_IDS)
    moved["recurrenceOverrides"]["2024-03-08T09:00:00"] = {
        "participants/1/participationStatus": "declined"  # ann, not bob
    }
    assert canonical(moved) != canonical(event(FILE_IDS))


def test_two_equal_alerts_stay_two() -> None:
    obj = event(SERVER_IDS)
    obj["alerts"]["second"] = copy.deepcopy(obj["alerts"]["f00-ba7"])
    assert len(canonical(obj)["alerts"]) == 2


def test_derived_email_and_defaults_are_not_differences() -> None:
    obj = event(FILE_IDS)
    bare = copy.deepcopy(obj)
    del bare["participants"]["pd4e5f6"]["email"]
    bare["sequence"] = 0
    bare["privacy"] = "public"
    assert canonical(bare) == canonical(obj)


def test_vendor_and_server_set_data_are_neither_compared_nor_uploaded() -> None:
    obj = event(FILE_IDS)
    noisy = copy.deepcopy(obj)
    noisy["syncd.app:ical"] = [["X-FOO", {}, "bar"]]
    noisy["alerts"]["a77"]["iCalComponent"] = {
        "@type": "ICalComponent",
        "name": "valarm",
        "properties": [["x-bar", {}, "unknown", "baz"]],
    }
    noisy["recurrenceOverrides"]["2024-03-08T09:00:00"]["syncd.app:icalRecurrenceIdKind"] = "utc"
    noisy.update({"id": "E1", "created": "2024-01-01T00:00:00Z", "calendarIds": {"c": True}})
    assert canonical(noisy) == canonical(obj)
    up = for_upload(noisy)
    assert "id" not in up and "syncd.app:ical" not in up
    assert "iCalComponent" not in up["alerts"]["a77"]
    assert up["recurrenceOverrides"]["2024-03-08T09:00:00"] == {
        "participants/pd4e5f6/participationStatus": "declined"
    }


def test_a_duration_compares_by_value_not_by_spelling() -> None:
    # A server may keep "-PT60M" where the file says "-PT1H" (and a file read back gives
    # "-P1D" for "-PT24H"): the same event, not a change to sync.
    def with_spelling(offset: str, duration: str) -> dict:
        return {
            "@type": "Event",
            "uid": "u1",
            "start": "2026-03-01T10:00:00",
            "duration": duration,
            "alerts": {
                "a": {"@type": "Alert", "trigger": {"@type": "OffsetTrigger", "offset": offset}}
            },
        }

    assert canonical(with_spelling("-PT60M", "PT90M")) == canonical(
        with_spelling("-PT1H", "PT1H30M")
    )
    assert canonical(with_spelling("-PT24H", "PT0S")) == canonical(with_spelling("-P1D", "P0D"))
    assert canonical(with_spelling("-PT1H", "PT1H")) != canonical(with_spelling("-PT2H", "PT1H"))
    # What is not a whole-second duration is compared as written, never dropped.
    assert (
        canonical(with_spelling("-PT1.5S", "PT1H"))["alerts"]
        != canonical(with_spelling("-PT1S", "PT1H"))["alerts"]
    )
