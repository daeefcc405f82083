"""Local storage: atomic, checked writes; safe names; a missing root is an error."""

from __future__ import annotations

import os

import pytest

from syncd.vdir import storage
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


def test_a_write_the_kernel_takes_in_parts_is_written_whole(tmp_path, monkeypatch):
    """``os.write`` may take less than it is given (a signal, a nearly full disk): the
    rest follows, for a batch's files and a lone one alike."""
    real_write = os.write
    calls: list[int] = []

    def write_in_parts(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:100]))

    monkeypatch.setattr(storage.os, "write", write_in_parts)
    coll = VdirRoot(tmp_path).create_collection("cal")
    data = bytes(range(256)) * 3
    coll.write("lone.ics", data, None)
    coll.begin_batch()
    coll.write("batched.ics", data, None)
    assert coll.commit_batch() == {}
    assert (tmp_path / "cal" / "lone.ics").read_bytes() == data
    assert (tmp_path / "cal" / "batched.ics").read_bytes() == data
    assert calls[:8] == [768, 668, 568, 468, 368, 268, 168, 68]


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


# Batched writes: one filesystem flush per batch instead of one fsync per file.


def _collection(tmp_path):
    (tmp_path / "cal").mkdir()
    return VdirRoot(tmp_path).collection("cal")


def test_batched_writes_appear_only_after_the_flush(tmp_path, monkeypatch):
    coll = _collection(tmp_path)
    flushed_when: list[list[str]] = []

    def flush(directory, files):
        # Durability before visibility: nothing is renamed into place before the flush.
        flushed_when.append(sorted(p.name for p in directory.glob("*.ics")))
        assert files and all(os.path.exists(f) for f in files)

    monkeypatch.setattr(storage, "_flush_to_disk", flush)
    coll.begin_batch()
    etags = {f"e{i}.ics": coll.write(f"e{i}.ics", b"BEGIN:VCALENDAR\r\n", None) for i in range(5)}
    assert coll.list() == {}
    assert coll.commit_batch() == {}
    assert flushed_when == [[]]
    assert coll.list() == etags  # the etag returned at staging is the final file's


def test_batch_does_not_overwrite_a_file_changed_meanwhile(tmp_path):
    coll = _collection(tmp_path)
    etag = coll.write("a.ics", b"old", None)
    coll.begin_batch()
    coll.write("a.ics", b"ours", etag)
    coll.write("b.ics", b"new", None)
    (coll.path / "a.ics").write_bytes(b"the user's edit")
    failed = coll.commit_batch()
    assert list(failed) == ["a.ics"] and "changed on disk" in failed["a.ics"]
    assert (coll.path / "a.ics").read_bytes() == b"the user's edit"
    assert (coll.path / "b.ics").read_bytes() == b"new"
    assert not list(coll.path.glob(".syncd-*"))


@pytest.fixture(params=["no-clobber rename", "check, then rename"])
def rename_path(request, monkeypatch):
    """Both ways a new file is put in place: renameat2(RENAME_NOREPLACE) where the
    kernel and filesystem have it, else a check and a rename."""
    if request.param == "no-clobber rename":
        if storage._renameat2() is None:
            pytest.skip("no renameat2 here")
    else:
        monkeypatch.setattr(storage, "_rename_new", lambda src, dst: None)
    return request.param


def test_in_a_batch_the_commit_refuses_what_the_write_no_longer_checks(tmp_path, rename_path):
    # A batched write checks its target only at commit_batch: a file already there, or
    # a link in its place, is left as it is and reported, and no temp file is left.
    coll = _collection(tmp_path)
    (coll.path / "there.ics").write_bytes(b"the user's")
    os.symlink(tmp_path / "elsewhere.ics", coll.path / "link.ics")
    coll.begin_batch()
    for name in ("there.ics", "link.ics", "new.ics"):
        coll.write(name, b"ours", None)
    failed = coll.commit_batch()
    assert sorted(failed) == ["link.ics", "there.ics"]
    assert (coll.path / "there.ics").read_bytes() == b"the user's"
    assert (coll.path / "link.ics").is_symlink() and not (tmp_path / "elsewhere.ics").exists()
    assert (coll.path / "new.ics").read_bytes() == b"ours"
    assert not list(coll.path.glob(".syncd-*"))


