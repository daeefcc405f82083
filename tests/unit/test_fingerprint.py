"""Listing fingerprints: the journal's, the directory's, and the child that computes the
directory's while ``syncd sync`` starts (syncd.vdir.fingerprint, syncd.vdir.prefetch)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.journal import LISTING_QUERY, ItemRow, Journal, etag_to_text
from syncd.vdir import look as look_module
from syncd.vdir import prefetch
from syncd.vdir.fingerprint import Look, encode, entries, fingerprint, from_text, of_data, to_text
from syncd.vdir.storage import VdirRoot


def _row(uid: str, filename: str, etag=(1, 2, 3)) -> ItemRow:
    return ItemRow("cal", uid, filename, f"r-{uid}", etag, "h", "rh", None)


def test_a_fingerprint_is_the_set_not_the_order_and_moves_with_any_entry():
    entries = [(f"f{i}.ics", f"{i}:10:{i}") for i in range(50)]
    value = fingerprint(entries)
    assert value == fingerprint(reversed(entries))
    assert from_text(to_text(value)) == value
    assert from_text(f"x9:{value:032x}") is None  # another syncd's way of computing them
    assert from_text(f"s1:{value:032x}") is None  # session 6's: sorted text lines
    moved = [*entries[:7], ("f7.ics", "8:10:7"), *entries[8:]]
    assert fingerprint(moved) != value  # one etag moved
    renamed = [*entries[:7], ("g7.ics", "7:10:7"), *entries[8:]]
    assert fingerprint(renamed) != value  # same etag under another name
    assert fingerprint(entries[1:]) != value  # one file gone
    # The same numbers under swapped names, or swapped between the etag's fields.
    swapped = [("f1.ics", "0:10:0"), ("f0.ics", "1:10:1"), *entries[2:]]
    assert fingerprint(swapped) != value
    assert fingerprint([("a.ics", "1:2:3")]) != fingerprint([("a.ics", "2:1:3")])
    assert fingerprint([("a.ics", "1:2:3")]) != fingerprint([("a.ics", "3:2:1")])
    assert fingerprint([]) != fingerprint([("a.ics", "0:0:0")])


def test_what_a_fingerprint_cannot_express_gets_none_and_the_listing_comes_back_whole():
    assert fingerprint([("two\nlines.ics", "1:2:3")]) is None  # compared file by file
    assert fingerprint([("a.ics", "1:2")]) is None  # not the journal's etag form
    assert fingerprint([("a.ics", "1:2:-3")]) is None  # an inode is never negative
    assert fingerprint([("a.ics", f"{2**64}:2:3")]) is None
    odd = [
        ("caf\u00e9 \u2603.ics", f"{-(2**63)}:0:{2**64 - 1}"),  # before 1970, the last inode
        ("bad-\udcff-byte.ics", "1:2:3"),  # a name that is not UTF-8 on disk
        ("z.ics", "1700000000123456789:1138:42"),
    ]
    value = fingerprint(odd)
    assert value is not None
    names, etags = zip(*sorted(odd), strict=True)
    mtimes, sizes, inodes = zip(*(map(int, e.split(":")) for e in etags), strict=True)
    data = encode(list(names), mtimes, sizes, inodes)
    assert data is not None and of_data(data) == value
    assert Look(value, data).listing() == dict(odd)
    assert entries(encode([], [], [], [])) == {}


def test_the_journal_keeps_its_rows_fingerprint_until_a_row_changes(tmp_path):
    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        for i in range(4):
            j.put_item(_row(f"u{i}", f"u{i}.ics", (i, 10, i)))
        j.put_item(ItemRow("other", "x", "x.ics", None, (5, 5, 5), None, None, None))
    assert j.listing_fingerprint("cal") is None  # never stored
    with j.transaction():
        value = j.store_listing_fingerprint("cal")
        j.store_listing_fingerprint("other")
    assert value == fingerprint((f"u{i}.ics", f"{i}:10:{i}") for i in range(4))
    assert j.listing_fingerprint("cal") == value

    changes = {
        "etag": lambda: j.put_item(_row("u1", "u1.ics", (99, 10, 1))),
        "rename": lambda: j.put_item(_row("u1", "renamed.ics", (1, 10, 1))),
        "insert": lambda: j.put_item(_row("new", "new.ics")),
        "delete": lambda: j.delete_item("cal", "u2"),
        # Whatever writes the table (sqlite3 by hand, an older syncd): the triggers see it.
        "sql": lambda: j.db.execute("UPDATE items SET local_etag = '0:0:0' WHERE uid = 'u3'"),
    }
    for what, change in changes.items():
        with j.transaction():
            assert j.store_listing_fingerprint("cal") is not None
            change()
        assert j.listing_fingerprint("cal") is None, what
        assert j.listing_fingerprint("other") is not None, what  # other collections keep theirs
    with j.transaction():
        j.db.execute("UPDATE items SET remote_hash = 'x', synced_at = 1 WHERE uid = 'u0'")
    # A change that no file shows (the remote side) keeps it... once stored again.
    with j.transaction():
        value = j.store_listing_fingerprint("cal")
        j.db.execute("UPDATE items SET remote_hash = 'y' WHERE uid = 'u0'")
    assert j.listing_fingerprint("cal") == value
    j.close()


def test_a_batch_of_new_rows_drops_the_fingerprints_of_its_collections_only(tmp_path):
    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        for coll in ("cal", "work", "other"):
            j.put_item(ItemRow(coll, "x", "x.ics", None, (5, 5, 5), None, None, None))
            j.store_listing_fingerprint(coll)
    with j.transaction():
        j.put_items(
            [
                ItemRow(coll, f"n{i}", f"n{i}.ics", None, (i, 1, i), None, None, None)
                for coll in ("cal", "work")
                for i in range(3)
            ]
        )
    assert j.listing_fingerprint("cal") is None
    assert j.listing_fingerprint("work") is None
    assert j.listing_fingerprint("other") is not None
    j.close()


def test_a_journal_made_with_the_insert_trigger_loses_it_and_keeps_the_rule(tmp_path):
    """Journals an earlier syncd made drop a new row's fingerprint by a per-row trigger;
    opened now, the trigger goes, and a new row still drops it (Journal.put_items)."""
    path = tmp_path / "p.sqlite3"
    j = Journal(path)
    j.db.execute(
        "CREATE TRIGGER items_fingerprint_insert AFTER INSERT ON items BEGIN "
        "DELETE FROM listing_fingerprints WHERE collection = NEW.collection; END"
    )
    j.close()
    j = Journal(path)
    triggers = {
        name for (name,) in j.db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    assert "items_fingerprint_insert" not in triggers
    assert {"items_fingerprint_update", "items_fingerprint_delete"} <= triggers
    with j.transaction():
        j.put_item(_row("u0", "u0.ics"))
        assert j.store_listing_fingerprint("cal") is not None
        j.put_item(_row("u1", "u1.ics"))
    assert j.listing_fingerprint("cal") is None
    j.close()


def test_a_row_whose_file_was_never_written_gets_no_fingerprint(tmp_path):
    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        j.put_item(_row("u0", "u0.ics"))
        j.put_item(ItemRow("cal", "u1", "u1.ics", "r1", None, None, "rh", None))
        assert j.store_listing_fingerprint("cal") is None
    assert j.listing_fingerprint("cal") is None
    j.close()


def _vdir(tmp_path: Path, n: int = 5):
    root = VdirRoot(tmp_path / "vdir")
    (tmp_path / "vdir" / "cal").mkdir(parents=True)
    coll = root.collection("cal")
    for i in range(n):
        (coll.path / f"e{i}.ics").write_bytes(b"BEGIN:VCALENDAR\r\n" * (i + 1))
    return coll


@pytest.mark.parametrize("chunk", [4096, 2], ids=["one stat chunk", "stat in chunks of 2"])
def test_a_directory_fingerprint_is_that_of_what_list_returns(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(look_module, "STAT_CHUNK", chunk)
    coll = _vdir(tmp_path)
    (coll.path / ".hidden.ics").write_text("x")
    (coll.path / "notes.txt").write_text("x")
    (coll.path / "displayname").write_text("x")
    (coll.path / "sub.ics").mkdir()
    listed = coll.list()
    assert len(listed) == 5
    expected = fingerprint((name, etag_to_text(etag)) for name, etag in listed.items())
    look = coll.look()
    assert look is not None and look.fingerprint == expected
    assert look.listing() == {name: etag_to_text(etag) for name, etag in listed.items()}


@pytest.mark.parametrize(
    "oddity",
    ["symlink", "syncd-temp", "newline"],
    ids=["a symlink to check", "a temp file to clean", "a name the listing cannot hold"],
)
def test_a_directory_with_more_to_do_than_stat_has_no_look(tmp_path, oddity):
    coll = _vdir(tmp_path)
    if oddity == "symlink":
        (coll.path / "link.ics").symlink_to(coll.path / "e0.ics")
    elif oddity == "newline":
        (coll.path / "two\nlines.ics").write_text("x")
    else:
        (coll.path / ".syncd-abc.tmp").write_text("half")
    assert coll.look() is None


def test_a_file_gone_between_listing_and_stat_sends_the_pass_down_the_full_comparison(
    tmp_path, monkeypatch
):
    coll = _vdir(tmp_path)
    real_lstat = os.lstat

    def vanishing(name, *, dir_fd=None):
        if name == "e3.ics":
            raise FileNotFoundError(2, "No such file or directory", name)
        return real_lstat(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "lstat", vanishing)
    assert coll.look() is None


def test_an_edit_in_place_moves_the_fingerprint_even_at_the_same_size(tmp_path):
    coll = _vdir(tmp_path)
    before = coll.look()
    path = coll.path / "e2.ics"
    st = path.stat()
    with open(path, "r+b") as f:  # nano's way: same inode, the directory's mtime unmoved
        f.write(b"X")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert path.stat().st_ino == st.st_ino and path.stat().st_size == st.st_size
    after = coll.look()
    assert after is not None and before is not None
    assert after.fingerprint != before.fingerprint
    assert after.listing()["e2.ics"] != before.listing()["e2.ics"]


@pytest.fixture
def fresh_prefetch(monkeypatch):
    """No child left from another test; and fork even though earlier tests left idle
    threads behind (anyio's worker threads): this child takes no lock they could hold."""
    prefetch.stop()
    monkeypatch.setattr(prefetch.threading, "active_count", lambda: 1)
    yield
    prefetch.stop()


def test_the_child_computes_what_this_process_would(tmp_path, fresh_prefetch, monkeypatch):
    coll = _vdir(tmp_path, 20)
    here = coll.look()
    if not prefetch.start([coll.root.path]):
        pytest.fail("no child")
    monkeypatch.setattr(type(coll), "look", lambda self: pytest.fail("looked here"))
    assert prefetch.directory_look(coll) == here
    # Used once: a second pass in this process looks again.
    monkeypatch.undo()
    (coll.path / "e3.ics").write_text("edited")
    again = prefetch.directory_look(coll)
    assert again == coll.look() and again != here


def test_listings_are_read_only_when_asked_for_and_an_unread_child_is_ended(
    tmp_path, fresh_prefetch
):
    coll = _vdir(tmp_path, 30)
    if not prefetch.start([coll.root.path]):
        pytest.fail("no child")
    child = prefetch._child
    look = prefetch.directory_look(coll)
    assert look is not None and look.fingerprint == coll.look().fingerprint
    assert child.listings is None and child.fd is not None  # fingerprints only, so far
    assert look.listing() == coll.look().listing()
    assert child.fd is None  # both messages read, child reaped
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)

    prefetch.stop()
    assert prefetch.start([coll.root.path])
    unread = prefetch._child
    assert prefetch.directory_look(coll) is not None
    prefetch.stop()  # listings never asked for: the child, blocked writing them, is ended
    with pytest.raises(ProcessLookupError):
        os.kill(unread.pid, 0)


