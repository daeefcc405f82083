"""A pair wired to the in-memory JMAP server, for engine tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from syncd.config import load_config
from syncd.connect import connect
from syncd.journal import Journal
from syncd.sync.engine import PairSync, PassOptions
from syncd.sync.result import PassResult
from tests.support.fakejmap import FakeJmapServer, FakeTransport
from tests.support.pairconfig import PairPaths, write_pair_config


@dataclass
class PairHarness(PairPaths):
    tmp: Path
    server: FakeJmapServer
    transport: FakeTransport
    conflict: str = "remote-wins"

    def write_config(self, extra: str = "") -> None:
        write_pair_config(
            self.config_path,
            url="https://jmap.test",
            username=self.server.username,
            password=self.server.password,
            tmp=self.tmp,
            pair_lines=f"    collections: all\n    conflict: {self.conflict}\n",
            extra=extra,
        )

    def sync(self, **options) -> PassResult:
        config = load_config(self.config_path)
        pair = config.pairs["cal"]

        async def go():
            client = await connect(config.accounts["home"], transport=self.transport)
            journal = Journal(config.state_dir / "cal.sqlite3")
            try:
                return await PairSync(config, pair, client, journal).run(PassOptions(**options))
            finally:
                journal.close()

        return anyio.run(go)

    def requests_during(self, fn):
        before = self.transport.counter.requests
        out = fn()
        return out, self.transport.counter.requests - before

    def files(self, collection: str = "personal") -> dict[str, bytes]:
        d = self.root / collection
        return {p.name: p.read_bytes() for p in sorted(d.glob("*.ics"))}

    def mtimes(self) -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in self.root.rglob("*") if p.is_file()}


@pytest.fixture
def pair(tmp_path: Path) -> PairHarness:
    server = FakeJmapServer()
    h = PairHarness(tmp_path, server, FakeTransport(server))
    h.root.mkdir()
    h.write_config()
    return h