def test_aborted_batch_leaves_nothing_behind(tmp_path):
    coll = _collection(tmp_path)
    coll.begin_batch()
    coll.write("a.ics", b"x", None)
    coll.abort_batch()
    assert os.listdir(coll.path) == []


def test_flush_falls_back_to_one_fsync_per_file_without_syncfs(tmp_path, monkeypatch):
    coll = _collection(tmp_path)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage, "_syncfs", lambda: None)
    monkeypatch.setattr(storage.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    coll.begin_batch()
    for i in range(3):
        coll.write(f"e{i}.ics", b"x", None)
    assert synced == []  # staging does not fsync
    coll.commit_batch()
    assert len(synced) == 3 + 1  # each file, then the directory once


def test_unbatched_write_is_fsynced_on_its_own(tmp_path, monkeypatch):
    coll = _collection(tmp_path)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    coll.write("a.ics", b"x", None)
    assert len(synced) == 1 and (coll.path / "a.ics").read_bytes() == b"x"


def test_stale_temp_files_of_a_killed_pass_are_cleaned_up(tmp_path):
    coll = _collection(tmp_path)
    stale, fresh = coll.path / ".syncd-aaaa.tmp", coll.path / ".syncd-bbbb.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = os.stat(stale).st_mtime - storage.STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    coll.list()
    assert not stale.exists() and fresh.exists()


def test_write_log_forgets_expired_entries_and_keeps_fresh_ones(monkeypatch, tmp_path):
    log = storage.WriteLog()
    clock = [1000.0]
    monkeypatch.setattr(storage.time, "monotonic", lambda: clock[0])
    log.record(tmp_path / "old", None)
    log.record(tmp_path / "again", None)
    clock[0] += log.ttl - 1
    log.record(tmp_path / "again", None)  # refreshed: moves behind the expiring ones
    clock[0] += 2
    log.record(tmp_path / "new", None)
    assert set(log._entries) == {str(tmp_path / "again"), str(tmp_path / "new")}
    assert log.is_echo(tmp_path / "again") and not log.is_echo(tmp_path / "old")


def test_small_batches_fsync_each_file_and_big_ones_sync_the_filesystem(tmp_path, monkeypatch):
    """syncfs also flushes everything else dirty on the disk: worth it only for many files."""
    coll = _collection(tmp_path)
    calls: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage, "_syncfs", lambda: lambda fd: calls.append("syncfs") or 0)
    monkeypatch.setattr(storage.os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    coll.begin_batch()
    for i in range(storage.SYNCFS_MIN_FILES - 1):
        coll.write(f"s{i}.ics", b"x", None)
    coll.commit_batch()
    assert calls == ["fsync"] * storage.SYNCFS_MIN_FILES  # each file, then the directory
    calls.clear()
    coll.begin_batch()
    for i in range(storage.SYNCFS_MIN_FILES):
        coll.write(f"b{i}.ics", b"x", None)
    coll.commit_batch()
    assert calls == ["syncfs", "fsync"]  # one filesystem flush, then the directory


def test_a_new_file_never_replaces_one_saved_just_before_the_rename(tmp_path, monkeypatch):
    # The user's editor saves the file after syncd found nothing there, the instant
    # before the rename.  A check followed by a rename would overwrite it; the
    # no-clobber rename cannot, whichever way the file is written.
    real = storage._renameat2()
    if real is None:
        pytest.skip("no renameat2 here")
    coll = _collection(tmp_path)

    def users_save_then(rename):
        def call(*args):
            for target in (args[1], args[3]) if len(args) == 5 else (args[1],):
                name = os.fsdecode(target)
                if name.endswith("/a.ics") and not os.path.exists(name):
                    with open(name, "wb") as f:
                        f.write(b"the user's, saved just now")
            return rename(*args)

        return call

    monkeypatch.setattr(storage, "_renameat2", lambda: users_save_then(real))
    monkeypatch.setattr(storage.os, "replace", users_save_then(os.replace))
    with pytest.raises(ChangedOnDisk, match="already exists"):
        coll.write("a.ics", b"ours", None)
    assert (coll.path / "a.ics").read_bytes() == b"the user's, saved just now"
    os.unlink(coll.path / "a.ics")
    coll.begin_batch()
    coll.write("a.ics", b"ours", None)
    coll.write("b.ics", b"ours", None)
    assert list(coll.commit_batch()) == ["a.ics"]
    assert (coll.path / "a.ics").read_bytes() == b"the user's, saved just now"
    assert (coll.path / "b.ics").read_bytes() == b"ours"
    assert not list(coll.path.glob(".syncd-*"))


def test_a_batch_is_recorded_as_ours_before_it_is_renamed(tmp_path, monkeypatch, rename_path):
    # The watcher checks an event against the write log on its own thread as soon as
    # the rename happens: the entry must already be there.
    coll = _collection(tmp_path)
    coll.begin_batch()
    coll.write("a.ics", b"ours", None)
    seen: list[bool] = []
    real_replace, real_rename_new = storage.os.replace, storage._rename_new

    def note(src, dst):
        seen.append(str(dst) in own_writes._entries)

    monkeypatch.setattr(storage.os, "replace", lambda s, d: note(s, d) or real_replace(s, d))
    monkeypatch.setattr(storage, "_rename_new", lambda s, d: note(s, d) or real_rename_new(s, d))
    before = own_writes.writes_in.get(str(coll.path), 0)
    assert coll.commit_batch() == {}
    assert seen and all(seen)
    assert own_writes.is_echo(coll.path / "a.ics")
    assert own_writes.writes_in[str(coll.path)] == before + 1


def test_a_new_file_never_replaces_one_that_appeared_and_says_so(tmp_path, rename_path):
    coll = _collection(tmp_path)
    (coll.path / "a.ics").write_bytes(b"the user's")
    with pytest.raises(ChangedOnDisk, match="already exists"):
        coll.write("a.ics", b"ours", None)
    assert (coll.path / "a.ics").read_bytes() == b"the user's"
    etag = coll.etag("a.ics")
    os.unlink(coll.path / "a.ics")
    with pytest.raises(ChangedOnDisk, match="disappeared"):
        coll.write("a.ics", b"ours", etag)
    assert not (coll.path / "a.ics").exists()


# A whole new collection: written beside its directory, swapped in at once (begin_whole).


def _whole_dirs(root) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(storage.WHOLE_PREFIX))


