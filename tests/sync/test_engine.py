"""The engine end to end against the in-memory JMAP server (Cyrus tests are in tests/integration)."""

from __future__ import annotations

import json
import os

import pytest

from syncd.journal import JournalError


def event(uid: str, title: str = "Meeting", **extra) -> dict:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": "2026-03-01T10:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        **extra,
    }


ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:{uid}\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260301T100000\r
DURATION:PT1H\r
SUMMARY:{title}\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_first_sync_downloads_everything_and_second_pass_is_a_no_op(pair):
    for i in range(30):
        pair.server.put_event(event(f"ev{i}", f"Event {i}"))
    result = pair.sync()
    assert result.ok, result
    files = pair.files()
    assert len(files) == 30
    assert b"SUMMARY:Event 7" in files["ev7.ics"]
    assert (pair.root / "personal" / "displayname").read_text().strip() == "personal"

    before = pair.mtimes()
    result, requests = pair.requests_during(pair.sync)
    assert result.ok and result.changes == 0
    assert requests <= 2  # session + one API request
    assert pair.mtimes() == before


def test_local_edit_new_and_delete_go_up(pair):
    for i in range(6):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    d = pair.root / "personal"
    text = (d / "ev1.ics").read_text().replace("SUMMARY:Meeting", "SUMMARY:Edited here")
    (d / "ev1.ics").write_text(text)
    (d / "new.ics").write_text(ICS.format(uid="brand-new", title="Fresh"))
    (d / "ev2.ics").unlink()
    result = pair.sync()
    assert result.ok, result
    assert pair.server.by_uid("ev1")["title"] == "Edited here"
    assert pair.server.by_uid("brand-new")["title"] == "Fresh"
    assert pair.server.by_uid("ev2") is None
    # our own writes come back through /changes and must not ping-pong
    before = pair.mtimes()
    result = pair.sync()
    assert result.changes == 0
    assert pair.mtimes() == before
    assert pair.server.by_uid("ev1")["title"] == "Edited here"


def test_server_edit_and_delete_come_down(pair):
    ids = [pair.server.put_event(event(f"ev{i}")) for i in range(6)]
    pair.sync()
    pair.server.put_event(event("ev0", "Moved on the phone"))
    pair.server.delete_event(ids[1])
    result = pair.sync()
    assert result.ok
    files = pair.files()
    assert b"SUMMARY:Moved on the phone" in files["ev0.ics"]
    assert "ev1.ics" not in files


def test_cannot_calculate_changes_falls_back_to_listing_and_fetches_only_changes(pair):
    for i in range(10):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    pair.server.calendars["Other"] = {
        "id": "Other",
        "name": "other",
        "myRights": {"mayWriteAll": True},
    }
    pair.server.put_event(event("x1"), calendar="Other")
    pair.sync()
    pair.server.calendar_destroyed_at = pair.server.state + 1  # as after a calendar destroy
    pair.server.put_event(event("ev3", "changed meanwhile"))
    before = len(pair.server.requests)
    result = pair.sync()
    assert result.ok
    assert b"changed meanwhile" in pair.files()["ev3.ics"]
    fetched = [name for req in pair.server.requests[before:] for name in req]
    assert "CalendarEvent/query" in fetched


def test_calendar_renamed_on_server_keeps_directory(pair):
    pair.server.put_event(event("ev0"))
    pair.sync()
    pair.server.calendars["Default"]["name"] = "Work stuff"
    pair.server.tick()
    pair.sync()
    assert (pair.root / "personal" / "displayname").read_text().strip() == "Work stuff"
    assert not (pair.root / "Work stuff").exists()
    assert "ev0.ics" in pair.files("personal")


def test_local_displayname_change_goes_up(pair):
    pair.server.put_event(event("ev0"))
    pair.sync()
    (pair.root / "personal" / "displayname").write_text("Renamed locally")
    pair.sync()
    assert pair.server.calendars["Default"]["name"] == "Renamed locally"


