"""A big pass commits its files and journal rows in parts (engine.COMMIT_EVERY), each
part's files durable and in place before its rows: a pass that dies half way keeps
what it committed, leaves no row without its file, and the next pass finishes the rest
without writing any file twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.sync import engine
from syncd.vdir.storage import etag_of
from tests.sync.test_engine import event


def journal_rows(pair) -> dict[str, tuple[str, str]]:
    db = sqlite3.connect(pair.tmp / "state" / "cal.sqlite3")
    try:
        return {
            r[0]: (r[1], r[2]) for r in db.execute("SELECT uid, filename, local_etag FROM items")
        }
    finally:
        db.close()


def at_the_nth_action(monkeypatch: pytest.MonkeyPatch, n: int, what) -> Callable[[], None]:
    """Run ``what()`` just before the pass applies its ``n``-th action (raise in it to
    kill the pass there); returns the undo."""
    real = engine.PairSync._apply_one
    calls = 0

    def applying(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n:
            what()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(engine.PairSync, "_apply_one", applying)
    return lambda: monkeypatch.setattr(engine.PairSync, "_apply_one", real)


def killed() -> None:
    raise RuntimeError("killed")


def test_a_pass_that_dies_half_way_keeps_whole_parts_and_the_next_finishes(
    pair, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(engine, "COMMIT_EVERY", 10)
    for i in range(35):
        pair.server.put_event(event(f"ev{i:02d}", f"Event {i}"))
    undo = at_the_nth_action(monkeypatch, 25, killed)
    with pytest.raises(RuntimeError):
        pair.sync()
    rows = journal_rows(pair)
    on_disk = {p.name for p in (pair.root / "personal").iterdir() if p.suffix == ".ics"}
    assert len(rows) == 20  # two whole parts; the third was never put in place
    assert on_disk == {filename for filename, _ in rows.values()}
    for filename, etag in rows.values():
        st = (pair.root / "personal" / filename).stat()
        assert ":".join(map(str, etag_of(st))) == etag
    assert not [p for p in (pair.root / "personal").iterdir() if p.name.startswith(".syncd-")]

    undo()
    before = pair.mtimes()
    result = pair.sync()
    assert result.ok and sum(c.conflicts for c in result.collections) == 0, result
    assert len(pair.files()) == 35 and len(journal_rows(pair)) == 35
    after = pair.mtimes()
    assert all(after[path] == mtime for path, mtime in before.items())  # none written twice
    again = pair.sync()
    assert again.ok and again.changes == 0


def _many_events(pair, monkeypatch, n: int = 35) -> None:
    monkeypatch.setattr(engine, "COMMIT_EVERY", 10)
    for i in range(n):
        pair.server.put_event(event(f"ev{i:02d}", f"Event {i}"))


def test_each_part_is_put_in_place_on_the_commit_thread_before_its_rows(
    pair, monkeypatch: pytest.MonkeyPatch
):
    """The parts before the last are flushed and renamed on the committer's thread
    while the pass writes on; still, when a row reaches the journal its file is in
    place with the row's etag."""
    import threading

    from syncd.journal import Journal
    from syncd.vdir import storage

    _many_events(pair, monkeypatch)
    renamed_on: list[str] = []
    real_rename, real_put = storage._rename_new, Journal.put_items

    def rename(src: str, dst: str):
        renamed_on.append(threading.current_thread().name)
        return real_rename(src, dst)

    def put_items(self, rows):
        rows = list(rows)
        for row in rows:
            st = (pair.root / "personal" / row.filename).stat()
            assert etag_of(st) == row.local_etag, row.filename
        return real_put(self, rows)

    monkeypatch.setattr(storage, "_rename_new", rename)
    monkeypatch.setattr(Journal, "put_items", put_items)
    result = pair.sync()
    assert result.ok, result.summary()
    assert len(renamed_on) == 35
    on_thread = [name for name in renamed_on if name.startswith("syncd-commit")]
    assert len(on_thread) == 30, renamed_on  # three parts of ten; the last five inline
    assert len(journal_rows(pair)) == 35
    assert not any(t.name.startswith("syncd-commit") for t in threading.enumerate())


def test_a_save_under_a_part_committed_on_the_thread_is_kept_and_synced_next_pass(
    pair, monkeypatch: pytest.MonkeyPatch
):
    from syncd.vdir.storage import StagedBatch

    _many_events(pair, monkeypatch)
    real_run = StagedBatch.run
    saved: list[str] = []

    def user_saves_first(self):
        if not saved:  # the first part: the user saves one of its files first
            item = self.staged[3]
            mine = Path(item.tmp).read_bytes().replace(b"SUMMARY:Event 3", b"SUMMARY:Mine")
            (self.path / item.filename).write_bytes(mine)
            saved.append(item.filename)
        return real_run(self)

    monkeypatch.setattr(StagedBatch, "run", user_saves_first)
    first = pair.sync()
    assert not first.ok and "changed on disk" in str(first.collections)
    (name,) = saved
    assert b"SUMMARY:Mine" in (pair.root / "personal" / name).read_bytes()
    rows = journal_rows(pair)
    assert len(rows) == 34 and name not in {f for f, _ in rows.values()}
    monkeypatch.setattr(StagedBatch, "run", real_run)
    second = pair.sync()
    assert second.ok and second.collections[0].conflicts == 1, second.summary()
    assert b"SUMMARY:Event 3" in (pair.root / "personal" / name).read_bytes()  # remote wins
    assert len(pair.files()) == 35 and len(journal_rows(pair)) == 35
    assert pair.sync().changes == 0


def test_a_disk_error_in_a_part_on_the_thread_fails_the_pass_and_loses_nothing(
    pair, monkeypatch: pytest.MonkeyPatch
):
    import errno

    from syncd.vdir import storage

    _many_events(pair, monkeypatch)
    real_flush = storage._flush_to_disk
    flushes = 0

    def full_on_the_second(directory, files):
        nonlocal flushes
        flushes += 1
        if flushes == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_flush(directory, files)

    monkeypatch.setattr(storage, "_flush_to_disk", full_on_the_second)
    with pytest.raises(OSError, match="No space"):
        pair.sync()
    rows = journal_rows(pair)
    assert len(rows) == 10  # the first part only: the second was never put in place
    names = [p.name for p in (pair.root / "personal").iterdir()]
    assert not [n for n in names if n.startswith(".syncd-")], names  # no temp file left
    for filename, etag in rows.values():
        st = (pair.root / "personal" / filename).stat()
        assert ":".join(map(str, etag_of(st))) == etag
    monkeypatch.setattr(storage, "_flush_to_disk", real_flush)
    result = pair.sync()
    assert result.ok, result.summary()
    assert len(pair.files()) == 35 and len(journal_rows(pair)) == 35
    assert pair.sync().changes == 0
