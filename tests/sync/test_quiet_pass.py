"""A pass over a directory that matches the journal's fingerprint compares nothing file by
file (syncd.vdir.fingerprint) -- and still never misses an edit.  ``syncd sync`` passes
``fingerprints=True``; the daemon does not."""

from __future__ import annotations

import os

import pytest

from syncd.journal import ItemRows
from syncd.vdir import prefetch
from syncd.vdir.storage import VdirCollection
from tests.sync.test_engine import ICS, event


@pytest.fixture
def synced(pair):
    for i in range(12):
        pair.server.put_event(event(f"ev{i}"))
    assert pair.sync(fingerprints=True).ok
    return pair


def _forbid_file_by_file(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("compared file by file")

    monkeypatch.setattr(VdirCollection, "list", refuse)
    monkeypatch.setattr(ItemRows, "_listing", refuse)


def test_a_pass_over_an_unchanged_directory_reads_neither_listing(synced, monkeypatch):
    _forbid_file_by_file(monkeypatch)
    result = synced.sync(fingerprints=True)
    assert result.ok, result.summary()
    assert result.changes == 0


def test_a_server_change_comes_down_and_the_next_pass_is_quiet_again(synced, monkeypatch):
    ev = synced.server.by_uid("ev4")
    synced.server.put_event({**ev, "title": "Moved"}, calendar=next(iter(ev["calendarIds"])))
    assert synced.sync(fingerprints=True).ok
    assert "SUMMARY:Moved" in (synced.root / "personal" / "ev4.ics").read_text()
    _forbid_file_by_file(monkeypatch)
    again = synced.sync(fingerprints=True)
    assert again.ok and again.changes == 0


def test_an_edit_in_place_at_the_same_size_is_found(synced, monkeypatch):
    # The listing that the fingerprint was made of is the one compared: no second stat.
    monkeypatch.setattr(VdirCollection, "list", lambda self: pytest.fail("stat'ed again"))
    path = synced.root / "personal" / "ev3.ics"
    data = path.read_bytes()
    st = path.stat()
    with open(path, "r+b") as f:  # same inode, same size, the directory's mtime unmoved
        f.write(data.replace(b"SUMMARY:Meeting", b"SUMMARY:Meetinh"))
    assert path.stat().st_size == st.st_size and path.stat().st_ino == st.st_ino
    assert synced.sync(fingerprints=True).ok
    assert synced.server.by_uid("ev3")["title"] == "Meetinh"


def test_new_deleted_and_bad_files_are_found_every_pass(synced):
    d = synced.root / "personal"
    (d / "new.ics").write_text(ICS.format(uid="brand-new", title="Fresh"))
    (d / "ev1.ics").unlink()
    (d / "bad.ics").write_text("this is not iCalendar")
    for _ in range(2):  # the bad file keeps the directory off the journal's fingerprint
        result = synced.sync(fingerprints=True)
        assert any("bad.ics" in e for c in result.collections for e in c.errors), result
    assert synced.server.by_uid("brand-new")["title"] == "Fresh"
    assert synced.server.by_uid("ev1") is None
    (d / "bad.ics").unlink()
    assert synced.sync(fingerprints=True).ok


@pytest.fixture
def child(monkeypatch):
    """As tests/unit/test_fingerprint.py's fresh_prefetch."""
    prefetch.stop()
    monkeypatch.setattr(prefetch.threading, "active_count", lambda: 1)
    yield
    prefetch.stop()


def test_an_edit_made_after_the_child_looked_goes_up_the_next_pass(synced, child):
    """The child's fingerprint is the directory a moment before the pass: an edit made in
    that moment is not in this pass, and must be in the next one."""
    if not prefetch.start([synced.root]):
        pytest.fail("no child")
    prefetch._child.fingerprints()  # the child has looked
    path = synced.root / "personal" / "ev5.ics"
    path.write_text(path.read_text().replace("SUMMARY:Meeting", "SUMMARY:Late edit"))
    first = synced.sync(fingerprints=True)
    assert first.ok and synced.server.by_uid("ev5")["title"] == "Meeting"  # the child's view
    second = synced.sync(fingerprints=True)
    assert second.ok, second.summary()
    assert synced.server.by_uid("ev5")["title"] == "Late edit"


def test_an_edit_the_child_saw_goes_up_even_if_its_listing_never_arrives(synced, child):
    """The child sends fingerprints first and listings after; if it is gone before the
    pass asks for the listing, the pass lists the directory itself."""
    path = synced.root / "personal" / "ev7.ics"
    path.write_text(path.read_text().replace("SUMMARY:Meeting", "SUMMARY:Seen"))
    if not prefetch.start([synced.root]):
        pytest.fail("no child")
    prefetch._child.fingerprints()
    prefetch._child.close()  # killed before its listings were read
    assert synced.sync(fingerprints=True).ok
    assert synced.server.by_uid("ev7")["title"] == "Seen"


def test_a_server_change_to_a_file_edited_after_the_child_looked_loses_neither(synced, child):
    if not prefetch.start([synced.root]):
        pytest.fail("no child")
    prefetch._child.fingerprints()
    path = synced.root / "personal" / "ev6.ics"
    path.write_text(path.read_text().replace("SUMMARY:Meeting", "SUMMARY:Mine"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    ev = synced.server.by_uid("ev6")
    synced.server.put_event({**ev, "title": "Theirs"}, calendar=next(iter(ev["calendarIds"])))
    synced.sync(
        fingerprints=True
    )  # writing the server's version is refused: the file moved under it
    assert "SUMMARY:Mine" in path.read_text()
    assert synced.sync(fingerprints=True).ok
    # remote-wins: the server's version is kept, the user's is in the conflict log
    assert synced.server.by_uid("ev6")["title"] == "Theirs"
    assert "SUMMARY:Theirs" in path.read_text()
    assert synced.sync(fingerprints=True).changes == 0


def test_the_daemons_passes_neither_compute_nor_keep_fingerprints(pair, monkeypatch):
    """It would compute them itself, for what the file-by-file comparison costs."""
    for i in range(3):
        pair.server.put_event(event(f"ev{i}"))
    monkeypatch.setattr(VdirCollection, "look", lambda self: pytest.fail("computed a fingerprint"))
    assert pair.sync().ok and pair.sync().ok
    from syncd.journal import Journal

    j = Journal(pair.tmp / "state" / "cal.sqlite3")
    try:
        assert j.db.execute("SELECT COUNT(*) FROM listing_fingerprints").fetchone()[0] == 0
    finally:
        j.close()


def test_a_directory_with_a_stale_temp_file_is_listed_and_cleaned(synced):
    d = synced.root / "personal"
    stale = d / ".syncd-crashed.tmp"
    stale.write_text("half a file from a killed pass")
    os.utime(stale, (1, 1))
    assert synced.sync(fingerprints=True).ok
    assert not stale.exists()
