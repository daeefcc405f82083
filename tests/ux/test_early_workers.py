"""`syncd sync` starts the conversion workers' forkserver as soon as it knows a pair never
synced, while it loads the sync code and connects (cli._start_workers_for_first_pass,
syncd.sync.workers.start_forkserver); a pair with a journal brings what changed, and
starts nothing ahead."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd import cli
from syncd.config import journal_file, load_config, never_synced
from syncd.sync import workers
from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import served_pair


def test_a_pair_that_never_synced_starts_the_forkserver_before_its_pass_and_not_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    monkeypatch.setattr(workers, "start_forkserver", lambda: order.append("forkserver") or True)
    real_sync = cli._sync

    async def sync(config, args):  # type: ignore[no-untyped-def]
        order.append("pass")
        return await real_sync(config, args)

    monkeypatch.setattr(cli, "_sync", sync)
    server = FakeJmapServer()
    server.put_event({"@type": "Event", "uid": "a", "title": "A", "start": "2026-03-01T10:00:00"})
    with served_pair(tmp_path, server) as h:
        assert cli.main(["-c", str(h.config_path), "sync"]) == 0
        assert order == ["forkserver", "pass"]
        assert len(list((h.root / "personal").glob("*.ics"))) == 1
        order.clear()
        assert cli.main(["-c", str(h.config_path), "sync"]) == 0
        assert order == ["pass"], "its journal is there: the pass brings what changed"


def test_never_synced_means_no_journal_of_either_type(tmp_path: Path) -> None:
    with served_pair(tmp_path, FakeJmapServer()) as h:
        config = load_config(h.config_path)
        pair = config.pairs["cal"]
        assert never_synced(config, pair)
        tasks = journal_file(config, pair, "tasks")  # a pair of task lists only
        tasks.parent.mkdir(parents=True, exist_ok=True)
        tasks.touch()
        assert not never_synced(config, pair)
        tasks.unlink()
        events = journal_file(config, pair, "events")
        events.parent.mkdir(parents=True, exist_ok=True)
        events.touch()
        assert not never_synced(config, pair)