def test_a_whole_collection_appears_at_once_after_its_flush(tmp_path, monkeypatch):
    coll = _collection(tmp_path)
    coll.write_meta("displayname", "Personal")
    events: list[str] = []
    real_flush, real_exchange = storage._flush_to_disk, storage._exchange

    def flush(directory, files):
        assert not list(coll.path.glob("*.ics"))  # nothing in place before it is durable
        events.append(f"flush {len(files)}")
        real_flush(directory, files)

    def exchange(a, b):
        events.append("swap")
        return real_exchange(a, b)

    monkeypatch.setattr(storage, "_flush_to_disk", flush)
    monkeypatch.setattr(storage, "_exchange", exchange)
    assert coll.begin_whole()
    (whole,) = _whole_dirs(tmp_path)
    etags = {f"e{i}.ics": coll.write(f"e{i}.ics", b"BEGIN:VCALENDAR\r\n", None) for i in range(3)}
    assert coll.detach_batch().run() == {}  # a batch of it is flushed, not renamed
    coll.begin_batch()
    etags["e9.ics"] = coll.write("e9.ics", b"BEGIN:VCALENDAR\r\n", None)
    assert coll.list() == {}
    assert coll.commit_whole() == ({}, [])
    assert events == ["flush 3", "flush 1", "swap"]
    assert coll.list() == etags  # the etags given at writing are the files' in place
    assert coll.read_meta("displayname").strip() == "Personal"  # moved into the new directory
    assert _whole_dirs(tmp_path) == [] and VdirRoot(tmp_path).collections() == ["cal"]
    for name in etags:
        assert own_writes.is_echo(coll.path / name)


