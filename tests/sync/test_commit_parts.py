"""A big pass commits its files and journal rows in parts (engine.COMMIT_EVERY), each
part's files durable and in place before its rows: a pass that dies half way keeps
what it committed, leaves no row without its file, and the next pass finishes the rest
without writing any file twice."""

from __future__ import annotations

import sqlite3

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


def test_a_pass_that_dies_half_way_keeps_whole_parts_and_the_next_finishes(
    pair, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(engine, "COMMIT_EVERY", 10)
    for i in range(35):
        pair.server.put_event(event(f"ev{i:02d}", f"Event {i}"))
    real = engine.PairSync._apply_one
    calls = 0

    def dies_at_the_25th(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 25:
            raise RuntimeError("killed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(engine.PairSync, "_apply_one", dies_at_the_25th)
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

    monkeypatch.setattr(engine.PairSync, "_apply_one", real)
    before = pair.mtimes()
    result = pair.sync()
    assert result.ok and sum(c.conflicts for c in result.collections) == 0, result
    assert len(pair.files()) == 35 and len(journal_rows(pair)) == 35
    after = pair.mtimes()
    assert all(after[path] == mtime for path, mtime in before.items())  # none written twice
    again = pair.sync()
    assert again.ok and again.changes == 0
