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


# -- a named pass against a full look, case by case ----------------------------------
#
# Each case changes the vdir after a sync and names the files a watcher would name.  Both
# passes are dry runs over the same state; what each found (changes, deletions, files it
# could not use, what it said, the plan) must be the same.  The named pass reads only the
# named files' journal rows (and a row by UID for an item found in a second file).


def _write(d, name: str, uid: str, title: str = "x") -> None:
    (d / name).write_text(VEVENT.format(uid=uid, title=title))


def _edit(d, name: str, title: str) -> None:
    path = d / name
    path.write_bytes(path.read_bytes().replace(b"SUMMARY:", f"SUMMARY:{title} ".encode(), 1))


SCAN_CASES = {
    "edit in place": lambda d: (_edit(d, "e1.ics", "edited"), {"e1.ics"}),
    "new file": lambda d: (_write(d, "n.ics", "n1"), {"n.ics"}),
    "deleted": lambda d: (os.unlink(d / "e2.ics"), {"e2.ics"}),
    "renamed": lambda d: (os.rename(d / "e3.ics", d / "r.ics"), {"e3.ics", "r.ics"}),
    "touched, same bytes": lambda d: (os.utime(d / "e4.ics", ns=(1, 1)), {"e4.ics"}),
    "rewritten, same meaning": lambda d: (_write(d, "e4.ics", "e4", "t4"), {"e4.ics"}),
    "a copy sorting before the original": lambda d: (
        _write(d, "a.ics", "e3", "copy"),
        {"a.ics"},
    ),
    "a copy sorting after the original": lambda d: (_write(d, "z.ics", "e3", "copy"), {"z.ics"}),
    "a copy, and the original edited": lambda d: (
        _write(d, "z.ics", "e3", "copy"),
        _edit(d, "e3.ics", "edited"),
        {"z.ics", "e3.ics"},
    ),
    "a copy, and the original deleted": lambda d: (
        _write(d, "a.ics", "e3", "copy"),
        os.unlink(d / "e3.ics"),
        {"a.ics", "e3.ics"},
    ),
    "copies on both sides of the original": lambda d: (
        _write(d, "b.ics", "e3", "before"),
        _write(d, "z.ics", "e3", "after"),
        {"b.ics", "z.ics"},
    ),
    "two new files with one UID": lambda d: (
        _write(d, "n1.ics", "same"),
        _write(d, "n2.ics", "same"),
        {"n1.ics", "n2.ics"},
    ),
    "deleted, its item now in a new file": lambda d: (
        os.unlink(d / "e2.ics"),
        _write(d, "x.ics", "e2", "moved"),
        {"e2.ics", "x.ics"},
    ),
    "a file now holding another UID": lambda d: (_write(d, "e1.ics", "other"), {"e1.ics"}),
    "a file now holding an unnamed file's UID": lambda d: (
        _write(d, "e1.ics", "e0", "taken"),
        {"e1.ics"},
    ),
    "two files swapped": lambda d: (
        os.rename(d / "e1.ics", d / "tmp"),
        os.rename(d / "e2.ics", d / "e1.ics"),
        os.rename(d / "tmp", d / "e2.ics"),
        {"e1.ics", "e2.ics", "tmp"},
    ),
    "not iCalendar": lambda d: ((d / "e5.ics").write_text("garbage"), {"e5.ics"}),
    "a new file that is not iCalendar": lambda d: ((d / "bad.ics").write_text("x"), {"bad.ics"}),
    "a name that came and went": lambda d: (set(), {"gone.ics", ".e1.ics.swp", "notes.txt"}),
    "a directory named like an item": lambda d: ((d / "dir.ics").mkdir(), {"dir.ics"}),
    "deleted, and a file of that name now a directory": lambda d: (
        os.unlink(d / "e0.ics"),
        (d / "e0.ics").mkdir(),
        {"e0.ics"},
    ),
}


def _found(pair: PairHarness, monkeypatch, **options):
    """What a dry run found in the one collection: its changes, deletions, what it could
    not use, what it said, the etags it would remember and its plan."""
    from syncd.sync.engine import PairSync

    got = []
    monkeypatch.setattr(PairSync, "_print_plan", lambda self, actives: got.extend(actives))
    result = pair.sync(dry_run=True, **options)
    monkeypatch.undo()
    (act,) = got
    return {
        "changed": {u: (v.filename, v.etag, v.hash) for u, v in act.local.changed.items()},
        "missing": act.local.missing,
        "unreadable": act.local.unreadable,
        "errors": sorted(result.collections[0].errors),
        "touched": sorted((r.uid, r.filename, r.local_etag) for r in act.touched),
        "plan": sorted((a.kind.value, a.uid) for a in act.plan.actions),
        "blocked": act.plan.blocked,
    }


@pytest.mark.parametrize("case", SCAN_CASES)
def test_a_named_pass_finds_what_a_full_look_finds(pair: PairHarness, monkeypatch, case):
    from syncd.journal import ItemRows

    _seed(pair)
    d = pair.root / "personal"
    *_, named = SCAN_CASES[case](d)
    full = _found(pair, monkeypatch)
    assert (
        full["changed"]
        or full["missing"]
        or full["errors"]
        or full["touched"]
        or (case == "a name that came and went" or case == "a directory named like an item")
    )  # each case but those changes something
    listings: list[object] = []
    real = ItemRows._listing
    monkeypatch.setattr(ItemRows, "_listing", lambda self: listings.append(self) or real(self))
    named_found = _found(pair, monkeypatch, local_named={str(d): named})
    assert named_found == full
    assert listings == []  # no journal listing was read: only the named files' rows
