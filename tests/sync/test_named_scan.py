"""A pass told which files the watcher saw change (PassOptions.local_named) looks at
those and takes the rest as the journal has it: it must come to what a pass that looks
at every file would, and leave nothing for one to find after it."""

from __future__ import annotations

import os
import sqlite3

import pytest

from syncd.vdir.storage import VdirCollection, VdirRoot
from tests.sync.conftest import PairHarness

VEVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _seed(pair: PairHarness, n: int = 6) -> None:
    for i in range(n):
        pair.server.put_event(
            {"@type": "Event", "uid": f"e{i}", "title": f"t{i}", "start": "2026-03-01T10:00:00"}
        )
    assert pair.sync().ok


def _titles(pair: PairHarness) -> dict[str, str]:
    return {e["uid"]: e.get("title", "") for e in pair.server.events.values()}


def test_a_pass_over_the_named_files_does_what_a_full_look_would(pair: PairHarness, monkeypatch):
    _seed(pair)
    d = pair.root / "personal"
    edited = d / "e1.ics"
    with open(edited, "r+b") as f:  # in place, as nano does
        data = f.read().replace(b"SUMMARY:t1", b"SUMMARY:edited")
        f.seek(0)
        f.write(data)
        f.truncate()
    (d / "new.ics").write_text(VEVENT.format(uid="new-1", title="made here"))
    os.unlink(d / "e2.ics")
    os.rename(d / "e3.ics", d / "renamed.ics")  # the watcher names both paths
    (d / "e4.ics").write_text(VEVENT.format(uid="e4", title="t4"))  # touched, same meaning
    named = {"e1.ics", "new.ics", "e2.ics", "e3.ics", "renamed.ics", "e4.ics"}
    listings: list[str] = []
    real_list = VdirCollection.list
    monkeypatch.setattr(
        VdirCollection, "list", lambda self: listings.append(self.name) or real_list(self)
    )
    result = pair.sync(local_named={str(d): named})
    assert result.ok, result.summary()
    assert listings == []  # no directory was listed
    titles = _titles(pair)
    assert titles["e1"] == "edited" and titles["new-1"] == "made here"
    assert "e2" not in titles and titles["e3"] == "t3" and titles["e4"] == "t4"
    assert len(pair.server.events) == 6  # e0, e1, e3 (renamed), e4, e5, new-1: no duplicate
    monkeypatch.undo()
    server_before, files_before = dict(pair.server.events), pair.files()
    after = pair.sync()  # a full look finds nothing left to do
    assert after.ok
    assert after.collections[0].uploaded == after.collections[0].downloaded == 0
    assert pair.server.events == server_before and pair.files() == files_before


def test_what_is_not_named_is_taken_as_the_journal_has_it(pair: PairHarness):
    # The watcher names every file it sees change, so a file it did not name is not
    # looked at; the daemon asks for a pass for every event it gets.
    _seed(pair)
    d = pair.root / "personal"
    (d / "quiet.ics").write_text(VEVENT.format(uid="q", title="q"))
    assert pair.sync(local_named={str(d): {"e0.ics"}}).ok
    assert "q" not in _titles(pair)
    assert pair.sync().ok and _titles(pair)["q"] == "q"


def test_a_name_outside_the_synced_directories_means_looking_at_every_file(pair: PairHarness):
    # A directory spelled otherwise than the pass spells it, or not synced: the pass
    # cannot tell what the name stands for, so it takes no file as unchanged.
    _seed(pair)
    (pair.root / "personal" / "quiet.ics").write_text(VEVENT.format(uid="q", title="q"))
    assert pair.sync(local_named={str(pair.root / "elsewhere"): {"quiet.ics"}}).ok
    assert _titles(pair)["q"] == "q"


def test_a_journal_row_without_an_etag_means_looking_at_every_file(pair: PairHarness):
    # syncd writes no such row, but the journal can hold one: it says nothing about its
    # file, so the named pass does what a full look does (here: the file is there, with
    # the meaning last synced, and is kept; taken as gone, it would be deleted).
    _seed(pair)
    d = pair.root / "personal"
    db = sqlite3.connect(pair.tmp / "state" / "cal.sqlite3")
    db.execute("UPDATE items SET local_etag = NULL WHERE uid = 'e5'")
    db.commit()
    db.close()
    result = pair.sync(local_named={str(d): {"e0.ics"}})
    assert result.ok, result.summary()
    assert "e5" in _titles(pair) and (d / "e5.ics").exists()
    db = sqlite3.connect(pair.tmp / "state" / "cal.sqlite3")
    (etag,) = db.execute("SELECT local_etag FROM items WHERE uid = 'e5'").fetchone()
    db.close()
    assert etag is not None  # looked at, and remembered


def test_a_named_link_out_of_the_vdir_is_skipped_and_said_as_a_full_look_says(
    pair: PairHarness, tmp_path
):
    _seed(pair)
    outside = tmp_path / "outside.ics"
    outside.write_text(VEVENT.format(uid="out", title="outside"))
    os.symlink(outside, pair.root / "personal" / "link.ics")
    named = pair.sync(local_named={str(pair.root / "personal"): {"link.ics"}})
    full = pair.sync()
    assert "out" not in _titles(pair)
    said = [e for e in named.collections[0].errors if "link.ics" in e]
    assert said and said == [e for e in full.collections[0].errors if "link.ics" in e]


@pytest.mark.parametrize(
    "make",
    [
        "file",
        "missing",
        "dot file",
        "not an item",
        "directory",
        "link inside",
        "link outside",
        "dangling link",
    ],
)
def test_listed_says_what_list_says_about_one_name(tmp_path, make):
    root = VdirRoot(tmp_path / "vdir")
    root.path.mkdir()
    coll = root.create_collection("c")
    (coll.path / "target.ics").write_text("x")
    name = {"dot file": ".x.ics", "not an item": "notes.txt"}.get(make, "n.ics")
    path = coll.path / name
    if make in ("file", "dot file", "not an item"):
        path.write_text("y")
    elif make == "directory":
        path.mkdir()
    elif make == "link inside":
        path.symlink_to(coll.path / "target.ics")
    elif make == "link outside":
        (tmp_path / "out.ics").write_text("z")
        path.symlink_to(tmp_path / "out.ics")
    elif make == "dangling link":
        path.symlink_to(coll.path / "gone.ics")
    listing = coll.list()
    etag, skipped = coll.listed(name)
    assert etag == listing.get(name)
    assert ([skipped] if skipped else []) == coll.skipped