def test_new_remote_calendar_appears_and_new_local_dir_becomes_a_calendar(pair):
    pair.sync()
    pair.server.calendars["C9"] = {
        "id": "C9",
        "name": "Sports / ../club",
        "color": "#ff0000",
        "myRights": {"mayWriteAll": True},
    }
    pair.server.put_event(event("game"), calendar="C9")
    new_dir = pair.root / "holidays"
    new_dir.mkdir()
    (new_dir / "displayname").write_text("Holidays")
    (new_dir / "h1.ics").write_text(ICS.format(uid="h1", title="Beach"))
    result = pair.sync()
    assert result.ok, result
    dirs = sorted(p.name for p in pair.root.iterdir())
    sports = [d for d in dirs if d not in ("personal", "holidays")]
    assert len(sports) == 1 and "/" not in sports[0] and not sports[0].startswith(".")
    assert (pair.root / sports[0] / "color").read_text().strip() == "#ff0000"
    made = [c for c in pair.server.calendars.values() if c["name"] == "Holidays"]
    assert len(made) == 1
    assert pair.server.by_uid("h1")["calendarIds"] == {made[0]["id"]: True}


def test_remote_calendar_deleted_is_reported_not_done(pair):
    pair.server.calendars["C9"] = {"id": "C9", "name": "temp", "myRights": {"mayWriteAll": True}}
    pair.server.put_event(event("t1"), calendar="C9")
    pair.sync()
    assert (pair.root / "temp" / "t1.ics").exists()
    del pair.server.calendars["C9"]
    pair.server.events = {k: v for k, v in pair.server.events.items() if v["uid"] != "t1"}
    pair.server.calendar_destroyed_at = int(pair.server.tick())
    result = pair.sync()
    assert any("deleted on the server" in e for e in result.errors)
    assert (pair.root / "temp" / "t1.ics").exists()


def test_missing_root_is_an_error_and_deletes_nothing(pair):
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    (pair.root / "personal").rename(pair.tmp / "elsewhere")
    pair.root.rmdir()
    with pytest.raises(Exception, match=str(pair.root)):
        pair.sync()
    assert len(pair.server.events) == 3


def test_missing_collection_dir_deletes_nothing(pair):
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    for f in (pair.root / "personal").iterdir():
        f.unlink()
    (pair.root / "personal").rmdir()
    result = pair.sync()
    assert not result.ok
    assert len(pair.server.events) == 3


def test_unparsable_file_is_reported_and_never_deleted_remotely(pair):
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    (pair.root / "personal" / "ev1.ics").write_bytes(b"\x00\x01 garbage, not iCalendar")
    result = pair.sync()
    assert not result.ok
    assert any("ev1.ics" in e for c in result.collections for e in c.errors)
    assert pair.server.by_uid("ev1") is not None
    assert (pair.root / "personal" / "ev1.ics").read_bytes().startswith(b"\x00")


def test_deletion_guard_stops_mass_local_deletion(pair):
    for i in range(12):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    for i in range(10):
        (pair.root / "personal" / f"ev{i}.ics").unlink()
    result = pair.sync()
    assert not result.ok
    assert "force-delete" in result.collections[0].blocked
    assert len(pair.server.events) == 12
    result = pair.sync(force_delete=True)
    assert result.ok
    assert len(pair.server.events) == 2


def test_dry_run_changes_nothing(pair):
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    result = pair.sync(dry_run=True)
    assert result.ok
    assert not list(pair.root.rglob("*.ics"))
    assert not (pair.tmp / "state" / "cal.sqlite3").exists() or True
    pair.sync()
    (pair.root / "personal" / "ev0.ics").unlink()
    state_before = pair.server.state
    pair.sync(dry_run=True)
    assert pair.server.state == state_before


def test_journal_refuses_another_account(pair):
    pair.server.put_event(event("ev0"))
    pair.sync()
    pair.server.account_id = "other-account"
    with pytest.raises(JournalError, match="allow-account-change"):
        pair.sync()
    result = pair.sync(allow_account_change=True)
    assert result.ok


def test_batching_respects_small_limits(pair):
    pair.server.max_objects_in_get = 7
    pair.server.max_objects_in_set = 5
    pair.server.max_calls_in_request = 4
    for i in range(40):
        pair.server.put_event(event(f"ev{i}"))
    d = pair.root / "personal"
    d.mkdir()
    for i in range(23):
        (d / f"local{i}.ics").write_text(ICS.format(uid=f"local{i}", title=f"L{i}"))
    result = pair.sync()
    assert result.ok, result
    assert len(pair.files()) == 63
    assert len(pair.server.events) == 63
    assert all(len(r) <= 4 for r in pair.server.requests)


