"""Local files parsed ahead by workers (syncd.sync.readahead): the same pass, always.

The workers only parse sooner; every test compares a pass with them against the same
pass without them, bad files included, and checks that the main process parsed only
what the workers could not.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

from syncd import convert
from syncd.sync import readahead
from syncd.sync.readahead import Readahead, parse_file
from syncd.sync.workers import ENV_WORKERS
from syncd.vdir.storage import DEFAULT_MAX_ITEM_BYTES
from tests.support.fakejmap import FakeJmapServer, FakeTransport
from tests.sync.conftest import PairHarness

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "bench"))
import seed  # noqa: E402

NO_UID = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nSUMMARY:no uid\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
TWO_UIDS = NO_UID.replace("SUMMARY:no uid", "UID:a\r\nSUMMARY:one").replace(
    "END:VCALENDAR",
    "BEGIN:VEVENT\r\nUID:b\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20260301T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR",
)
TASK = NO_UID.replace("VEVENT", "VTODO").replace("SUMMARY:no uid", "UID:task-1\r\nSUMMARY:t")


def fill(d: Path, n: int) -> None:
    d.mkdir(parents=True)
    seed.write_vdir(d, seed.make_events(n, prefix="ahead"))
    (d / "broken.ics").write_bytes(b"BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n")
    (d / "no-uid.ics").write_text(NO_UID)
    (d / "two-uids.ics").write_text(TWO_UIDS)
    (d / "a-task.ics").write_text(TASK)
    with open(d / "huge.ics", "wb") as f:  # over the per-item limit: not even read
        f.truncate(DEFAULT_MAX_ITEM_BYTES + 1)


def first_upload(where: Path, workers: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV_WORKERS, workers)
    server = FakeJmapServer()
    h = PairHarness(where, server, FakeTransport(server))
    fill(h.root / "personal", 40)
    h.write_config()
    parsed_here: list[bytes] = []
    real = convert.ics_to_jscal

    def counting(data: bytes):
        parsed_here.append(data)
        return real(data)

    monkeypatch.setattr(convert, "ics_to_jscal", counting)
    result = h.sync()
    monkeypatch.setattr(convert, "ics_to_jscal", real)
    db = sqlite3.connect(where / "state" / "cal.sqlite3")
    rows = db.execute(
        "SELECT uid, filename, local_hash, remote_hash, base FROM items ORDER BY uid"
    ).fetchall()
    db.close()
    events = sorted(
        (e["uid"], sorted((k, repr(v)) for k, v in e.items() if k != "id"))
        for e in server.events.values()
    )
    return result, rows, events, h.files(), parsed_here


def test_a_first_upload_is_the_same_with_and_without_parsing_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(readahead, "MIN_FILES", 10)
    inline = first_upload(tmp_path / "inline", "0", monkeypatch)
    ahead = first_upload(tmp_path / "ahead", "2", monkeypatch)
    result_inline, result_ahead = inline[0], ahead[0]

    def problems(result, where: Path) -> list[str]:
        found = result.errors + [e for c in result.collections for e in c.errors]
        return sorted(e.replace(str(where), "") for e in found)

    assert problems(result_ahead, tmp_path / "ahead") == problems(
        result_inline, tmp_path / "inline"
    )
    assert len(problems(result_inline, tmp_path / "inline")) == 4  # all but the UID-less one
    assert len(inline[2]) == 41  # 40 events and the one given a UID
    assert ahead[1:4] == inline[1:4]  # journal rows, server objects, local files
    # Without workers the main process parsed every readable file; with them only the
    # one they could not (to report it in context).
    assert len(inline[4]) == 44
    assert ahead[4] == [b"BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n"]


def test_below_the_threshold_nothing_is_started():
    ahead = Readahead(workers=2)
    assert not ahead.start([f"f{i}" for i in range(readahead.MIN_FILES - 1)], lambda n: b"")
    assert ahead.pool is None
    assert Readahead(workers=0).start([f"f{i}" for i in range(5000)], lambda n: b"") is False


def test_a_read_error_comes_back_at_its_turn_and_other_bytes_are_parsed_here(monkeypatch):
    monkeypatch.setattr(readahead, "MIN_FILES", 2)
    ics = seed.to_ics(seed.make_events(1)[0]).encode()

    def read(name: str) -> bytes:
        if name == "gone":
            raise FileNotFoundError(name)
        return bytes(ics)

    ahead = Readahead(workers=2)
    try:
        assert ahead.start(["a", "gone", "b"], read)
        with pytest.raises(FileNotFoundError):
            ahead.read("gone", read)
        data = ahead.read("a", read)

        async def go():
            return (
                await ahead.parsed("a", data),
                await ahead.parsed("b", bytes(bytearray(ics))),  # not the bytes it read
                await ahead.parsed("a", data),  # given once
            )

        first, other, again = anyio.run(go)
        assert first == parse_file(ics) and first is not None
        assert first.objs() == convert.ics_to_jscal(ics)
        assert other is None and again is None
    finally:
        ahead.close()


def test_a_file_read_early_and_changed_since_is_read_again(monkeypatch):
    """Read early (a first pass over a filled vdir reads while the server answers): the
    scan takes those bytes only where its own listing shows the etag they were read at."""
    monkeypatch.setattr(readahead, "MIN_FILES", 2)
    old = seed.to_ics(seed.make_events(1)[0]).encode()
    new = old.replace(b"SUMMARY:", b"SUMMARY:edited ")
    on_disk = {"a": old, "b": old}
    ahead = Readahead(workers=2)
    try:
        thread = ahead.start_early({"a": "etag-a1", "b": "etag-b1"}, lambda n: bytes(on_disk[n]))
        assert thread is not None
        thread.join()
        on_disk["a"] = new  # edited after the early read: listed again at another etag
        data_a = ahead.read("a", lambda n: on_disk[n], "etag-a2")
        data_b = ahead.read("b", lambda n: on_disk[n], "etag-b1")

        async def go():
            return await ahead.parsed("a", data_a), await ahead.parsed("b", data_b)

        parsed_a, parsed_b = anyio.run(go)
        assert data_a == new and parsed_a is None  # read again, parsed by the scan itself
        assert data_b == old and parsed_b == parse_file(old)  # the early read stands
    finally:
        ahead.close()
    assert Readahead(workers=2).start_early({"a": "e"}, lambda n: b"") is None  # too few


def test_adopting_reads_early_and_takes_an_edit_made_after_the_early_read(tmp_path, monkeypatch):
    """A first pass over a filled vdir: its files are read and parsed before the server's
    answer; a file edited after that read, before the scan, goes up as edited."""
    monkeypatch.setattr(readahead, "MIN_FILES", 10)
    monkeypatch.setenv(ENV_WORKERS, "2")
    server = FakeJmapServer()
    h = PairHarness(tmp_path, server, FakeTransport(server))
    d = h.root / "personal"
    d.mkdir(parents=True)
    seed.write_vdir(d, seed.make_events(30, prefix="early"))
    h.write_config()
    target = sorted(d.iterdir())[3]
    early: list[int] = []
    real = Readahead.start_early

    def start_then_edit(self, listing, read):
        thread = real(self, listing, read)
        if thread is not None:
            thread.join()
            early.append(len(self.files))
            data = target.read_bytes().replace(b"SUMMARY:", b"SUMMARY:edited after the read ")
            target.write_bytes(data)
            os.utime(target, ns=(1, 1))  # another etag whatever the clock's granularity
        return thread

    monkeypatch.setattr(Readahead, "start_early", start_then_edit)
    result = h.sync()
    assert result.ok, result.summary()
    assert early == [30], "the files were read early"
    titles = sorted(e.get("title", "") for e in server.events.values())
    assert len(titles) == 30
    assert sum(t.startswith("edited after the read ") for t in titles) == 1


def test_adopting_lets_go_of_what_it_only_records(tmp_path, monkeypatch):
    """A file whose meaning the server holds already is only recorded: its parsed object
    and canonical form are let go during the scan (adopting 50,000 files held both
    sides' objects at once, 960 MB), while a file that differs keeps them for the
    conflict rule, which still settles it."""
    from syncd.sync import engine
    from syncd.sync import plan as P

    monkeypatch.setenv(ENV_WORKERS, "0")
    events = seed.make_events(12, prefix="drop")
    server = FakeJmapServer()
    for ev in events:
        server.put_event(seed.to_jscal(ev))
    h = PairHarness(tmp_path, server, FakeTransport(server))
    d = h.root / "personal"
    d.mkdir(parents=True)
    seed.write_vdir(d, events)
    differing = d / seed.ics_filename(events[5])
    differing.write_bytes(differing.read_bytes().replace(b"SUMMARY:", b"SUMMARY:mine "))
    h.write_config()
    seen: list[P.LocalView] = []
    real = engine.P.plan_collection

    def spying(journal, local, remote, **kwargs):
        seen.append(local)
        return real(journal, local, remote, **kwargs)

    monkeypatch.setattr(engine.P, "plan_collection", spying)
    result = h.sync()
    assert result.ok, result.summary()
    (local,) = seen
    dropped = {uid for uid, lv in local.changed.items() if lv.obj is P.DROPPED}
    assert dropped == {ev.uid for ev in events} - {events[5].uid}
    assert all(local.changed[uid].canon is P.DROPPED for uid in dropped)
    assert local.changed[events[5].uid].obj["title"].startswith("mine ")
    assert sum(c.conflicts for c in result.collections) == 1  # settled by the rule
    with pytest.raises(RuntimeError):
        P.DROPPED.get("updated")  # a read of what was let go fails loudly
