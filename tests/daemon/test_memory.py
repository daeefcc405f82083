"""syncd.memory: the daemon gives back the memory of a big pass, not of a small one."""

from __future__ import annotations

import os
import sys

import pytest

from syncd import memory
from syncd.sync.workers import ENV_WORKERS
from tests.daemon.test_daemon import harness, run_daemon, wait_for

__all__ = ["harness"]  # the fixture, shared with test_daemon

glibc_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or memory._malloc_trim() is None,
    reason="glibc's allocator",
)


@glibc_linux
def test_freed_heap_is_given_back():
    # Chunks of 2 KB come from the C heap; one in ten kept alive keeps the heap from
    # shrinking by itself, as a pass's leftovers do.
    chunks = [bytes(2000) + i.to_bytes(4, "little") for i in range(60_000)]
    kept = chunks[::10]
    del chunks
    before = memory.resident()
    memory.give_back()
    after = memory.resident()
    assert before is not None and after is not None
    assert before - after > 40 << 20, (before >> 20, after >> 20)
    assert len(kept) == 6000


def test_only_a_pass_that_grew_the_process_pays_for_giving_back(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "give_back", lambda: calls.append(1))
    sizes = iter([200 << 20, 200 << 20, 150 << 20])
    monkeypatch.setattr(memory, "resident", lambda: next(sizes))
    memory.after_pass((200 << 20) - memory.GROWTH + 1)  # grew by less than GROWTH
    assert calls == []
    memory.after_pass(100 << 20)  # grew by 100 MB
    assert calls == [1]
    memory.after_pass(None)  # nothing known of before the pass
    assert calls == [1]


@pytest.mark.parametrize("growth, gives_back", [(0, True), (1 << 40, False)])
def test_the_daemon_gives_back_after_its_passes(harness, monkeypatch, growth, gives_back):
    calls = []
    monkeypatch.setattr(memory, "GROWTH", growth)
    monkeypatch.setattr(memory, "give_back", lambda: calls.append(1))

    async def scenario(daemon):
        await wait_for(lambda: daemon.runners[0].passes >= 1)

    run_daemon(harness, scenario)
    assert bool(calls) is gives_back


def test_the_workers_forkserver_is_stopped_and_a_later_pool_starts_another():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import forkserver

    def used_pool() -> int:
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            assert sum(pool.map(abs, [-1, -2, -3])) == 6
        return forkserver._forkserver._forkserver_pid

    from multiprocessing import resource_tracker

    pid = used_pool()
    tracker = resource_tracker._resource_tracker._pid
    assert pid is not None and tracker is not None
    assert memory.stop_forkserver() is True
    for gone in (pid, tracker):
        with pytest.raises(ProcessLookupError):  # gone, and reaped
            os.kill(gone, 0)
    assert memory.stop_forkserver() is False  # none runs now
    assert used_pool() not in (None, pid)  # the next big pass starts another
    assert memory.stop_forkserver() is True


def test_the_daemons_first_pass_starts_workers_at_once_and_stops_their_forkserver_after(
    harness, monkeypatch
):
    from multiprocessing import forkserver

    from syncd.sync import prepare
    from tests.sync.test_prepare import server_objects

    monkeypatch.setenv(ENV_WORKERS, "2")
    for obj in server_objects(prepare.MIN_OBJECTS, prefix="fs"):
        obj.pop("id")
        harness.server.put_event(obj)
    running: list[int | None] = []
    real = memory.stop_forkserver
    early: list[int] = []
    start_early = prepare.Preparer.start_early

    def counted(self) -> None:  # type: ignore[no-untyped-def]
        early.append(1)
        start_early(self)

    monkeypatch.setattr(prepare.Preparer, "start_early", counted)

    def stop() -> bool:
        running.append(forkserver._forkserver._forkserver_pid)
        return real()

    monkeypatch.setattr(memory, "stop_forkserver", stop)

    async def scenario(daemon):
        await wait_for(lambda: daemon.runners[0].passes >= 1, timeout=120)

    run_daemon(harness, scenario)
    assert len(list((harness.root / "personal").glob("*.ics"))) == prepare.MIN_OBJECTS
    assert early == [1], "the daemon's first pass starts its workers at once"
    assert running and running[0] is not None, "the pass's workers came from a forkserver"
    with pytest.raises(ProcessLookupError):
        os.kill(running[0], 0)
    assert forkserver._forkserver._forkserver_pid is None