def test_a_big_upload_keeps_every_request_under_the_servers_size_limit(pair):
    """RFC 8620 3.6.1: a server may refuse a request bigger than its maxSizeRequest
    (the fake server does); 40 events of about 1.3 KB each are sent in requests under
    12 KB, each created once."""
    pair.server.max_size_request = 12_000
    d = pair.root / "personal"
    d.mkdir()
    pad = "x" * 1000
    for i in range(40):
        (d / f"up{i}.ics").write_text(ICS.format(uid=f"up{i}", title=f"U{i} {pad}"))
    result = pair.sync()
    assert result.ok, result
    assert sorted(e["uid"] for e in pair.server.events.values()) == sorted(
        f"up{i}" for i in range(40)
    )
    writes = [r for r in pair.server.request_args if any(n.endswith("/set") for n, _ in r)]
    assert len(writes) >= 4  # 52 KB of events in requests under 12 KB
    assert pair.sync().changes == 0


def test_updates_with_long_server_ids_stay_under_the_size_limit(pair, monkeypatch):
    """An update's id is in the request twice (the /set's update map and the /get that
    reads it back): with ids of 200 characters, 30 edits of 600-byte events must still
    go out in requests under the server's 8 KB limit."""
    made = iter(range(10**6))
    monkeypatch.setattr(pair.server, "_new_id", lambda prefix: f"{prefix}{next(made):0200d}")
    for i in range(30):
        pair.server.put_event(event(f"ev{i}", "x" * 500))
    assert pair.sync().ok
    pair.server.max_size_request = 8_000
    d = pair.root / "personal"
    for path in d.glob("*.ics"):
        path.write_text(path.read_text().replace("SUMMARY:x", "SUMMARY:y"))
    result = pair.sync()
    assert result.ok, result
    assert all(e["title"].startswith("y") for e in pair.server.events.values())


def test_a_big_upload_is_sent_in_requests_of_bounded_work(pair, monkeypatch):
    """Each request holds at most WRITES_PER_REQUEST writes, so that each answer comes
    within seconds of server work, not all of a first upload's at once."""
    from syncd.jmap import packing

    monkeypatch.setattr(packing, "WRITES_PER_REQUEST", 4)
    d = pair.root / "personal"
    d.mkdir()
    for i in range(10):
        (d / f"up{i}.ics").write_text(ICS.format(uid=f"up{i}", title=f"U{i}"))
    result = pair.sync()
    assert result.ok, result
    assert len(pair.server.events) == 10
    sizes = [
        sum(len(a.get("create") or {}) for n, a in r if n.endswith("/set"))
        for r in pair.server.request_args
        if any(n.endswith("/set") for n, _ in r)
    ]
    assert sizes == [4, 4, 2]


def test_odd_uids_get_safe_stable_names(pair):
    odd = ["../../etc/passwd", "a/b", "x" * 300, "ünïcødé-🎉", "nul\x00byte", ".hidden"]
    for uid in odd:
        pair.server.put_event(event(uid))
    result = pair.sync()
    assert result.ok, result
    names = sorted(pair.files())
    assert len(names) == len(odd)
    for name in names:
        assert "/" not in name and not name.startswith(".") and len(name.encode()) <= 255
    assert not (pair.tmp / "etc").exists()
    again = pair.sync()
    assert again.changes == 0
    assert sorted(pair.files()) == names


def test_file_touched_without_change_is_not_uploaded(pair):
    pair.server.put_event(event("ev0"))
    pair.sync()
    path = pair.root / "personal" / "ev0.ics"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    state = pair.server.state
    result = pair.sync()
    assert result.changes == 0
    assert pair.server.state == state


@pytest.mark.parametrize("server_side", ["delete", "edit"])
def test_touched_file_follows_a_server_change_in_the_same_pass(pair, server_side):
    """A touch (new mtime, same bytes) is no local edit: the server's delete or edit applies
    at once, and the pass does not report the file as changed under it (found by the state
    machine test: the stale etag made every later pass fail on that file)."""
    pair.server.put_event(event("ev0"))
    pair.server.put_event(event("ev1"))
    pair.sync()
    path = pair.root / "personal" / "ev0.ics"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    ev = pair.server.by_uid("ev0")
    if server_side == "delete":
        pair.server.delete_event(ev["id"])
    else:
        pair.server.put_event({**ev, "title": "Moved"}, calendar=next(iter(ev["calendarIds"])))
    result = pair.sync()
    assert result.ok, result.summary()
    if server_side == "delete":
        assert not path.exists()
    else:
        assert "SUMMARY:Moved" in path.read_text()
    assert pair.sync().changes == 0


