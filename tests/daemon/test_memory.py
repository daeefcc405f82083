"""syncd.memory: the daemon gives back the memory of a big pass, not of a small one."""

from __future__ import annotations

import sys

import pytest

from syncd import memory
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
