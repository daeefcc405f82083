"""The journal: private files, tied to one account."""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import uuid

import pytest

from syncd.journal import Journal, JournalError, served_base


def test_journal_file_is_private(tmp_path):
    j = Journal(tmp_path / "state" / "p.sqlite3")
    j.close()
    mode = stat.S_IMODE((tmp_path / "state" / "p.sqlite3").stat().st_mode)
    assert mode == 0o600


def test_a_journal_refuses_another_account_unless_allowed(tmp_path):
    j = Journal(tmp_path / "p.sqlite3")
    j.bind_account("u1@https://a/jmap/", allow_change=False)
    j.bind_account("u1@https://a/jmap/", allow_change=False)  # same: fine
    with pytest.raises(JournalError) as info:
        j.bind_account("u2@https://b/jmap/", allow_change=False)
    assert "--allow-account-change" in str(info.value)
    j.bind_account("u2@https://b/jmap/", allow_change=True)
    j.close()


def test_a_transaction_is_all_or_nothing(tmp_path):
    j = Journal(tmp_path / "p.sqlite3")
    with pytest.raises(RuntimeError), j.transaction():
        j.set_state("CalendarEvent", "5")
        raise RuntimeError("crash in the middle")
    assert j.get_state("CalendarEvent") is None
    j.close()


def test_item_base_round_trips_and_is_decoded_only_when_read(tmp_path):
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    base = {"title": "Café", "alerts": {"a1": {"trigger": {"offset": "-PT5M"}}}}
    with j.transaction():
        for i in range(3):
            j.put_item(
                ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i}", (1, 2, 3), "h", "rh", None, base)
            )
        j.put_item(ItemRow("cal", "nobase", "n.ics", None, None, None, None, None))
    rows = j.items("cal")
    assert all("_base_decoded" not in row.__dict__ for row in rows.values())
    assert rows["u1"].base == base and "_base_decoded" in rows["u1"].__dict__
    assert "_base_decoded" not in rows["u2"].__dict__
    assert rows["nobase"].base is None
    # A row's base is read when first asked for, and only then.
    before = rows["u0"]
    assert before.__dict__["_base_raw"] is not None and "_base_decoded" not in before.__dict__
    assert before.base == base
    j.close()


def test_a_base_kept_as_served_reads_as_its_canonical_form(tmp_path, caplog):
    from syncd.convert.canon import canonical
    from syncd.journal import SERVED, ItemRow, served_base

    served = {
        "@type": "Event",
        "uid": "u1",
        "id": "E1",
        "title": "Café",
        "updated": "2026-01-01T00:00:00Z",
        "calendarIds": {"c": True},
        "alerts": {
            "x": {"@type": "Alert", "trigger": {"@type": "OffsetTrigger", "offset": "-PT60M"}}
        },
    }
    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        j.put_item(
            ItemRow("cal", "u1", "u1.ics", "E1", (1, 2, 3), "h", None, None, served_base(served))
        )
        j.put_item(ItemRow("cal", "u2", "u2.ics", "E2", (1, 2, 3), "h", None, None, SERVED + "{"))
    stored = j.db.execute("SELECT base FROM items WHERE uid = 'u1'").fetchone()[0]
    assert stored.startswith(SERVED)  # kept as served: no canonical form made to store it
    rows = j.items("cal")
    assert rows["u1"].base == canonical(served)
    assert rows["u1"].remote_hash is None
    # One that cannot be read is no base (a merge is then impossible), not a failed pass.
    assert rows["u2"].base is None
    assert "cannot be read" in caplog.text
    j.close()


def test_an_older_journal_is_marked_current_and_a_newer_one_refused(tmp_path):
    from syncd.journal import SCHEMA_VERSION

    path = tmp_path / "p.sqlite3"
    j = Journal(path)
    assert j.get_meta("schema_version") == str(SCHEMA_VERSION)
    j.set_meta("schema_version", "1")  # as a syncd from before served bases left it
    j.set_state("CalendarEvent", "s1")
    j.close()
    j = Journal(path)
    assert j.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert j.get_state("CalendarEvent") == "s1"
    j.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    j.close()
    with pytest.raises(JournalError) as info:
        Journal(path)
    assert "newer syncd" in str(info.value) and "upgrade syncd" in str(info.value)