def test_file_edited_while_the_pass_writes_it_is_kept_and_decided_next_pass(pair, monkeypatch):
    """The user saves between syncd's staging and its rename: the save is not overwritten,
    and the next pass sees both edits and applies the conflict rule (remote-wins here),
    recording the user's version instead of silently dropping either side."""
    from syncd.vdir.storage import VdirCollection

    pair.server.put_event(event("ev0"))
    pair.sync()
    path = pair.root / "personal" / "ev0.ics"
    ev = pair.server.by_uid("ev0")
    pair.server.put_event({**ev, "title": "Server"}, calendar=next(iter(ev["calendarIds"])))
    real_commit = VdirCollection.commit_batch

    def user_saves_first(self):
        path.write_text(path.read_text().replace("SUMMARY:Meeting", "SUMMARY:Mine"))
        return real_commit(self)

    monkeypatch.setattr(VdirCollection, "commit_batch", user_saves_first)
    first = pair.sync()
    assert not first.ok and "changed on disk" in first.summary() + str(first.collections)
    assert "SUMMARY:Mine" in path.read_text()
    monkeypatch.setattr(VdirCollection, "commit_batch", real_commit)
    second = pair.sync()
    assert second.ok, second.summary()
    assert "SUMMARY:Server" in path.read_text()
    assert pair.server.by_uid("ev0")["title"] == "Server"
    assert second.collections[0].conflicts == 1
    assert pair.sync().changes == 0


def test_state_is_not_advanced_past_blocked_collection(pair):
    ids = [pair.server.put_event(event(f"ev{i}")) for i in range(12)]
    pair.sync()
    for eid in ids[:10]:
        pair.server.delete_event(eid)
    result = pair.sync()
    assert result.collections[0].blocked
    assert len(pair.files()) == 12
    # still blocked next time (the evidence was kept), and forcing applies it
    assert pair.sync().collections[0].blocked
    assert pair.sync(force_delete=True).ok
    assert len(pair.files()) == 2


