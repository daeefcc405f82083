"""Issue 2 end to end: `syncd sync` against a real Cyrus 3.12, both directions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import icalendar
import pytest

pytestmark = pytest.mark.cyrus

WEEKLY_LONDON = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VTIMEZONE
TZID:Europe/London
BEGIN:DAYLIGHT
TZOFFSETFROM:+0000
TZOFFSETTO:+0100
TZNAME:BST
DTSTART:19700329T010000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0100
TZOFFSETTO:+0000
TZNAME:GMT
DTSTART:19701025T020000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly-1@example.com
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/London:20260105T093000
DTEND;TZID=Europe/London:20260105T100000
SUMMARY:Standup
LOCATION:Room 1
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10
EXDATE;TZID=Europe/London:20260112T093000
ORGANIZER;CN=Alice:mailto:alice@example.com
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:bob@example.com
X-SYNCD-TEST:kept locally
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Reminder
TRIGGER:-PT10M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:weekly-1@example.com
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/London:20260119T093000
DTSTART;TZID=Europe/London:20260119T110000
DTEND;TZID=Europe/London:20260119T113000
SUMMARY:Standup (moved)
ORGANIZER;CN=Alice:mailto:alice@example.com
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:bob@example.com
END:VEVENT
END:VCALENDAR
"""


def simple_ics(uid: str, summary: str, start: str = "20260401T100000Z") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def jmap_event(uid: str, title: str, calendar: str, day: int = 1) -> dict:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": f"2026-05-{day:02d}T09:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        "calendarIds": {calendar: True},
    }


def summaries(data: bytes) -> list[str]:
    cal = icalendar.Calendar.from_ical(data)
    return sorted(str(c["SUMMARY"]) for c in cal.walk("VEVENT"))


