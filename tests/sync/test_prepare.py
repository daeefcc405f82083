"""Conversion workers (syncd.sync.prepare): same results as the main process, always.

The workers are a speed-up only; every test here compares what they give with what the
main process computes itself, including when a worker or the whole pool fails.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from syncd import gctune
from syncd.convert.canon import canon_text, canonical
from syncd.convert.ical_out import jscal_to_ics
from syncd.journal import decode_base, served_base
from syncd.sync.engine import remote_version
from syncd.sync.prepare import (
    MIN_OBJECTS,
    Made,
    Preparer,
    _canon_chunk,
    _render_chunk,
    _unpack_chunk,
    pack_chunk,
)
from syncd.sync.workers import (
    ENV_WORKERS,
    WORKER_NICENESS,
    forkserver_context,
    start_forkserver,
    worker_count,
)

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "bench"))
import seed  # noqa: E402


def server_objects(n: int, prefix: str = "prep") -> list[dict]:
    objs = []
    for i, ev in enumerate(seed.make_events(n, prefix=prefix)):
        obj = seed.to_jscal(ev)
        obj["id"] = f"E{i}"
        objs.append(obj)
    return objs


def made_here(obj: dict) -> Made:
    data = jscal_to_ics([obj])
    return Made(data, served_base(obj), hashlib.sha256(data).hexdigest())


def run(preparer: Preparer, batches: list[list[dict]]) -> None:
    async def go() -> None:
        for batch in batches:
            preparer.feed(batch)
        preparer.seal()
        await preparer.canons_ready()

    anyio.run(go)


def test_worker_results_equal_the_main_process() -> None:
    objs = server_objects(MIN_OBJECTS + 150)
    known = {o["id"] for o in objs[:100]}  # already in the journal: no file made in advance
    preparer = Preparer(lambda o: o["id"] not in known, workers=2)
    try:
        run(preparer, [objs[:300], objs[300:]])
        assert preparer.pool is not None, "enough objects: the pool must have started"
        for obj in objs:
            ready = preparer.canon(obj)
            assert ready is not None
            inline = remote_version(obj)
            assert (ready.text, ready.comparable) == (canon_text(canonical(obj)), inline.comparable)
            made = anyio.run(preparer.file, obj)
            if obj["id"] in known:
                assert made is None
            else:
                assert made == made_here(obj)
                # Given once, then let go of (the pass holds it while it writes).
                assert anyio.run(preparer.file, obj) is None
    finally:
        preparer.close()
    assert preparer.pool is None and preparer.canon_pool is None


def test_a_chunk_goes_to_the_workers_as_marshal_bytes_and_comes_back_the_same() -> None:
    objs = server_objects(5)
    objs[0]["title"] = "Caf\u00e9 \ud83d\ude00 \ud800"  # a lone surrogate, as JSON can carry
    objs[1]["x-big"] = 2**80
    objs[2]["x-float"] = [0.1, float("inf"), -0.0, None, True, False]
    objs[3] = dict(reversed(list(objs[3].items())))  # an order of its own
    chunk = pack_chunk(objs)
    assert isinstance(chunk, bytes), "server objects go as marshal's bytes, not pickled"
    back = _unpack_chunk(chunk)
    assert back == objs
    assert [list(o) for o in back] == [list(o) for o in objs]  # order kept: served text
    assert [served_base(o) for o in back] == [served_base(o) for o in objs]
    made = _render_chunk(chunk)
    assert made[0] is None  # the lone surrogate cannot be written: left to the main process
    assert made[1:] == [made_here(o) for o in objs[1:]]


def test_a_chunk_marshal_cannot_write_goes_as_it_is_and_converts_the_same() -> None:
    from fractions import Fraction

    objs = server_objects(3)
    odd = [*objs, {**objs[0], "x-odd": Fraction(1, 3)}]
    chunk = pack_chunk(odd)
    assert chunk is odd
    assert _unpack_chunk(chunk) is odd
    assert _render_chunk(chunk)[:3] == [made_here(o) for o in objs]
    assert _render_chunk(chunk)[3] is None  # not JSON: left to the main process
    forms = _canon_chunk(pack_chunk(objs))
    assert [f.text for f in forms] == [canon_text(canonical(o)) for o in objs]  # type: ignore[union-attr]


def test_few_objects_start_no_pool() -> None:
    objs = server_objects(10)
    preparer = Preparer(lambda o: True, workers=2)
    try:
        run(preparer, [objs])
        assert preparer.pool is None and preparer.canon_pool is None
        assert all(preparer.canon(o) is None and preparer.order(o) == -1 for o in objs)
    finally:
        preparer.close()


def test_workers_start_when_a_big_fetch_is_announced_and_give_the_same_results() -> None:
    # A first download announces its count before the first page arrives: the workers
    # start then (in a thread), and what they give is still what the main process makes.
    small = Preparer(lambda o: True, workers=2)
    small.expect(MIN_OBJECTS - 1)
    small._started()
    assert small.pool is None  # not worth a pool
    small.close()
    objs = server_objects(MIN_OBJECTS)
    preparer = Preparer(lambda o: True, workers=2)
    try:
        preparer.expect(len(objs))
        preparer._started()
        assert preparer.pool is not None
        run(preparer, [objs[:400], objs[400:]])
        for obj in objs[:: len(objs) // 25]:
            ready = preparer.canon(obj)
            assert ready is not None and ready.text == canon_text(canonical(obj))
            assert anyio.run(preparer.file, obj) == made_here(obj)
    finally:
        preparer.close()


def test_workers_started_early_for_a_fetch_that_turns_out_small_are_left_unused() -> None:
    # `syncd sync` starts them as a pair's first pass begins; the count then says a few:
    # the main process converts them, as for any small pass, and nothing waits on a pool.
    objs = server_objects(10)
    preparer = Preparer(lambda o: True, workers=2)
    try:
        preparer.start_early()
        preparer.expect(len(objs))
        assert preparer.unneeded
        run(preparer, [objs])
        assert not preparer.slots and not preparer.waiting
        assert all(preparer.canon(o) is None and preparer.order(o) == -1 for o in objs)
        assert all(anyio.run(preparer.file, o) is None for o in objs)
    finally:
        preparer.close()
    assert preparer.pool is None and preparer.canon_pool is None


def test_workers_started_early_convert_a_big_fetch_as_the_main_process_would() -> None:
    objs = server_objects(MIN_OBJECTS)
    preparer = Preparer(lambda o: True, workers=2)
    try:
        preparer.start_early()
        preparer._started()
        assert preparer.pool is not None, "started before any count or object"
        preparer.expect(len(objs))
        assert not preparer.unneeded
        run(preparer, [objs[:300], objs[300:]])
        for obj in objs[:: len(objs) // 25]:
            assert anyio.run(preparer.file, obj) == made_here(obj)
    finally:
        preparer.close()


def test_only_a_first_pass_asked_to_starts_its_workers_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.fakejmap import FakeJmapServer, FakeTransport
    from tests.sync.conftest import PairHarness

    monkeypatch.setenv(ENV_WORKERS, "2")
    early: list[int] = []
    monkeypatch.setattr(Preparer, "start_early", lambda self: early.append(1))
    server = FakeJmapServer()
    for obj in server_objects(5, prefix="early"):
        obj.pop("id")
        server.put_event(obj)
    h = PairHarness(tmp_path, server, FakeTransport(server))
    h.root.mkdir(parents=True)
    h.write_config()
    assert h.sync().ok
    assert early == [], "a pass that does not ask for it waits for the count"
    other = PairHarness(tmp_path / "cli", server, FakeTransport(server))
    other.root.mkdir(parents=True)
    other.write_config()
    assert other.sync(early_workers=True).ok
    assert early == [1], "`syncd sync`'s first pass starts them at once"
    assert other.sync(early_workers=True).ok
    assert early == [1], "a later pass brings what changed: it waits for the count"
    assert len(other.files()) == 5


def test_a_forkserver_started_before_the_pass_forks_its_workers_with_both_converters_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `syncd sync` starts it for a pair that never synced (cli._start_workers_for_first_pass)
    # while it loads the sync code; the pass's pools must then come from it, ready.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import forkserver

    from syncd import memory
    from syncd.sync.readahead import Readahead
    from tests.support.loaded import loaded

    monkeypatch.setenv(ENV_WORKERS, "2")
    memory.stop_forkserver()  # one started by an earlier test would prove nothing
    assert start_forkserver() is True
    server = forkserver._forkserver._forkserver_pid
    assert server is not None
    objs = server_objects(MIN_OBJECTS, prefix="prestart")
    preparer = Preparer(lambda o: True, workers=2)
    ahead = Readahead(workers=2)
    try:
        with ProcessPoolExecutor(1, mp_context=forkserver_context()) as bare:
            assert bare.submit(os.getppid).result() == server
            converters = ["syncd.convert.ical_out", "syncd.convert.ical_in"]
            assert bare.submit(loaded, converters).result() == [True, True]
        run(preparer, [objs])
        assert preparer.pool is not None
        assert {preparer.pool.submit(os.getppid).result() for _ in range(4)} == {server}
        for obj in objs[:: len(objs) // 20]:
            assert anyio.run(preparer.file, obj) == made_here(obj)
        names = [f"f{i}" for i in range(1000)]
        assert ahead.start(names, lambda name: b"not a calendar")
        assert ahead.pool is not None
        assert ahead.pool.submit(os.getppid).result() == server
    finally:
        preparer.close()
        ahead.close()
        memory.stop_forkserver()


def test_no_forkserver_is_started_early_where_there_will_be_no_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from multiprocessing import forkserver

    from syncd import memory

    memory.stop_forkserver()
    monkeypatch.setenv(ENV_WORKERS, "0")
    assert start_forkserver() is False
    assert forkserver._forkserver._forkserver_pid is None


def test_an_object_the_converter_refuses_is_left_to_the_main_process() -> None:
    objs = server_objects(MIN_OBJECTS)
    objs[7]["start"] = "not a date"  # jscal_to_ics raises on it; canonical does not
    objs[9][1] = "x"  # not JSON (names are strings): canonical raises on it
    preparer = Preparer(lambda o: True, workers=2)
    try:
        run(preparer, [objs])
        assert anyio.run(preparer.file, objs[7]) is None
        assert preparer.canon(objs[9]) is None
        with pytest.raises(TypeError):
            remote_version(objs[9]).comparable  # noqa: B018 - the main process meets the error itself
        assert anyio.run(preparer.file, objs[8]) == made_here(objs[8])
    finally:
        preparer.close()


def test_objects_the_pass_will_not_compare_get_files_and_no_canonical_form() -> None:
    # A first download into an empty vdir compares nothing: its objects' files are made
    # in advance, their canonical forms not at all (no worker is started for them).
    objs = server_objects(MIN_OBJECTS + 10)
    compared = {o["id"] for o in objs[:20]}
    preparer = Preparer(lambda o: True, workers=2, wants_canon=lambda o: o["id"] in compared)
    try:
        run(preparer, [objs])
        for obj in objs:
            ready = preparer.canon(obj)
            if obj["id"] in compared:
                assert ready is not None and ready.text == canon_text(canonical(obj))
            else:
                assert ready is None
            assert anyio.run(preparer.file, obj) == made_here(obj)
    finally:
        preparer.close()
    nothing = Preparer(lambda o: True, workers=2, wants_canon=lambda o: False)
    try:
        run(nothing, [objs])
        assert nothing.pool is not None and nothing.canon_pool is None
        assert anyio.run(nothing.file, objs[0]) == made_here(objs[0])
    finally:
        nothing.close()


def test_a_killed_worker_means_conversion_in_the_main_process() -> None:
    objs = server_objects(MIN_OBJECTS * 3)
    preparer = Preparer(lambda o: True, workers=2)
    try:
        preparer.feed(objs[:MIN_OBJECTS])
        assert preparer.pool is not None
        for pool in (preparer.pool, preparer.canon_pool):
            for pid in list(pool._processes):  # noqa: SLF001 - the test's sabotage
                os.kill(pid, signal.SIGKILL)
        preparer.feed(objs[MIN_OBJECTS:])
        preparer.seal()
        anyio.run(preparer.canons_ready)
        # Whatever the dead pool did not finish comes back as "do it yourself", never wrong.
        assert any(preparer.canon(obj) is None for obj in objs)
        for obj in objs:
            ready = preparer.canon(obj)
            if ready is not None:
                assert ready.comparable == remote_version(obj).comparable
            made = anyio.run(preparer.file, obj)
            assert made is None or made == made_here(obj)
    finally:
        preparer.close()


def test_workers_run_at_a_lower_priority_than_the_pass() -> None:
    # The main process writes what the workers make; it gets the CPU first.
    objs = server_objects(MIN_OBJECTS)
    preparer = Preparer(lambda o: True, workers=2)
    try:
        run(preparer, [objs])
        assert preparer.pool is not None
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        theirs = {
            preparer.pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result() for _ in range(4)
        }
        assert theirs == {min(mine + WORKER_NICENESS, 19)}
    finally:
        preparer.close()


def test_workers_collect_reference_cycles_rarely() -> None:
    # They build and drop hundreds of thousands of objects a pass (syncd.gctune).
    objs = server_objects(MIN_OBJECTS)
    preparer = Preparer(lambda o: True, workers=2)
    try:
        run(preparer, [objs])
        assert preparer.pool is not None
        thresholds = {preparer.pool.submit(gc.get_threshold).result() for _ in range(4)}
        assert {t[0] for t in thresholds} == {gctune.THRESHOLD}
        assert gc.get_threshold()[0] != gctune.THRESHOLD  # not the pass's own process
    finally:
        preparer.close()


def test_worker_count_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_WORKERS, "0")
    assert worker_count() == 0
    monkeypatch.setenv(ENV_WORKERS, "1")
    assert worker_count() == 0  # one worker would only add pickling
    monkeypatch.setenv(ENV_WORKERS, "3")
    assert worker_count() == 3


def synced_files_and_rows(h, where: Path) -> tuple[dict[str, bytes], list[tuple]]:
    """One pass of ``h``, which must succeed; its files and the journal's item rows."""
    result = h.sync()
    assert result.ok, result.summary()
    import sqlite3

    db = sqlite3.connect(where / "state" / "cal.sqlite3")
    rows = db.execute(
        "SELECT uid, filename, remote_hash, base, local_hash FROM items ORDER BY uid"
    ).fetchall()
    db.close()
    return h.files(), rows