def test_a_whole_collection_keeps_its_directorys_permissions(tmp_path):
    coll = _collection(tmp_path)
    os.chmod(coll.path, 0o750)  # shared with the group, not the world: it stays so
    assert coll.begin_whole()
    coll.write("a.ics", b"x", None)
    coll.commit_whole()
    assert coll.path.stat().st_mode & 0o777 == 0o750
    assert coll.list().keys() == {"a.ics"}


def test_a_whole_collection_is_refused_where_it_cannot_be_swapped_in(tmp_path, monkeypatch):
    coll = _collection(tmp_path)
    coll.write("there.ics", b"x", None)
    assert not coll.begin_whole()  # it holds an item
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    assert not VdirRoot(tmp_path).collection("linked").begin_whole()  # a link
    monkeypatch.setattr(storage, "_renameat2", lambda: None)
    assert not VdirRoot(tmp_path).collection("real").begin_whole()  # no renameat2
    assert _whole_dirs(tmp_path) == []


def test_two_items_of_a_whole_collection_with_one_name_keep_the_first(tmp_path):
    coll = _collection(tmp_path)
    assert coll.begin_whole()
    coll.write("a.ics", b"first", None)
    with pytest.raises(ChangedOnDisk, match="same file name"):
        coll.write("a.ics", b"second", None)
    with pytest.raises(ValueError):
        coll.write("b.ics", b"x", (1, 2, 3))  # only new files
    coll.commit_whole()
    assert (coll.path / "a.ics").read_bytes() == b"first"


def test_an_aborted_whole_collection_leaves_nothing(tmp_path):
    coll = _collection(tmp_path)
    coll.write_meta("color", "#ff0000")
    assert coll.begin_whole()
    coll.write("a.ics", b"x", None)
    coll.abort_batch()
    assert _whole_dirs(tmp_path) == [] and coll.list() == {}
    assert coll.read_meta("color").strip() == "#ff0000"


def test_an_item_saved_during_a_whole_download_turns_it_into_renames(tmp_path):
    """Seen before the swap: each file is renamed into place instead, never over one."""
    coll = _collection(tmp_path)
    assert coll.begin_whole()
    coll.write("a.ics", b"server a", None)
    coll.write("b.ics", b"server b", None)
    (coll.path / "b.ics").write_bytes(b"mine")  # khal saves one meanwhile
    (coll.path / "c.ics").write_bytes(b"mine too")
    failed, kept = coll.commit_whole()
    assert set(failed) == {"b.ics"} and kept == []
    assert (coll.path / "a.ics").read_bytes() == b"server a"
    assert (coll.path / "b.ics").read_bytes() == b"mine"
    assert (coll.path / "c.ics").read_bytes() == b"mine too"
    assert _whole_dirs(tmp_path) == []


