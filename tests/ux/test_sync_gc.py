"""`syncd sync` and the daemon collect reference cycles rarely for the length of a pass;
the daemon keeps the interpreter's default between passes (syncd.gctune)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from syncd import cli, gctune
from syncd.errors import SyncdError
from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import served_pair


@pytest.fixture
def config_path(tmp_path: Path):
    with served_pair(tmp_path, FakeJmapServer()) as h:
        yield h.config_path


def test_a_sync_pass_runs_with_rare_collections_and_puts_the_default_back(config_path, monkeypatch):
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    async def pass_(config, args):  # type: ignore[no-untyped-def]
        seen.append(gc.get_threshold())
        return 0

    monkeypatch.setattr(cli, "_sync", pass_)
    assert cli.main(["-c", str(config_path), "sync"]) == 0
    assert seen == [(gctune.THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before


def test_a_failed_pass_also_puts_the_default_back(config_path, monkeypatch):
    before = gc.get_threshold()

    async def failing(config, args):  # type: ignore[no-untyped-def]
        raise SyncdError("the server went away")

    monkeypatch.setattr(cli, "_sync", failing)
    assert cli.main(["-c", str(config_path), "sync"]) == 1
    assert gc.get_threshold() == before


def test_the_daemon_keeps_the_default(config_path, monkeypatch):
    import syncd.service

    seen: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        syncd.service, "run_service", lambda config, args: seen.append(gc.get_threshold()) or 0
    )
    assert cli.main(["-c", str(config_path), "run"]) == 0
    assert seen == [gc.get_threshold()] and seen[0][0] != gctune.THRESHOLD


def test_overlapping_passes_put_the_default_back_when_the_last_ends():
    # Two pairs' passes in the daemon: the one that ends first must not put the default
    # back under the other.
    before = gc.get_threshold()
    first, second = gctune.rare_collections(), gctune.rare_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == gctune.THRESHOLD
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), gctune.rare_collections():
        raise RuntimeError("a pass that failed")
    assert gc.get_threshold() == before
