"""A big first download into an empty collection directory is written whole in a
directory beside it and swapped in at once (engine.WHOLE_MIN, VdirCollection.begin_whole):
its files are durable before the swap, its journal rows are recorded only after it, and
a pass that dies before it leaves the directory as it was and no row."""

from __future__ import annotations

import random

import pytest

from syncd.journal import Journal
from syncd.sync import engine, prepare
from syncd.sync.workers import ENV_WORKERS
from syncd.vdir import storage
from syncd.vdir.storage import etag_of
from tests.sync.test_commit_parts import at_the_nth_action, journal_rows, killed
from tests.sync.test_engine import event


@pytest.fixture
def many(pair, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine, "WHOLE_MIN", 10)
    monkeypatch.setattr(engine, "COMMIT_EVERY", 10)
    for i in range(35):
        pair.server.put_event(event(f"ev{i:02d}", f"Event {i}"))
    return pair


def _dot_entries(pair) -> list[str]:
    return sorted(
        p.name
        for d in (pair.root, pair.root / "personal")
        if d.exists()
        for p in d.iterdir()
        if p.name.startswith(".syncd-")
    )


def test_a_first_download_is_swapped_in_whole_and_recorded_after(many, monkeypatch):
    real_exchange, real_put, real_rename = storage._exchange, Journal.add_items, storage._rename_new
    swapped: list[int] = []
    renamed: list[str] = []

    def exchange(a, b):
        assert journal_rows(many) == {}  # no row before the files are in place
        swapped.append(len(list((many.root / "personal").glob("*.ics"))))
        return real_exchange(a, b)

    def put_items(self, rows):
        rows = list(rows)
        assert swapped, "a row was recorded before the swap"
        for row in rows:
            st = (many.root / "personal" / row.filename).stat()
            assert etag_of(st) == row.local_etag, row.filename
        return real_put(self, rows)

    def rename(src, dst):
        renamed.append(dst)
        return real_rename(src, dst)

    monkeypatch.setattr(storage, "_exchange", exchange)
    monkeypatch.setattr(Journal, "add_items", put_items)
    monkeypatch.setattr(storage, "_rename_new", rename)
    result = many.sync()
    assert result.ok, result.summary()
    assert swapped == [0]  # one swap, into a directory without items
    assert not [d for d in renamed if d.endswith(".ics")]  # no file renamed on its own
    assert len(many.files()) == 35 and len(journal_rows(many)) == 35
    assert _dot_entries(many) == []
    monkeypatch.setattr(Journal, "add_items", real_put)
    again = many.sync()
    assert again.ok and again.changes == 0


def test_a_whole_downloads_rows_are_put_in_uid_order_and_checkpointed_beside(
    pair, monkeypatch: pytest.MonkeyPatch
):
    """Every row of a whole download is new: put by UID, they fill the journal's indexes
    from one end, and their commits leave the checkpoints to a thread beside (Session
    25 of contrib/bench/README.md)."""
    monkeypatch.setattr(engine, "WHOLE_MIN", 10)
    monkeypatch.setattr(engine, "COMMIT_EVERY", 10)
    # Conversion workers, which make the pass write in the order the server sent.
    monkeypatch.setattr(prepare, "MIN_OBJECTS", 10)
    monkeypatch.setenv(ENV_WORKERS, "2")
    numbers = list(range(40))
    random.Random(3).shuffle(numbers)
    for n in numbers:  # the server keeps and sends them in this order
        pair.server.put_event(event(f"uid-{n:02d}", f"Event {n}"))
    real_put = Journal.add_items
    put: list[str] = []
    beside: list[bool] = []

    def put_items(self, rows):
        rows = list(rows)
        put.extend(row.uid for row in rows)
        beside.append(self._beside is not None)  # their checkpoints on a thread beside
        return real_put(self, rows)

    monkeypatch.setattr(Journal, "add_items", put_items)
    assert pair.sync().ok
    assert put == sorted(f"uid-{n:02d}" for n in numbers)
    assert beside == [True] * 4
    assert len(pair.files()) == 40 and len(journal_rows(pair)) == 40


def test_a_small_download_or_a_directory_with_items_is_written_file_by_file(
    pair, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(engine, "WHOLE_MIN", 10)
    began: list[bool] = []
    real_begin = storage.VdirCollection.begin_whole

    def begin_whole(self):
        began.append(real_begin(self))
        return began[-1]

    monkeypatch.setattr(storage.VdirCollection, "begin_whole", begin_whole)
    for i in range(9):
        pair.server.put_event(event(f"ev{i:02d}", f"Event {i}"))
    assert pair.sync().ok
    assert began == []  # fewer than WHOLE_MIN
    monkeypatch.setattr(engine, "WHOLE_MAX", 9)
    for i in range(9, 20):
        pair.server.put_event(event(f"ev{i:02d}", f"Event {i}"))
    assert pair.sync().ok and len(pair.files()) == 20
    assert began == []  # more than WHOLE_MAX
    monkeypatch.setattr(engine, "WHOLE_MAX", 1000)
    for i in range(20, 30):
        pair.server.put_event(event(f"ev{i:02d}", f"Event {i}"))
    result = pair.sync()
    assert result.ok and len(pair.files()) == 30 and len(journal_rows(pair)) == 30
    assert began == [False]  # new files among items already there: one by one


def test_a_pass_that_dies_before_the_swap_leaves_the_directory_and_the_journal_empty(
    many, monkeypatch: pytest.MonkeyPatch
):
    undo = at_the_nth_action(monkeypatch, 25, killed)
    with pytest.raises(RuntimeError):
        many.sync()
    assert many.files() == {} and journal_rows(many) == {}
    assert _dot_entries(many) == []  # the directory written so far is gone
    undo()
    result = many.sync()
    assert result.ok and len(many.files()) == 35 and len(journal_rows(many)) == 35
    assert many.sync().changes == 0


def test_a_file_saved_during_the_download_is_kept_and_synced_next_pass(
    many, monkeypatch: pytest.MonkeyPatch
):
    """khal saves an event into the new directory while the pass writes: it is not lost,
    the pass puts the server's files in place around it, and the next pass uploads it."""

    def user_saves_one() -> None:
        (many.root / "personal" / "mine.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
            "UID:mine\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\n"
            "SUMMARY:Mine\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )

    undo = at_the_nth_action(monkeypatch, 20, user_saves_one)
    first = many.sync()
    assert first.ok, first.summary()
    assert len(many.files()) == 36 and len(journal_rows(many)) == 35
    undo()
    second = many.sync()
    assert second.ok and second.collections[0].uploaded == 1, second.summary()
    assert any(e.get("uid") == "mine" for e in many.server.events.values())
    assert _dot_entries(many) == []