def test_item_rows_are_built_only_when_asked_for(tmp_path):
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        for i in range(5):
            j.put_item(ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i}", (1, 2, i), "h", "rh", None))
    rows = j.items("cal")
    assert len(rows) == 5 and sorted(rows) == [f"u{i}" for i in range(5)]
    assert rows.by_filename() == {f"u{i}.ics": (f"u{i}", f"1:2:{i}") for i in range(5)}
    assert rows._rows == {}  # nothing built for the etag comparison
    assert "u2" in rows and "nope" not in rows and rows._rows == {}  # nor to ask membership
    assert rows["u3"].remote_id == "r3" and list(rows._rows) == ["u3"]
    rows["new"] = ItemRow("cal", "new", "n.ics", None, (9, 9, 9), None, None, None)
    rows["u1"] = ItemRow("cal", "u1", "moved.ics", "r1", (7, 7, 7), "h", "rh", None)
    by_file = rows.by_filename()  # rows changed in this pass count, as they are now
    assert by_file["n.ics"] == ("new", "9:9:9") and len(rows) == 6
    assert by_file["moved.ics"] == ("u1", "7:7:7") and "u1.ics" not in by_file
    del rows["u0"]
    assert "u0" not in rows and rows.get("u0") is None and len(rows) == 5
    j.close()


@pytest.mark.parametrize("listed", [False, True])
def test_item_rows_get_and_lookup_agree_with_and_without_the_listing(tmp_path, listed):
    # ``get`` is the rows' own (no KeyError raised per unknown uid); it must answer as
    # ``rows[uid]`` does, for rows stored, deleted in this pass, set in it, and unknown.
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        for i in range(3):
            j.put_item(ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i}", (1, 2, i), "h", "rh", None))
    rows = j.items("cal")
    if listed:
        rows.read_listing()
    del rows["u0"]
    rows["new"] = ItemRow("cal", "new", "n.ics", None, (9, 9, 9), None, None, None)
    assert rows.get("u1").remote_id == "r1" and rows["u1"] is rows.get("u1")
    assert rows.get("new").filename == "n.ics" and rows.get("new", 7) is rows["new"]
    for missing in ("u0", "nope"):
        assert rows.get(missing) is None and rows.get(missing, "d") == "d"
        with pytest.raises(KeyError):
            rows[missing]
    j.close()


def _rows_in_two_states(tmp_path, n: int):
    """The same collection's rows twice: one read by point queries (a pass that looks at
    a few files), one with the listing read, each changed the same way in this pass."""
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        for i in range(n):
            j.put_item(ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i}", (1, 2, i), "h", "rh", None))
        j.put_item(ItemRow("other", "u1", "u1.ics", "x", (5, 5, 5), "h", "rh", None))
    both = []
    for read in (False, True):
        rows = j.items("cal")
        if read:
            rows.read_listing()
        rows["new"] = ItemRow("cal", "new", "n.ics", None, (9, 9, 9), None, None, None)
        rows["new2"] = ItemRow("cal", "new2", "n2.ics", None, (9, 9, 8), None, None, None)
        rows["u1"] = ItemRow("cal", "u1", "moved.ics", "r1", (7, 7, 7), "h", "rh", None)
        del rows["u0"]
        rows["u2"]  # noqa: B018 - read, not changed
        both.append(rows)
    return j, both


def test_a_few_files_rows_are_read_as_the_whole_listing_has_them(tmp_path):
    j, (few, listed) = _rows_in_two_states(tmp_path, 1200)  # more names than one query takes
    names = {f"u{i}.ics" for i in range(0, 1200, 2)} | {"moved.ics", "n.ics", "nope.ics"}
    names |= {"u1.ics", "u3.ics"}
    assert few._raw is None
    got = few.by_filenames(names)
    assert few._raw is None  # point queries only
    assert got == listed.by_filenames(names)
    assert got == {k: v for k, v in listed.by_filename().items() if k in names}
    assert got["moved.ics"] == ("u1", "7:7:7") and got["n.ics"] == ("new", "9:9:9")
    assert "u0.ics" not in got and "u1.ics" not in got and got["u2.ics"] == ("u2", "1:2:2")
    assert len(few) == len(listed) == 1201 and few._raw is None  # counted, not listed
    j.close()