def test_a_file_saved_just_before_the_swap_is_moved_in_or_kept_and_said(tmp_path, monkeypatch):
    """Past the check, a file saved in the old directory goes into the new one; one with
    the name of a server file is kept beside it, never deleted, and reported."""
    coll = _collection(tmp_path)
    real_exchange = storage._exchange

    def save_then_swap(a, b):
        (coll.path / "notes.txt").write_bytes(b"notes")
        (coll.path / "a.ics").write_bytes(b"mine")
        return real_exchange(a, b)

    monkeypatch.setattr(storage, "_exchange", save_then_swap)
    assert coll.begin_whole()
    coll.write("a.ics", b"server a", None)
    failed, kept = coll.commit_whole()
    assert failed == {}
    assert (coll.path / "a.ics").read_bytes() == b"server a"
    assert (coll.path / "notes.txt").read_bytes() == b"notes"
    (note,) = kept
    (keep,) = [p for p in tmp_path.iterdir() if p.name.startswith(storage.KEPT_PREFIX)]
    assert str(keep / "a.ics") in note and (keep / "a.ics").read_bytes() == b"mine"
    old = os.stat(keep).st_mtime - storage.STALE_TEMP_SECONDS - 10
    os.utime(keep, (old, old))
    assert VdirRoot(tmp_path).collections() == ["cal"]  # not a collection, not swept
    assert (keep / "a.ics").exists()
    assert _whole_dirs(tmp_path) == []


def test_the_swap_falls_back_to_renames_where_the_filesystem_cannot(tmp_path, monkeypatch):
    coll = _collection(tmp_path)
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    assert coll.begin_whole()
    etag = coll.write("a.ics", b"server a", None)
    assert coll.commit_whole() == ({}, [])
    assert coll.list() == {"a.ics": etag}
    assert _whole_dirs(tmp_path) == []


def test_a_whole_collection_a_killed_pass_left_is_swept_when_stale(tmp_path):
    stale = tmp_path / f"{storage.WHOLE_PREFIX}aaaa{storage.TEMP_SUFFIX}"
    fresh = tmp_path / f"{storage.WHOLE_PREFIX}bbbb{storage.TEMP_SUFFIX}"
    for d in (stale, fresh):
        d.mkdir()
        (d / "e.ics").write_bytes(b"x")
    old = os.stat(stale).st_mtime - storage.STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    (tmp_path / "cal").mkdir()
    assert VdirRoot(tmp_path).collections() == ["cal"]
    assert not stale.exists() and (fresh / "e.ics").exists()


def test_a_file_over_the_item_limit_is_refused_and_says_why(tmp_path):
    coll = VdirRoot(tmp_path).create_collection("cal")
    coll.max_item_bytes = 100
    (coll.path / "big.ics").write_bytes(b"x" * 101)
    (coll.path / "fits.ics").write_bytes(b"y" * 100)
    with pytest.raises(storage.ItemTooLarge, match=r"big\.ics: 101 bytes is over the 100-byte"):
        coll.read("big.ics")
    assert coll.read("fits.ics") == b"y" * 100


def test_a_file_that_grows_after_its_stat_is_read_whole_or_refused(tmp_path, monkeypatch):
    """The stat says one size, the file holds more by the time it is read: it is read
    to its end (never cut at the size the stat gave), or refused past the limit."""
    coll = VdirRoot(tmp_path).create_collection("cal")
    coll.max_item_bytes = 100
    (coll.path / "grew.ics").write_bytes(b"a" * 80)
    (coll.path / "past.ics").write_bytes(b"b" * 150)
    real_fstat = os.fstat

    def stale_fstat(fd):  # the size before the file grew
        st = real_fstat(fd)
        return os.stat_result((*st[:6], 10, *st[7:]))

    monkeypatch.setattr(storage.os, "fstat", stale_fstat)
    assert coll.read("grew.ics") == b"a" * 80
    with pytest.raises(storage.ItemTooLarge, match="past.ics"):
        coll.read("past.ics")


def test_reading_a_small_file_does_not_allocate_the_item_limit(tmp_path):
    """A read of the limit (20 MB) cut down to a 1 kB file took twice as long, and kept
    a page mapped apart for each file held (Session 28)."""
    import tracemalloc

    coll = VdirRoot(tmp_path).create_collection("cal")
    (coll.path / "small.ics").write_bytes(b"z" * 1200)
    assert coll.max_item_bytes >= 1 << 20
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        data = coll.read("small.ics")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data == b"z" * 1200
    assert peak < 256 * 1024