def test_a_child_still_looking_is_ended_by_stop(tmp_path, fresh_prefetch, monkeypatch):
    coll = _vdir(tmp_path)
    hold_read, hold_write = os.pipe()

    def never_done(roots):
        os.read(hold_read, 1)  # nobody writes: only a kill ends this child
        return {}

    monkeypatch.setattr(prefetch, "_looks", never_done)
    try:
        assert prefetch.start([coll.root.path])
        pid = prefetch._child.pid
        prefetch.stop()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped, not left behind
    finally:
        os.close(hold_read)
        os.close(hold_write)


def test_a_write_by_this_process_since_the_fork_retires_that_directorys_value(
    tmp_path, fresh_prefetch, monkeypatch
):
    coll = _vdir(tmp_path)
    other = coll.root.create_collection("other")
    (other.path / "x.ics").write_text("x")
    if not prefetch.start([coll.root.path]):
        pytest.fail("no child")
    coll.write("settled.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", None)
    assert prefetch.directory_look(coll) == coll.look()  # looked again, with the new file
    assert "settled.ics" in coll.look().listing()
    monkeypatch.setattr(type(other), "look", lambda self: pytest.fail("looked here"))
    assert prefetch.directory_look(other) is not None  # the child's, still good


def test_a_child_that_fails_leaves_the_work_to_this_process(tmp_path, fresh_prefetch, monkeypatch):
    coll = _vdir(tmp_path)

    def broken(roots):
        raise RuntimeError("child broke")

    monkeypatch.setattr(prefetch, "_looks", broken)
    if not prefetch.start([coll.root.path]):
        pytest.fail("no child")
    assert prefetch.directory_look(coll) == coll.look()