def the_dir(pair) -> str:
    dirs = [p.name for p in pair.root.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_two_hundred_events_in_two_calendars_then_a_quiet_pass(cyrus_pair):
    created = cyrus_pair.set_calendars({"create": {"w": {"name": "Work", "color": "#ff0000"}}})
    work = created["created"]["w"]["id"]
    events = {}
    for i in range(200):
        calendar = "Default" if i % 2 else work
        events[f"e{i}"] = jmap_event(f"uid-{i}@example.com", f"Event {i}", calendar, 1 + i % 28)
    cyrus_pair.set_events({"create": events})

    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    assert sum(c.downloaded for c in result.collections) == 200
    dirs = {p.name: p for p in cyrus_pair.root.iterdir() if p.is_dir()}
    assert len(dirs) == 2
    by_name = {(p / "displayname").read_text().strip(): p for p in dirs.values()}
    assert set(by_name) == {"personal", "Work"}
    assert (by_name["Work"] / "color").read_text().strip().lower() == "#ff0000"
    assert len(list(by_name["Work"].glob("*.ics"))) == 100
    assert len(list(by_name["personal"].glob("*.ics"))) == 100
    uids = set()
    for path in cyrus_pair.root.rglob("*.ics"):
        cal = icalendar.Calendar.from_ical(path.read_bytes())
        uids |= {str(e["UID"]) for e in cal.walk("VEVENT")}
    assert uids == {f"uid-{i}@example.com" for i in range(200)}

    before = cyrus_pair.mtimes()
    result, requests = cyrus_pair.requests_during(cyrus_pair.sync)
    assert result.ok and result.changes == 0, result.summary()
    assert requests <= 2  # the session and one /changes request
    assert cyrus_pair.mtimes() == before


def test_local_new_edit_and_delete_reach_the_server(cyrus_pair):
    cyrus_pair.set_events(
        {
            "create": {
                "a": jmap_event("keep@x", "Keep", "Default"),
                "b": jmap_event("gone@x", "Gone", "Default"),
            }
        }
    )
    assert cyrus_pair.sync().ok
    d = cyrus_pair.root / the_dir(cyrus_pair)
    files = {summaries(p.read_bytes())[0]: p for p in d.glob("*.ics")}
    files["Keep"].write_bytes(files["Keep"].read_bytes().replace(b"SUMMARY:Keep", b"SUMMARY:Kept"))
    files["Gone"].unlink()
    (d / "new.ics").write_text(simple_ics("new@x", "New"))

    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    server = cyrus_pair.events()
    assert set(server) == {"keep@x", "new@x"}
    assert server["keep@x"]["title"] == "Kept"
    assert server["new@x"]["title"] == "New"
    assert server["new@x"]["calendarIds"] == {"Default": True}
    # and nothing bounces back on the next pass
    result = cyrus_pair.sync()
    assert result.ok and result.changes == 0, result.summary()


def test_server_changes_by_jmap_and_caldav_come_down(cyrus_pair):
    body = cyrus_pair.set_events(
        {
            "create": {
                "a": jmap_event(f"a-{cyrus_pair.user.name}@x", "A", "Default"),
                "b": jmap_event(f"b-{cyrus_pair.user.name}@x", "B", "Default"),
            }
        }
    )
    ids = {k: v["id"] for k, v in body["created"].items()}
    assert cyrus_pair.sync().ok
    cyrus_pair.set_events({"update": {ids["a"]: {"title": "A2"}}, "destroy": [ids["b"]]})
    dav_uid = f"dav-{cyrus_pair.user.name}@x"  # Cyrus wants UIDs unique across users
    cyrus_pair.user.caldav_put("Default", "dav.ics", simple_ics(dav_uid, "From CalDAV"))

    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    files = cyrus_pair.files(the_dir(cyrus_pair))
    assert sorted(s for data in files.values() for s in summaries(data)) == ["A2", "From CalDAV"]

    cyrus_pair.user.caldav_delete("Default", "dav.ics")
    result = cyrus_pair.sync()
    assert result.ok and sum(c.deleted_local for c in result.collections) == 1
    files = cyrus_pair.files(the_dir(cyrus_pair))
    assert [s for data in files.values() for s in summaries(data)] == ["A2"]


def test_recurring_event_with_override_survives_the_round_trip(cyrus_pair):
    assert cyrus_pair.sync().ok
    d = cyrus_pair.root / the_dir(cyrus_pair)
    (d / "weekly.ics").write_text(WEEKLY_LONDON)
    assert cyrus_pair.sync().ok
    event = cyrus_pair.events()["weekly-1@example.com"]
    assert event["timeZone"] == "Europe/London"
    assert event["recurrenceRules"][0]["count"] == 10
    overrides = event["recurrenceOverrides"]
    assert overrides["2026-01-12T09:30:00"] == {"excluded": True}
    assert overrides["2026-01-19T09:30:00"]["title"] == "Standup (moved)"
    assert {p["email"] for p in event["participants"].values()} == {
        "alice@example.com",
        "bob@example.com",
    }

    # edit on the server; the file comes back with everything else as it was
    cyrus_pair.set_events({"update": {event["id"]: {"title": "Standup!"}}})
    assert cyrus_pair.sync().ok
    cal = icalendar.Calendar.from_ical((d / "weekly.ics").read_bytes())
    master, moved = sorted(cal.walk("VEVENT"), key=lambda c: "RECURRENCE-ID" in c)
    assert str(master["SUMMARY"]) == "Standup!"
    assert str(master["X-SYNCD-TEST"]) == "kept locally"
    assert master["RRULE"]["COUNT"] == [10]
    assert [str(a["DESCRIPTION"]) for a in master.walk("VALARM")] == ["Reminder"]
    assert str(moved["SUMMARY"]) == "Standup (moved)"
    assert moved["DTSTART"].dt.hour == 11 and str(moved["DTSTART"].dt.tzinfo) == "Europe/London"
    exdates = [d.dt for ex in [master["EXDATE"]] for d in ex.dts]
    assert [x.day for x in exdates] == [12]
    assert [str(t["TZID"]) for t in cal.walk("VTIMEZONE")] == ["Europe/London"]

    result = cyrus_pair.sync()
    assert result.ok and result.changes == 0, result.summary()


def test_destroying_a_calendar_forces_a_full_listing_and_loses_nothing(cyrus_pair):
    created = cyrus_pair.set_calendars({"create": {"t": {"name": "Temp"}}})
    temp = created["created"]["t"]["id"]
    body = cyrus_pair.set_events(
        {
            "create": {
                "a": jmap_event(f"a-{cyrus_pair.user.name}@x", "A", "Default"),
                "t": jmap_event(f"t-{cyrus_pair.user.name}@x", "T", temp),
            }
        }
    )
    assert cyrus_pair.sync().ok
    # After any calendar is destroyed, Cyrus answers cannotCalculateChanges for every
    # earlier state; the next pass must fall back to a full listing.
    cyrus_pair.set_calendars({"destroy": [temp], "onDestroyRemoveEvents": True})
    cyrus_pair.set_events({"update": {body["created"]["a"]["id"]: {"title": "A2"}}})
    cyrus_pair.set_events(
        {"create": {"n": jmap_event(f"n-{cyrus_pair.user.name}@x", "N", "Default")}}
    )

    result = cyrus_pair.sync()
    personal = next(
        p
        for p in cyrus_pair.root.iterdir()
        if (p / "displayname").read_text().strip() == "personal"
    )
    got = sorted(s for data in cyrus_pair.files(personal.name).values() for s in summaries(data))
    assert got == ["A2", "N"]
    # the destroyed calendar's files are not deleted behind the user's back
    temp_dir = next(p for p in cyrus_pair.root.iterdir() if p != personal)
    assert len(list(temp_dir.glob("*.ics"))) == 1
    assert any(
        "Temp" in e or temp_dir.name in e
        for e in result.errors + [e for c in result.collections for e in c.errors]
    ), result
    result = cyrus_pair.sync()
    assert result.changes == 0


def test_rename_on_server_keeps_the_directory_and_colour_goes_up(cyrus_pair):
    created = cyrus_pair.set_calendars({"create": {"w": {"name": "Work"}}})
    work = created["created"]["w"]["id"]
    assert cyrus_pair.sync().ok
    dirs_before = sorted(p.name for p in cyrus_pair.root.iterdir())
    cyrus_pair.set_calendars({"update": {work: {"name": "Office"}}})
    assert cyrus_pair.sync().ok
    assert sorted(p.name for p in cyrus_pair.root.iterdir()) == dirs_before
    work_dir = next(
        p for p in cyrus_pair.root.iterdir() if (p / "displayname").read_text().strip() == "Office"
    )
    (work_dir / "color").write_text("#00aa00\n")
    assert cyrus_pair.sync().ok
    assert cyrus_pair.calendars()[work]["color"].lower() == "#00aa00"


def test_a_new_local_directory_becomes_a_calendar(cyrus_pair):
    assert cyrus_pair.sync().ok
    new = cyrus_pair.root / "holidays"
    new.mkdir()
    (new / "displayname").write_text("Holidays\n")
    (new / "h.ics").write_text(simple_ics("h@x", "Beach", "20260801T080000Z"))
    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    by_name = {c["name"]: c for c in cyrus_pair.calendars().values()}
    assert "Holidays" in by_name
    event = cyrus_pair.events()["h@x"]
    assert event["calendarIds"] == {by_name["Holidays"]["id"]: True}


def run_cli(pair, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run(
        [sys.executable, "-m", "syncd", "-c", str(pair.config_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_exit_codes_and_no_secret_in_output(cyrus_pair):
    cyrus_pair.set_events(
        {"create": {"a": jmap_event(f"a-{cyrus_pair.user.name}@x", "A", "Default")}}
    )
    done = run_cli(cyrus_pair, "sync")
    assert done.returncode == 0, done.stderr
    assert "down 1" in done.stdout + done.stderr
    listed = run_cli(cyrus_pair, "discover")
    assert listed.returncode == 0 and "Default" in listed.stdout

    real = cyrus_pair.user.password
    cyrus_pair.config_path.write_text(
        cyrus_pair.config_path.read_text().replace(real, "wrong-Pw-123")
    )
    failed = run_cli(cyrus_pair, "-vv", "sync")
    assert failed.returncode == 1
    assert "wrong-Pw-123" not in failed.stdout + failed.stderr
    assert "401" in failed.stderr or "password" in failed.stderr.lower()
    assert len(list(cyrus_pair.root.rglob("*.ics"))) == 1  # nothing deleted

    cyrus_pair.config_path.write_text(
        cyrus_pair.config_path.read_text().replace("pairs:", "pears:")
    )
    bad = run_cli(cyrus_pair, "sync")
    assert bad.returncode == 2 and "pears" in bad.stderr and "config.yaml" in bad.stderr


def test_server_down_is_an_error_not_a_deletion(cyrus_pair, cyrus):
    cyrus_pair.set_events(
        {"create": {"a": jmap_event(f"a-{cyrus_pair.user.name}@x", "A", "Default")}}
    )
    assert cyrus_pair.sync().ok
    cyrus.stop()
    try:
        done = run_cli(cyrus_pair, "sync")
        assert done.returncode == 1
        assert "127.0.0.1" in done.stderr or "connect" in done.stderr.lower()
    finally:
        cyrus.restart()
    assert len(list(cyrus_pair.root.rglob("*.ics"))) == 1
    result = cyrus_pair.sync()
    assert result.ok and result.changes == 0


def test_the_password_appears_nowhere_even_at_the_most_verbose_level(cyrus_pair, tmp_path):
    import base64

    password = cyrus_pair.user.password
    basic = base64.b64encode(f"{cyrus_pair.user.name}:{password}".encode()).decode()
    # the password comes from a command, as a careful user would set it up
    text = cyrus_pair.config_path.read_text().replace(
        f"password: {password}", f"password_command: [printf, '%s', {password}]"
    )
    cyrus_pair.config_path.write_text(text)
    cyrus_pair.set_events(
        {"create": {"a": jmap_event(f"a-{cyrus_pair.user.name}@x", "A", "Default")}}
    )
    (tmp_path / "vdir").mkdir(exist_ok=True)
    outputs = []
    for args in (
        ("-vvv", "sync"),
        ("-vvv", "discover"),
        ("status",),
        ("status", "--json"),
        ("-vvv", "sync", "--dry-run"),
    ):
        done = run_cli(cyrus_pair, *args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        outputs.append(done.stdout + done.stderr)
    everything = "\n".join(outputs)
    assert "POST /jmap/" in everything  # the HTTP library's debug log was on
    state = cyrus_pair.tmp / "state"
    assert state.stat().st_mode & 0o777 == 0o700
    for journal in state.glob("*.sqlite3"):
        assert journal.stat().st_mode & 0o777 == 0o600
    for secret in (password, basic):
        assert secret not in everything
        for path in (cyrus_pair.tmp / "state").rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_a_repeated_sync_skips_discovery_and_costs_two_requests(cyrus_pair):
    """The session URL found through /.well-known/jmap is remembered: a later `syncd sync`
    asks for the session where it is and sends one API request, nothing else."""
    cyrus_pair.set_events(
        {"create": {"a": jmap_event(f"a-{cyrus_pair.user.name}@x", "A", "Default")}}
    )
    first = run_cli(cyrus_pair, "-vvv", "sync")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "GET /.well-known/jmap" in first.stderr
    again = run_cli(cyrus_pair, "-vvv", "sync")
    assert again.returncode == 0, again.stderr[-2000:]
    requests = [
        line for line in again.stderr.splitlines() if "syncd.http" in line and " on " in line
    ]
    assert "GET /.well-known/jmap" not in again.stderr
    assert len(requests) == 2, requests
    assert "GET /jmap" in requests[0] and "POST /jmap/" in requests[1]


CUSTOM_ZONE = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VTIMEZONE\r
TZID:Lunar Base Standard\r
BEGIN:STANDARD\r
DTSTART:19700101T000000\r
TZOFFSETFROM:+0330\r
TZOFFSETTO:+0330\r
TZNAME:LBS\r
END:STANDARD\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:lunar-1@example.com\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Lunar Base Standard:20260310T120000\r
DTEND;TZID=Lunar Base Standard:20260310T130000\r
SUMMARY:Docking\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_an_event_in_a_custom_zone_goes_up_at_the_right_instant_and_comes_back(cyrus_pair):
    """A zone no database knows travels as JSCalendar timeZones: Cyrus takes it, the
    instant is right, and a server edit writes the file back with the zone's definition."""
    assert cyrus_pair.sync().ok
    d = cyrus_pair.root / the_dir(cyrus_pair)
    (d / "lunar.ics").write_text(CUSTOM_ZONE)
    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    event = cyrus_pair.events()["lunar-1@example.com"]
    ((_, body, _),) = cyrus_pair.jmap(
        [["CalendarEvent/get", {"ids": [event["id"]], "properties": ["utcStart"]}, "g"]]
    )
    assert body["list"][0]["utcStart"] == "2026-03-10T08:30:00Z"  # 12:00 at +03:30
    cyrus_pair.set_events({"update": {event["id"]: {"title": "Docking (moved)"}}})
    assert cyrus_pair.sync().ok
    cal = icalendar.Calendar.from_ical((d / "lunar.ics").read_bytes())
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "Docking (moved)"
    assert vevent["DTSTART"].dt.utcoffset().total_seconds() == 3.5 * 3600
    assert "Lunar Base Standard" in [str(t["TZID"]) for t in cal.walk("VTIMEZONE")]
    assert cyrus_pair.sync().changes == 0


def test_the_command_line_pass_compares_fingerprints_and_still_finds_edits(cyrus_pair):
    """`syncd sync` (the real command: its fingerprint child forks) skips the file-by-file
    comparison of a directory the journal describes exactly, and finds what changed in
    one that it does not: an edit in place at the same size, a new file, a deleted one."""
    cyrus_pair.set_events(
        {"create": {f"e{i}": jmap_event(f"fp-{i}@x", f"Item {i}", "Default") for i in range(30)}}
    )
    assert run_cli(cyrus_pair, "sync").returncode == 0
    d = cyrus_pair.root / the_dir(cyrus_pair)
    quiet = run_cli(cyrus_pair, "-vvv", "sync")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert f"{d} is as the journal left it" in quiet.stderr

    files = {summaries(p.read_bytes())[0]: p for p in d.glob("*.ics")}
    edited = files["Item 3"]
    with open(edited, "r+b") as f:  # in place, same size: only the file's mtime moves
        f.write(edited.read_bytes().replace(b"SUMMARY:Item 3", b"SUMMARY:Item X"))
    files["Item 4"].unlink()
    (d / "new.ics").write_text(simple_ics("fp-new@x", "Fresh"))
    busy = run_cli(cyrus_pair, "-vvv", "sync")
    assert busy.returncode == 0, busy.stderr[-2000:]
    assert "is as the journal left it" not in busy.stderr
    server = cyrus_pair.events()
    assert server["fp-3@x"]["title"] == "Item X"
    assert "fp-4@x" not in server and server["fp-new@x"]["title"] == "Fresh"

    again = run_cli(cyrus_pair, "-vvv", "sync")
    assert again.returncode == 0 and f"{d} is as the journal left it" in again.stderr


def test_a_first_download_over_two_connections_brings_every_event_once(cyrus_pair, monkeypatch):
    """The pages of a first download go over two connections at once (as `syncd sync`
    reads them, with the standard-library transport): Cyrus answers both, and every
    event arrives once.  Small pages, so that 40 events make six of them."""
    import anyio

    from syncd.config import load_config
    from syncd.connect import connect
    from syncd.jmap.stdtransport import StdlibTransport
    from syncd.journal import Journal
    from syncd.sync.engine import PairSync, PassOptions

    monkeypatch.setattr("syncd.sync.remote.FIRST_PAGE", 5)
    monkeypatch.setattr("syncd.sync.remote.PAGE", 7)
    events = {f"e{i}": jmap_event(f"two-{i}@example.com", f"Two {i}", "Default", 1 + i % 28)
              for i in range(40)}  # fmt: skip
    cyrus_pair.set_events({"create": events})
    siblings: list[StdlibTransport] = []
    make_sibling = StdlibTransport.sibling

    def sibling(self: StdlibTransport) -> StdlibTransport:
        siblings.append(make_sibling(self))
        return siblings[-1]

    monkeypatch.setattr(StdlibTransport, "sibling", sibling)
    config = load_config(cyrus_pair.config_path)

    async def go():
        transport = StdlibTransport()
        journal = Journal(config.state_dir / "cal.sqlite3")
        try:
            client = await connect(config.accounts["home"], transport=transport)
            pair = config.pairs["cal"]
            return await PairSync(config, pair, client, journal).run(PassOptions())
        finally:
            journal.close()
            await transport.aclose()

    result = anyio.run(go)
    assert result.ok, result.summary()
    assert sum(c.downloaded for c in result.collections) == 40
    assert len(siblings) == 1 and siblings[0].counter.requests >= 7  # the listing, 6 pages
    uids = []
    for path in cyrus_pair.root.rglob("*.ics"):
        cal = icalendar.Calendar.from_ical(path.read_bytes())
        uids += [str(e["UID"]) for e in cal.walk("VEVENT")]
    assert sorted(uids) == sorted(f"two-{i}@example.com" for i in range(40))
    again = cyrus_pair.sync()
    assert again.ok and again.changes == 0, again.summary()


def test_a_big_upload_in_many_requests_and_one_cut_short_settle_on_cyrus(cyrus_pair, monkeypatch):
    """A first upload goes to Cyrus in requests of a few writes each (in production 500:
    syncd.jmap.packing); the answer to the second one is lost after Cyrus applied it.
    The next pass looks the cut pass's UIDs up on Cyrus, all in one request (Cyrus
    answers every /query of it), pairs what is there with the local files and creates
    the rest: every event once, nothing to do after."""
    from syncd.jmap import packing
    from syncd.jmap.errors import JmapError
    from syncd.jmap.transport import NiquestsTransport, TransportError

    monkeypatch.setattr(packing, "WRITES_PER_REQUEST", 4)
    d = cyrus_pair.root / "Default"
    d.mkdir(parents=True)
    uids = [f"many-{i}@example.com" for i in range(14)]
    for uid in uids:
        (d / f"{uid}.ics").write_text(simple_ics(uid, uid.split("@")[0]))
    writes = []
    real_request = NiquestsTransport.request

    async def lose_the_second_writes_answer(self, method, url, *, headers, body=None):
        answer = await real_request(self, method, url, headers=headers, body=body)
        if body and b"CalendarEvent/set" in body:
            writes.append(body)
            if len(writes) == 2:
                raise TransportError("connection reset while reading the answer (test)")
        return answer

    monkeypatch.setattr(NiquestsTransport, "request", lose_the_second_writes_answer)
    with pytest.raises(JmapError):
        cyrus_pair.sync()
    assert len(cyrus_pair.events()) == 8  # two requests of four were applied
    sent = []

    async def record(self, method, url, *, headers, body=None):
        sent.append(body or b"")
        return await real_request(self, method, url, headers=headers, body=body)

    monkeypatch.setattr(NiquestsTransport, "request", record)
    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    assert sorted(cyrus_pair.events()) == sorted(uids)  # each exactly once
    lookups = [b.count(b'"CalendarEvent/query"') for b in sent]
    assert max(lookups) == len(uids)  # the pass's 14 UIDs looked up in one request
    again = cyrus_pair.sync()
    assert again.ok and again.changes == 0, again.summary()
