"""Issue 5's conflict rules against Cyrus: merges, overlaps, edit-vs-delete, the record."""

from __future__ import annotations

import re

import icalendar
import pytest

from tests.integration.test_cyrus_sync import jmap_event, run_cli

pytestmark = pytest.mark.cyrus


def local_file(pair, uid: str):
    for path in pair.root.rglob("*.ics"):
        if f"UID:{uid}" in path.read_text():
            return path
    return None


def edit_local(pair, uid: str, fn) -> None:
    path = local_file(pair, uid)
    path.write_text(fn(path.read_text()))


def event_id(pair, uid: str) -> str:
    return pair.events()[uid]["id"]


def synced(pair):
    """One event on both sides; its UID (unique per user) is returned as pair.uid."""
    pair.uid = f"c-{pair.user.name}@x"
    pair.set_events({"create": {"c": jmap_event(pair.uid, "Original", "Default")}})
    assert pair.sync().ok
    return event_id(pair, pair.uid)


ALARM = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"


def test_title_on_the_server_and_alarm_locally_both_survive(cyrus_pair):
    eid = synced(cyrus_pair)
    cyrus_pair.set_events({"update": {eid: {"title": "Phone title"}}})
    edit_local(cyrus_pair, cyrus_pair.uid, lambda t: t.replace("END:VEVENT", ALARM + "END:VEVENT"))
    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    server = cyrus_pair.events()[cyrus_pair.uid]
    assert server["title"] == "Phone title"
    assert [a["trigger"]["offset"] for a in (server["alerts"] or {}).values()] == ["-PT15M"]
    cal = icalendar.Calendar.from_ical(local_file(cyrus_pair, cyrus_pair.uid).read_bytes())
    (ev,) = cal.walk("VEVENT")
    assert str(ev["SUMMARY"]) == "Phone title" and len(ev.walk("VALARM")) == 1
    assert cyrus_pair.sync().changes == 0


@pytest.mark.parametrize(("rule", "winner"), [("remote-wins", "Server"), ("local-wins", "Laptop")])
def test_the_same_property_on_both_sides_follows_the_rule_and_is_recorded(cyrus_pair, rule, winner):
    cyrus_pair.conflict = rule
    cyrus_pair.write_config()
    eid = synced(cyrus_pair)
    cyrus_pair.set_events({"update": {eid: {"title": "Server"}}})
    edit_local(cyrus_pair, cyrus_pair.uid, lambda t: re.sub(r"SUMMARY:.*", "SUMMARY:Laptop", t))
    assert cyrus_pair.sync().ok
    assert cyrus_pair.events()[cyrus_pair.uid]["title"] == winner
    assert f"SUMMARY:{winner}" in local_file(cyrus_pair, cyrus_pair.uid).read_text()
    listed = run_cli(cyrus_pair, "conflicts")
    assert listed.returncode == 0 and cyrus_pair.uid in listed.stdout, listed.stdout
    conflict_id = listed.stdout.split()[0]
    shown = run_cli(cyrus_pair, "conflicts", "show", conflict_id)
    assert "Server" in shown.stdout and "Laptop" in shown.stdout


def test_keep_both_keeps_the_losing_version_as_its_own_item(cyrus_pair):
    cyrus_pair.conflict = "keep-both"
    cyrus_pair.write_config()
    eid = synced(cyrus_pair)
    cyrus_pair.set_events({"update": {eid: {"title": "Server"}}})
    edit_local(cyrus_pair, cyrus_pair.uid, lambda t: re.sub(r"SUMMARY:.*", "SUMMARY:Laptop", t))
    assert cyrus_pair.sync().ok
    titles = sorted(e["title"] for e in cyrus_pair.events().values())
    assert len(titles) == 2 and "Server" in titles and any("Laptop" in t for t in titles)
    assert len(list(cyrus_pair.root.rglob("*.ics"))) == 2
    assert cyrus_pair.sync().changes == 0


def test_an_edit_beats_a_delete_on_the_other_side(cyrus_pair):
    eid = synced(cyrus_pair)
    cyrus_pair.set_events({"update": {eid: {"title": "Edited on the server"}}})
    local_file(cyrus_pair, cyrus_pair.uid).unlink()
    assert cyrus_pair.sync().ok
    assert "Edited on the server" in local_file(cyrus_pair, cyrus_pair.uid).read_text()

    cyrus_pair.set_events({"destroy": [event_id(cyrus_pair, cyrus_pair.uid)]})
    edit_local(
        cyrus_pair, cyrus_pair.uid, lambda t: re.sub(r"SUMMARY:.*", "SUMMARY:Edited here", t)
    )
    assert cyrus_pair.sync().ok
    assert cyrus_pair.events()[cyrus_pair.uid]["title"] == "Edited here"