def test_the_child_leaves_symlinked_and_unreadable_collections_to_this_process(
    tmp_path, fresh_prefetch, monkeypatch
):
    coll = _vdir(tmp_path)
    linked_target = tmp_path / "vdir" / ".real"
    linked_target.mkdir()
    (linked_target / "x.ics").write_text("x")
    (tmp_path / "vdir" / "linked").symlink_to(linked_target)
    answered = prefetch._looks([coll.root.path, tmp_path / "missing-root"])
    assert set(answered) == {str(coll.path)}
    assert answered[str(coll.path)] == coll.look()
    if not prefetch.start([coll.root.path]):
        pytest.fail("no child")
    linked = coll.root.collection("linked")
    assert "linked" in coll.root.collections()  # a collection all the same: looked at here
    assert prefetch.directory_look(linked) == linked.look() is not None


def test_no_child_where_another_thread_runs(tmp_path, fresh_prefetch, monkeypatch):
    monkeypatch.setattr(prefetch.threading, "active_count", lambda: 2)
    assert not prefetch.start([tmp_path])


def test_lookups_before_the_listing_is_needed_are_point_queries(tmp_path):
    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        for i in range(5):
            j.put_item(_row(f"u{i}", f"u{i}.ics", (1, 2, i)))
    statements: list[str] = []
    listing = LISTING_QUERY.split(" WHERE")[0]  # the trace shows parameters bound
    j.db.set_trace_callback(statements.append)
    rows = j.items("cal")
    assert "u2" in rows and "nope" not in rows and len(rows) == 5
    assert rows["u3"].remote_id == "r-u3" and rows.get("nope") is None
    del rows["u0"]
    rows["new"] = _row("new", "new.ics", (9, 9, 9))
    assert "u0" not in rows and "new" in rows
    assert not any(listing in s for s in statements)
    # The listing, once read, reflects what this pass changed before it was read.
    assert sorted(rows) == ["new", "u1", "u2", "u3", "u4"] and len(rows) == 5
    assert rows.by_filename()["new.ics"] == ("new", "9:9:9")
    assert any(listing in s for s in statements)
    with pytest.raises(KeyError):
        del rows["u0"]
    j.close()


