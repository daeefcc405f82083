"""Journal bases kept as served (syncd.journal.served_base): an object nobody compared is
recorded as the server sent it, and its canonical form is made only when a later pass
compares or merges that item.  These tests hold the later passes to what they did when
every base was canonical: nothing rewritten for a change that means nothing, merges
from the right base, and a base that cannot be read costing a merge, never the pass."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from syncd.journal import SERVED
from syncd.sync import plan, prepare
from syncd.sync.workers import ENV_WORKERS
from tests.sync.test_engine import event
from tests.sync.test_prepare import server_objects


def rows(pair) -> dict[str, tuple[str | None, str | None]]:
    """uid -> (remote_hash, base) as stored."""
    db = sqlite3.connect(pair.tmp / "state" / "cal.sqlite3")
    try:
        return {r[0]: r[1:] for r in db.execute("SELECT uid, remote_hash, base FROM items")}
    finally:
        db.close()


def conflicts(result) -> int:
    return sum(c.conflicts for c in result.collections)


@pytest.fixture
def canonical_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The uids whose server object had its canonical form made in this process."""
    calls: list[str] = []
    real = plan.canonical

    def spy(obj):
        calls.append(str(obj.get("uid")))
        return real(obj)

    monkeypatch.setattr(plan, "canonical", spy)
    return calls


def test_a_first_download_makes_no_canonical_form_and_keeps_each_base_as_served(
    pair, canonical_calls
):
    for i in range(5):
        pair.server.put_event(event(f"ev{i}", f"Event {i}"))
    assert pair.sync().ok
    assert canonical_calls == []
    for uid, (remote_hash, base) in rows(pair).items():
        assert remote_hash is None, uid
        assert base is not None and base.startswith(SERVED), uid


def test_a_server_change_that_means_nothing_rewrites_no_file(pair, canonical_calls):
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    pair.sync()
    before = pair.mtimes()
    # Only server-set values move (a new `updated`, another prodId): the same event.
    pair.server.put_event(event("ev1", prodId="-//phone//EN"))
    result = pair.sync()
    assert result.ok and result.changes == 0, result
    assert pair.mtimes() == before
    assert canonical_calls == ["ev1"]  # the new version only: the others were not compared


def test_edits_on_both_sides_merge_from_a_base_kept_as_served(pair):
    pair.server.put_event(event("ev1", "Standup", description="Room 1"))
    pair.sync()
    assert rows(pair)["ev1"][1].startswith(SERVED)
    path = pair.root / "personal" / "ev1.ics"
    path.write_bytes(path.read_bytes().replace(b"SUMMARY:Standup", b"SUMMARY:Standup moved"))
    pair.server.put_event(event("ev1", "Standup", description="Room 2"))
    result = pair.sync()
    assert result.ok and conflicts(result) == 0, result
    on_server = pair.server.by_uid("ev1")
    assert on_server["title"] == "Standup moved"  # the local edit, not overwritten
    assert on_server["description"] == "Room 2"  # the server's edit, kept
    assert b"Standup moved" in path.read_bytes() and b"Room 2" in path.read_bytes()
    # The merged version comes back through /changes: known as our own, so nothing moves.
    before = pair.mtimes()
    again = pair.sync()
    assert again.ok and again.changes == 0, again
    assert pair.mtimes() == before


def test_a_base_that_cannot_be_read_costs_the_merge_not_the_pass(pair):
    pair.server.put_event(event("ev1", "Standup", description="Room 1"))
    pair.server.put_event(event("ev2", "Lunch"))
    pair.sync()
    db = sqlite3.connect(pair.tmp / "state" / "cal.sqlite3")
    db.execute("UPDATE items SET base = ? WHERE uid = 'ev1'", (SERVED + '{"broken',))
    db.commit()
    db.close()
    path = pair.root / "personal" / "ev1.ics"
    path.write_bytes(path.read_bytes().replace(b"SUMMARY:Standup", b"SUMMARY:Standup moved"))
    pair.server.put_event(event("ev1", "Standup", description="Room 2"))
    pair.server.put_event(event("ev2", "Lunch at noon"))
    result = pair.sync()
    assert result.ok, result
    # No base to merge from: the conflict rule (remote-wins) decides, and says so.
    assert conflicts(result) == 1
    assert b"Room 2" in path.read_bytes()
    assert b"Lunch at noon" in pair.files()["ev2.ics"]


def test_syncing_into_a_vdir_another_tool_filled_compares_in_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canonical_calls
):
    # The journal is new but the vdir already holds every event (vdirsyncer's, say): each
    # server object is compared with its file, so the canonical forms are made by the
    # worker, and nothing is written on either side.
    from tests.support.fakejmap import FakeJmapServer, FakeTransport
    from tests.sync.conftest import PairHarness

    monkeypatch.setenv(ENV_WORKERS, "2")
    server = FakeJmapServer()
    for obj in server_objects(prepare.MIN_OBJECTS + 20, prefix="adopt"):
        obj.pop("id")
        server.put_event(obj)
    first = PairHarness(tmp_path / "first", server, FakeTransport(server))
    first.root.mkdir(parents=True)
    first.write_config()
    assert first.sync().ok
    second = PairHarness(tmp_path / "second", server, FakeTransport(server))
    shutil.copytree(first.root, second.root)
    second.write_config()
    before, requests = second.mtimes(), len(server.requests)
    canonical_calls.clear()
    result = second.sync()
    assert result.ok and result.changes == 0, result.summary()
    assert second.mtimes() == before
    assert not any("CalendarEvent/set" in req for req in server.requests[requests:])
    assert canonical_calls == []  # all made by the canonical-form worker
    assert all(remote_hash is not None for remote_hash, _ in rows(second).values())