def test_a_big_pass_writes_the_same_files_and_journal_with_and_without_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.fakejmap import FakeJmapServer, FakeTransport
    from tests.sync.conftest import PairHarness

    def one(workers: str, where: Path) -> tuple[dict[str, bytes], list[tuple]]:
        monkeypatch.setenv(ENV_WORKERS, workers)
        server = FakeJmapServer()
        for obj in server_objects(MIN_OBJECTS + 50, prefix="big"):
            obj.pop("id")
            server.put_event(obj)
        h = PairHarness(where, server, FakeTransport(server))
        h.root.mkdir(parents=True)
        h.write_config()
        return synced_files_and_rows(h, where)

    files_inline, rows_inline = one("0", tmp_path / "inline")
    files_workers, rows_workers = one("2", tmp_path / "workers")
    assert len(files_inline) == MIN_OBJECTS + 50
    assert files_workers == files_inline
    assert rows_workers == rows_inline


def test_adopting_a_filled_vdir_makes_no_file_in_advance_and_gives_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first pass over a vdir another tool filled from the same server: nearly every
    object already has its file, so the workers make canonical forms only (making
    10,000 files for nothing was a fifth of that pass); the few server-only objects
    are written all the same, as without workers."""
    from tests.support.fakejmap import FakeJmapServer, FakeTransport
    from tests.sync.conftest import PairHarness

    objs = server_objects(MIN_OBJECTS + 50, prefix="adopt")
    for obj in objs:
        obj.pop("id")
    filled = {
        f"{seed.ics_filename(ev)}": seed.to_ics(ev).encode()
        for ev in seed.make_events(MIN_OBJECTS, prefix="adopt")
    }
    made_in_advance: list[int] = []
    compared_in_advance: list[int] = []
    close = Preparer.close

    def counting_close(self: Preparer) -> None:
        made_in_advance.append(sum(s.render is not None for s in self.slots.values()))
        compared_in_advance.append(sum(s.canon is not None for s in self.slots.values()))
        close(self)

    monkeypatch.setattr(Preparer, "close", counting_close)

    def one(workers: str, where: Path) -> tuple[dict[str, bytes], list[tuple]]:
        monkeypatch.setenv(ENV_WORKERS, workers)
        server = FakeJmapServer()
        for obj in objs:
            server.put_event(dict(obj))
        h = PairHarness(where, server, FakeTransport(server))
        (h.root / "personal").mkdir(parents=True)
        for name, data in filled.items():
            (h.root / "personal" / name).write_bytes(data)
        h.write_config()
        return synced_files_and_rows(h, where)

    files_inline, rows_inline = one("0", tmp_path / "inline")
    files_workers, rows_workers = one("2", tmp_path / "workers")
    assert made_in_advance[-1] == 0, "adopting: no file made in advance"
    assert compared_in_advance[-1] == MIN_OBJECTS + 50, "but every canonical form"
    assert len(files_inline) == MIN_OBJECTS + 50  # the 50 server-only written
    assert {k: v for k, v in files_inline.items() if k in filled} == filled  # left alone
    assert files_workers == files_inline
    # The same rows, but for how a base is kept: the canonical form's text as the workers
    # write it or as the main process does, or the object as served (a server-only item
    # written without a comparison): one object either way (journal.decode_base).
    assert len(rows_workers) == len(rows_inline)
    for (uid, name, remote, base, local), theirs in zip(rows_workers, rows_inline, strict=True):
        assert (uid, name, local) == (theirs[0], theirs[1], theirs[4])
        assert decode_base(base) == decode_base(theirs[3]), uid
        assert remote is None or theirs[2] is None or remote == theirs[2], uid