def test_a_row_without_an_etag_is_found_without_reading_every_row(tmp_path):
    from syncd.journal import ItemRow

    j, (few, listed) = _rows_in_two_states(tmp_path, 10)
    assert not few.any_without_etag() and not listed.any_without_etag()
    j.db.execute("UPDATE items SET local_etag = NULL WHERE uid IN ('u5', 'u0')")
    j.db.execute("UPDATE items SET local_etag = NULL WHERE collection = 'other'")
    plan = j.db.execute(
        "EXPLAIN QUERY PLAN SELECT uid FROM items INDEXED BY items_without_etag "
        "WHERE collection = ? AND local_etag IS NULL",
        ("cal",),
    ).fetchall()
    assert "items_without_etag" in str(plan)
    fresh = j.items("cal")
    assert fresh.any_without_etag() and fresh._raw is None
    del fresh["u5"], fresh["u0"]  # deleted in this pass: no such row any more
    assert not fresh.any_without_etag()
    fresh["u3"] = ItemRow("cal", "u3", "u3.ics", "r3", None, "h", "rh", None)  # set so now
    assert fresh.any_without_etag()
    listed_now = j.items("cal")
    listed_now.read_listing()
    assert listed_now.any_without_etag()
    j.close()


def test_what_every_pass_reads_comes_from_an_index_not_the_rows(tmp_path):
    """A row carries its base (kilobytes); the per-pass listing must not read them."""
    j = Journal(tmp_path / "p.sqlite3")
    from syncd.journal import LISTING_QUERY

    plan = j.db.execute("EXPLAIN QUERY PLAN " + LISTING_QUERY, ("cal",)).fetchall()
    assert "COVERING INDEX" in str(plan), plan
    j.close()


def test_one_remote_id_is_found_without_reading_the_whole_index(tmp_path):
    from syncd.journal import ItemRow
    from syncd.sync.engine import _RemoteIndex

    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        for i in range(20):
            j.put_item(ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i % 15}", None, "h", "rh", None))
    full = j.remote_index()
    assert all(j.remote_location(rid) == full[rid] for rid in full)  # shared ids: same row
    assert j.remote_location("nope") is None

    few = _RemoteIndex(j, expected=3)
    j.remote_index = lambda: (_ for _ in ()).throw(AssertionError("read every row"))  # type: ignore[method-assign]
    assert few.get("r3") == full["r3"] and few.get("nope") is None and "r4" in few
    many = _RemoteIndex(j, expected=_RemoteIndex.MANY + 1)
    with pytest.raises(AssertionError, match="every row"):
        many.get("r3")  # a pass bringing many objects reads the index once instead
    j.close()


def test_rows_are_put_in_the_order_given_so_a_filename_given_up_can_be_taken(tmp_path):
    """A run where a row takes the filename another row of the same run gives up is put
    in the order given (sorting runs by key was tried in session 14: the savepoint it
    needs cost more than the sorted inserts saved); a run no order can put fails whole."""
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        j.put_items([ItemRow("cal", "b", "x.ics", "rb", (1, 1, 1), "h", "rh", None)])
    shuffled = [
        ItemRow("cal", f"u{i:03d}", f"u{i:03d}.ics", f"r{i}", (1, 2, i), "h", "rh", None)
        for i in (5, 1, 9, 3, 7)
    ]
    chain = [  # b gives up x.ics for y.ics, then a takes x.ics
        ItemRow("cal", "b", "y.ics", "rb", (1, 1, 2), "h", "rh", None),
        ItemRow("cal", "a", "x.ics", "ra", (1, 1, 3), "h", "rh", None),
    ]
    with j.transaction():
        j.put_items(shuffled + chain)
    got = j.items("cal")
    assert sorted(got) == ["a", "b", "u001", "u003", "u005", "u007", "u009"]
    assert (got["a"].filename, got["b"].filename) == ("x.ics", "y.ics")
    assert got["u007"].local_etag == (1, 2, 7)
    swap = [  # no order can put this: an error, and nothing of the run is kept
        ItemRow("cal", "a", "y.ics", "ra", (1, 1, 4), "h", "rh", None),
        ItemRow("cal", "b", "x.ics", "rb", (1, 1, 5), "h", "rh", None),
    ]
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError), j.transaction():
        j.put_items(swap)
    got = j.items("cal")
    assert (got["a"].filename, got["b"].filename) == ("x.ics", "y.ics")
    j.close()