def test_a_kept_fingerprint_of_another_format_is_made_anew(tmp_path):
    j = Journal(tmp_path / "p.sqlite3")
    with j.transaction():
        j.put_item(_row("u0", "u0.ics"))
        j.db.execute(
            "INSERT INTO listing_fingerprints (collection, value) VALUES ('cal', 'old:1234')"
        )
    assert j.listing_fingerprint("cal") is None
    with j.transaction():
        assert j.store_listing_fingerprint("cal") == fingerprint([("u0.ics", "1:2:3")])
    assert j.listing_fingerprint("cal") == fingerprint([("u0.ics", "1:2:3")])
    j.close()


def test_the_child_starts_before_the_configuration_is_read_once_its_roots_are_known(
    tmp_path, fresh_prefetch, monkeypatch
):
    """``start_early`` uses the roots a run remembered for this very configuration file;
    anything else (a changed file, an unknown pair, a damaged record) waits for the
    configuration, and a wrong record would only cost speed (looks are asked by path)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    coll = _vdir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text("pairs: {}\n")
    assert not prefetch.start_early(config, [])  # nothing remembered yet
    prefetch.remember_roots(config, {"cal": coll.root.path})
    assert not prefetch.start_early(config, ["other"])  # a pair it does not know
    assert prefetch.start_early(config, ["cal"]) and prefetch.started()
    assert prefetch.directory_look(coll) == coll.look()
    prefetch.stop()

    config.write_text("pairs: {changed: true}\n")  # edited since: its roots may differ
    assert not prefetch.start_early(config, [])
    prefetch.remember_roots(config, {"cal": coll.root.path})
    assert prefetch.start_early(config, [])
    prefetch.stop()

    (tmp_path / "cache" / "syncd" / "roots.json").write_text("{not json")
    assert not prefetch.start_early(config, [])
    prefetch.remember_roots(config, {"cal": coll.root.path})  # and mends it
    assert prefetch.start_early(config, [])


def test_remembering_roots_where_the_cache_cannot_be_written_is_no_error(tmp_path, monkeypatch):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    config = tmp_path / "config.yaml"
    config.write_text("pairs: {}\n")
    prefetch.remember_roots(config, {"cal": tmp_path})
    assert not prefetch.start_early(config, [])


def test_the_roots_of_only_so_many_configuration_files_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    configs = []
    for i in range(prefetch.REMEMBERED_CONFIGS + 3):
        config = tmp_path / f"config{i}.yaml"
        config.write_text(f"# {i}\n")
        prefetch.remember_roots(config, {"cal": tmp_path / f"vdir{i}"})
        configs.append(str(config))
    import json

    kept = json.loads((tmp_path / "cache" / "syncd" / "roots.json").read_text())
    assert list(kept) == configs[-prefetch.REMEMBERED_CONFIGS :]  # the newest


# look() in a fresh, single-threaded interpreter (the fingerprint child is one: a test
# process may have threads, and the helper is forked only without any), with the split
# forced at two items; prints the look and how many helpers were forked.
_SPLIT_LOOK = """
import os, pickle, sys
from syncd.vdir import look as L
forks = []
os.register_at_fork(after_in_parent=lambda: forks.append(1))
L.SPLIT_MIN = 2
got = L.look(sys.argv[1])
sys.stdout.buffer.write(pickle.dumps((got and (got.fingerprint, got.data), len(forks))))
"""


@pytest.mark.parametrize(
    "oddity",
    [None, "dir", "symlink", "empty"],
    ids=[
        "plain",
        "a directory named .ics in the helper's half",
        "a symlink in the helper's half",
        "a zero-length file",
    ],
)
def test_a_look_split_with_a_helper_process_is_the_look_of_one_process(tmp_path, oddity):
    import pickle
    import subprocess
    import sys

    coll = _vdir(tmp_path, 9)
    if oddity == "dir":
        (coll.path / "z-sub.ics").mkdir()
    elif oddity == "symlink":
        (coll.path / "z-link.ics").symlink_to(coll.path / "e0.ics")
    elif oddity == "empty":
        (coll.path / "e8.ics").write_bytes(b"")
    alone = look_module.look(coll.path)  # below SPLIT_MIN: one process
    out = subprocess.run(
        [sys.executable, "-c", _SPLIT_LOOK, str(coll.path)],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    ).stdout
    split, helpers = pickle.loads(out)
    assert helpers == 1  # the split did happen
    assert split == (alone and (alone.fingerprint, alone.data))
    assert (alone is None) == (oddity == "symlink")


def test_a_helper_that_fails_means_no_look_not_a_wrong_one(tmp_path, monkeypatch):
    coll = _vdir(tmp_path, 9)
    monkeypatch.setattr(look_module, "SPLIT_MIN", 2)
    monkeypatch.setattr(look_module.threading, "active_count", lambda: 1)
    monkeypatch.setattr(look_module, "_in_helper", lambda fd, items: lambda: None)
    assert look_module.look(coll.path) is None
