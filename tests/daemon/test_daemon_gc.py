"""The daemon collects reference cycles rarely during its passes and keeps the
interpreter's default between them (syncd.gctune): its first download of 10,000 events
spent 0.42 s in the collector with the default."""

from __future__ import annotations

import gc

from syncd import daemon as daemon_module
from syncd import gctune
from tests.daemon.test_daemon import harness, run_daemon, wait_for

__all__ = ["harness"]  # the fixture, shared with test_daemon


def test_the_daemons_passes_collect_rarely_and_the_default_is_kept_between(harness, monkeypatch):
    before = gc.get_threshold()
    during: list[int] = []
    real = daemon_module.PairRunner._guarded_pass

    async def guarded(self, reasons=None):  # type: ignore[no-untyped-def]
        during.append(gc.get_threshold()[0])
        return await real(self, reasons)

    monkeypatch.setattr(daemon_module.PairRunner, "_guarded_pass", guarded)
    between: list[tuple[int, ...]] = []

    async def scenario(daemon):
        await wait_for(lambda: daemon.runners[0].passes >= 1)
        between.append(gc.get_threshold())

    run_daemon(harness, scenario)
    assert during and set(during) == {gctune.THRESHOLD}
    assert between == [before] and before[0] != gctune.THRESHOLD