def test_many_rows_are_put_at_once_and_a_synced_items_errors_cleared(tmp_path):
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    rows = [
        ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i}", (1, 2, i), "h", "rh", None) for i in range(3)
    ]
    with j.transaction():
        j.put_items(rows)
        j.put_items([ItemRow("cal", "u1", "renamed.ics", "r1", (1, 2, 9), "h", "rh", None)])
        j.record_error("cal", "u0", "local", "disk full")
        j.record_error("cal", "u0", "remote", "cannot be converted")
        j.record_error("cal", "u2", "remote", "cannot be converted")
        j.record_error("other", "u0", "local", "another collection's")
    got = j.items("cal")
    assert sorted(got) == ["u0", "u1", "u2"]
    assert got["u1"].filename == "renamed.ics" and got["u1"].local_etag == (1, 2, 9)
    with j.transaction():
        j.clear_errors("cal", ["u0", "u1"])  # u1 has none: nothing to clear
    assert [(e[0], e[1], e[2]) for e in j.errors()] == [
        ("cal", "u2", "remote"),
        ("other", "u0", "local"),
    ]
    with j.transaction():
        j.delete_items("cal", ["u0", "u2"])
    assert sorted(j.items("cal")) == ["u1"]
    j.close()


def test_rows_known_to_be_new_are_added_by_a_plain_insert(tmp_path):
    """``add_items`` (a whole first download's rows): the INSERT without the upsert's
    conflict clause, which SQLite runs faster (Session 26 of contrib/bench/README.md)."""
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    statements: list[str] = []
    j.db.set_trace_callback(statements.append)
    rows = [
        ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i}", (1, 2, i), "h", "rh", None, "served:{}")
        for i in range(3)
    ]
    with j.transaction():
        j.add_items(rows)
    inserts = [s for s in statements if s.startswith("INSERT INTO items")]
    assert len(inserts) == 3 and not [s for s in inserts if "ON CONFLICT" in s]
    got = j.items("cal")
    assert sorted(got) == ["u0", "u1", "u2"] and got["u2"].local_etag == (1, 2, 2)
    j.close()


def test_rows_added_that_the_journal_has_after_all_are_put_as_an_upsert_would(tmp_path):
    """Should a row be there already, the whole run is put as ``put_items`` puts it:
    the rows the INSERT put before it are put again, the rest after it too."""
    from syncd.journal import ItemRow

    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        j.put_items([ItemRow("cal", "u1", "old.ics", "r1", (1, 1, 1), "h", "rh", None)])
        j.store_listing_fingerprint("cal")
    assert j.listing_fingerprint("cal") is not None
    rows = [
        ItemRow("cal", f"u{i}", f"u{i}.ics", f"r{i}", (1, 2, i), "h", "rh", None) for i in range(3)
    ]
    with j.transaction():
        j.add_items(rows)
    got = j.items("cal")
    assert sorted(got) == ["u0", "u1", "u2"]
    assert (got["u1"].filename, got["u1"].local_etag) == ("u1.ics", (1, 2, 1))
    assert j.count_items("cal") == 3
    assert j.listing_fingerprint("cal") is None  # the rows changed: the fingerprint went
    clash = [ItemRow("cal", "u9", "u0.ics", "r9", (1, 2, 9), "h", "rh", None)]
    with pytest.raises(sqlite3.IntegrityError), j.transaction():
        j.add_items(clash)  # another UID's file name: refused, as by put_items
    assert sorted(j.items("cal")) == ["u0", "u1", "u2"]
    j.close()