def test_status_json_reads_the_journal(pair, capsys):
    from syncd.cli import main

    pair.server.put_event(event("ev0"))
    pair.sync()
    assert main(["-c", str(pair.config_path), "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report[0]["collections"][0]["items"] == 1
    assert pair.server.password not in json.dumps(report)


def test_state_moved_by_other_data_types_costs_one_count_not_a_listing(pair):
    for i in range(5):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    pair.server.state += 3  # mail arrived: Cyrus shares one state across all types
    before = len(pair.server.requests)
    result, requests = pair.requests_during(pair.sync)
    assert result.ok and result.changes == 0
    fetched = [name for req in pair.server.requests[before:] for name in req]
    assert fetched.count("CalendarEvent/query") == 1  # the count, no paging
    assert requests <= 3


def test_wiped_server_is_caught_by_the_count_and_the_guard_keeps_the_files(pair):
    for i in range(10):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    # The server was restored from an empty backup: a lower state, no events, and
    # /changes from our (future) state answers "nothing changed", as Cyrus does.
    pair.server.events.clear()
    pair.server.log.clear()
    pair.server.state = 2
    result = pair.sync()
    assert not result.ok
    assert any(c.blocked for c in result.collections)
    assert len(pair.files()) == 10


def _full_get_ids(requests) -> list[str]:
    """Ids asked for by explicit-id CalendarEvent/get calls (full objects, not refs)."""
    out = []
    for req in requests:
        for name, args in req:
            if name == "CalendarEvent/get" and args.get("ids") and not args.get("properties"):
                out += args["ids"]
    return out


def test_full_listing_fetches_only_what_changed_when_updated_is_trustworthy(pair):
    for i in range(10):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    pair.server.calendar_destroyed_at = pair.server.state + 1
    ev3 = pair.server.put_event(event("ev3", "changed meanwhile"))
    before = len(pair.server.request_args)
    result = pair.sync()
    assert result.ok
    assert b"changed meanwhile" in pair.files()["ev3.ics"]
    assert _full_get_ids(pair.server.request_args[before:]) == [ev3]


def test_an_edit_in_the_same_second_as_our_read_is_not_missed(pair):
    pair.server.frozen_clock = True  # Cyrus keeps `updated` to the second
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    pair.server.calendar_destroyed_at = pair.server.state + 1
    pair.server.put_event(event("ev1", "same second"))  # `updated` does not move
    result = pair.sync()
    assert result.ok
    assert b"same second" in pair.files()["ev1.ics"]


@pytest.mark.parametrize("many", [False, True], ids=["few-objects", "many-objects"])
def test_an_updated_not_trusted_at_first_is_trusted_once_seen_again_unchanged(
    pair, monkeypatch, many
):
    from syncd.journal import Journal
    from syncd.sync import engine

    if many:  # a pass with more objects than this reads the untrusted rows in one query
        monkeypatch.setattr(engine._RemoteIndex, "MANY", 1)

    def remote_updated() -> dict[str, str | None]:
        journal = Journal(pair.config_path.parent / "state" / "cal.sqlite3")
        try:
            return dict(journal.db.execute("SELECT uid, remote_updated FROM items").fetchall())
        finally:
            journal.close()

    pair.server.frozen_clock = True  # `updated` in the second of our read: not trusted yet
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    assert remote_updated() == {"ev0": None, "ev1": None, "ev2": None}
    pair.server.frozen_clock = False
    pair.server.calendar_destroyed_at = pair.server.state + 1  # the next pass lists all
    assert pair.sync().ok
    assert remote_updated() == {f"ev{i}": pair.server.by_uid(f"ev{i}")["updated"] for i in range(3)}


@pytest.mark.parametrize("new_item", [True, False], ids=["count-differs", "count-same"])
def test_a_server_restored_from_backup_is_noticed_and_converges(pair, new_item):
    """The server goes back in time (restored from a backup): Cyrus then answers our
    newer state with "no changes" and an older state.  The pass must not trust that
    silence: it lists the server, brings back what the restore reverted, and the two
    sides agree again without duplicates."""
    import copy

    for i in range(10):
        pair.server.put_event(event(f"ev{i}", f"T{i}"))
    pair.sync()
    backup = copy.deepcopy((pair.server.events, pair.server.log, pair.server.state))
    if new_item:
        pair.server.put_event(event("late", "Made after the backup"))
    ev3 = pair.server.by_uid("ev3")
    pair.server.put_event({**ev3, "title": "Edited after the backup"}, calendar="Default")
    pair.sync()
    assert "SUMMARY:Edited after the backup" in (pair.root / "personal" / "ev3.ics").read_text()
    pair.server.events, pair.server.log, pair.server.state = backup  # the restore
    result = pair.sync()
    assert result.ok, result.summary()
    server = {e["uid"]: e["title"] for e in pair.server.events.values()}
    local = {p.stem: p.read_text() for p in (pair.root / "personal").glob("*.ics")}
    assert set(server) == set(local)  # no side keeps an item the other lacks
    assert len(server) == len(pair.server.events)  # no duplicate UIDs on the server
    for uid, title in server.items():
        assert f"SUMMARY:{title}" in local[uid]
    assert pair.sync().changes == 0


def test_a_long_pass_lets_the_event_loop_run(pair):
    """The daemon's watchdog pings and push reads share the loop with a pass: converting
    and writing hundreds of files must not starve them (counted in loop turns, not time)."""
    import anyio

    from syncd.config import load_config
    from syncd.connect import connect
    from syncd.journal import Journal
    from syncd.sync.engine import PairSync, PassOptions

    for i in range(400):
        pair.server.put_event(event(f"ev{i}", f"T{i}"))
    config = load_config(pair.config_path)
    turns = 0

    async def ticker(done: anyio.Event) -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await anyio.sleep(0)

    async def go():
        done = anyio.Event()
        client = await connect(config.accounts["home"], transport=pair.transport)
        journal = Journal(config.state_dir / "cal.sqlite3")
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker, done)
            try:
                result = await PairSync(config, config.pairs["cal"], client, journal).run(
                    PassOptions()
                )
            finally:
                done.set()
                journal.close()
        return result

    result = anyio.run(go)
    assert result.ok and result.collections[0].downloaded == 400
    assert turns >= 400 // 32  # the loop ran at least once per 32 items written
