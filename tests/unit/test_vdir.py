"""Local storage: atomic, checked writes; safe names; a missing root is an error."""

from __future__ import annotations

import os

import pytest

from syncd.vdir.names import collection_dirname, item_filename
from syncd.vdir.storage import BadName, ChangedOnDisk, VdirRoot, VdirUnavailable, own_writes


@pytest.mark.parametrize(
    "uid", ["../../etc/passwd", "a/b", "nul\0x", "u" * 1000, "ünïcödé", ".hidden", "x.", ""]
)
def test_any_uid_gives_a_safe_stable_name(uid):
    name = item_filename(uid)
    assert name == item_filename(uid)
    assert "/" not in name and "\0" not in name and not name.startswith(".")
    assert name.endswith(".ics") and len(name.encode()) <= 255 and name.isascii()


def test_plain_uids_stay_readable_and_case_matters():
    assert item_filename("abc-123@example.com") == "abc-123@example.com.ics"
    assert item_filename("ABC") != item_filename("abc")


def test_collection_names_are_unique_and_safe():
    taken = {"work"}
    name = collection_dirname("work", taken)
    assert name != "work" and name.startswith("work")
    assert "/" not in collection_dirname("../..", set())


def test_missing_root_is_unavailable_not_empty(tmp_path):
    with pytest.raises(VdirUnavailable):
        VdirRoot(tmp_path / "unmounted").check()


def test_write_is_atomic_and_refuses_to_overwrite_a_changed_file(tmp_path):
    root = VdirRoot(tmp_path)
    coll = root.create_collection("c")
    etag = coll.write("a.ics", b"one", None)
    assert coll.read("a.ics") == b"one"
    with pytest.raises(ChangedOnDisk):
        coll.write("a.ics", b"again", None)  # exists: not ours to overwrite
    (coll.path / "a.ics").write_bytes(b"edited by the user")
    with pytest.raises(ChangedOnDisk):
        coll.write("a.ics", b"two", etag)
    assert coll.read("a.ics") == b"edited by the user"
    with pytest.raises(ChangedOnDisk):
        coll.delete("a.ics", etag)
    assert [p.name for p in coll.path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_names_that_leave_the_directory_are_refused(tmp_path):
    coll = VdirRoot(tmp_path).create_collection("c")
    for bad in ("../x.ics", "a/b.ics", ".."):
        with pytest.raises(BadName):
            coll.write(bad, b"x", None)


def test_our_writes_are_recognised_until_someone_else_changes_the_file(tmp_path):
    coll = VdirRoot(tmp_path).create_collection("c")
    coll.write("a.ics", b"ours", None)
    assert own_writes.is_echo(coll.path / "a.ics")
    (coll.path / "a.ics").write_bytes(b"theirs, longer")
    assert not own_writes.is_echo(coll.path / "a.ics")
    etag = coll.etag("a.ics")
    coll.delete("a.ics", etag)
    assert own_writes.is_echo(coll.path / "a.ics")


def test_listing_skips_temp_files_and_reports_outward_links(tmp_path):
    coll = (
        VdirRoot(tmp_path / "root").create_collection("c")
        if (tmp_path / "root").mkdir() is None
        else None
    )
    (coll.path / ".syncd-x.tmp").write_bytes(b"x")
    (coll.path / "notes.txt").write_bytes(b"x")
    (coll.path / "ok.ics").write_bytes(b"x")
    outside = tmp_path / "outside.ics"
    outside.write_bytes(b"x")
    os.symlink(outside, coll.path / "link.ics")
    assert list(coll.list()) == ["ok.ics"]
    assert any("link.ics" in s for s in coll.skipped)