def test_the_journal_keeps_a_first_download_batch_in_its_page_cache(tmp_path):
    """A batch of 2,000 rows touches about 4 MB of pages; SQLite's default 2 MB cache
    wrote them out early and read them back (Session 16 of contrib/bench/README.md)."""
    from syncd.journal import CACHE_KIB

    j = Journal(tmp_path / "p.sqlite3")
    try:
        assert j.db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
        assert CACHE_KIB * 1024 >= 2 * 4_000_000
    finally:
        j.close()


def _rows(n: int, random_uids: bool = False):
    """A first download's rows: served bases of about 1 KB; UIDs in order, or random in
    the order served, as servers make and send them."""
    from syncd.journal import ItemRow

    base = served_base({"@type": "Event", "title": "a meeting", "description": "x" * 900})
    rng = random.Random(7)
    uids = [
        str(uuid.UUID(int=rng.getrandbits(128))) if random_uids else f"u{i:05d}" for i in range(n)
    ]
    return [
        ItemRow("cal", uid, f"{uid}.ics", f"E{uid}", (1, 2, 3), "h" * 64, "r" * 64, None, base)
        for uid in uids
    ]


def _bytes_written_by_this_process() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux's /proc/self/io")
def test_putting_a_first_download_writes_the_journal_not_temp_files(tmp_path):
    """SQLite's statement journals, once spilled to /var/tmp, took about ten writes of
    every row's pages in a first download (192 MB for 10,000 events; Session 25 of
    contrib/bench/README.md).  What putting rows writes is the WAL and the checkpoints:
    about twice the journal's size."""
    path = tmp_path / "p.sqlite3"
    j = Journal(path)
    rows = _rows(10_000, random_uids=True)
    before = _bytes_written_by_this_process()
    try:
        for start in range(0, len(rows), 2000):
            with j.transaction():
                j.put_items(rows[start : start + 2000])
        written = _bytes_written_by_this_process() - before
        on_disk = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("p."))
        assert len(j.items("cal")) == 10_000
    finally:
        j.close()
    assert written < 3 * on_disk, (written, on_disk)


def test_commits_beside_checkpoints_leave_them_to_the_thread(tmp_path, monkeypatch):
    """Within ``checkpoints_beside`` a commit does not copy the WAL into the database
    (the thread beside does), and the usual checkpoints come back after it."""
    from syncd import journal as journal_module

    started: list[int] = []
    monkeypatch.setattr(journal_module._CheckpointsBeside, "_run", lambda self: started.append(1))
    path = tmp_path / "p.sqlite3"
    j = Journal(path)
    rows = _rows(6000)
    try:
        size_before = path.stat().st_size
        with j.checkpoints_beside():
            for start in range(0, len(rows), 2000):  # each commit passes 1,000 WAL pages
                with j.transaction():
                    j.put_items(rows[start : start + 2000])
            assert path.stat().st_size == size_before  # nothing copied by this thread
        assert started == [1, 1, 1]
        assert j.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        with j.transaction():
            j.put_items(_rows(6100)[6000:])
        assert path.stat().st_size > 4_000_000  # copied again at the next commit
        assert len(j.items("cal")) == 6100
    finally:
        j.close()


def test_checkpoints_beside_copy_every_commit_into_the_database(tmp_path):
    path = tmp_path / "p.sqlite3"
    j = Journal(path)
    rows = _rows(6000)
    try:
        with j.checkpoints_beside():
            for start in range(0, len(rows), 2000):
                with j.transaction():
                    j.put_items(rows[start : start + 2000])
        # The last checkpoint is waited for: the rows are in the database file itself.
        assert path.stat().st_size > 6000 * 1000
        other = sqlite3.connect(path)
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 6000
        other.close()
    finally:
        j.close()


def test_without_a_thread_to_be_had_the_commit_checkpoints_itself(tmp_path, monkeypatch):
    import threading

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    path = tmp_path / "p.sqlite3"
    j = Journal(path)
    try:
        with j.checkpoints_beside():
            with j.transaction():
                j.put_items(_rows(2000))
            assert path.stat().st_size > 2000 * 1000  # copied into the database already
        assert len(j.items("cal")) == 2000
    finally:
        j.close()
