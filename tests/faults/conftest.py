"""A pair pointed at the faulty JMAP server over real HTTP on loopback."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from syncd.config import load_config
from syncd.connect import connect
from syncd.jmap.stdtransport import StdlibTransport
from syncd.jmap.transport import NiquestsTransport
from syncd.journal import Journal
from syncd.sync.engine import PairSync, PassOptions
from syncd.sync.result import PassResult
from tests.support.fakejmap import FakeJmapServer
from tests.support.httpfake import FaultyJmapHttpServer
from tests.sync.conftest import PairHarness


class HttpPairHarness(PairHarness):
    """Like the engine tests' harness, but every request crosses a real socket."""

    http: FaultyJmapHttpServer
    transport_class: type = NiquestsTransport

    def sync(self, **options) -> PassResult:
        config = load_config(self.config_path)
        pair = config.pairs["cal"]

        async def go():
            transport = self.transport_class(timeout=2.0, counter=self.transport.counter)
            journal = Journal(config.state_dir / "cal.sqlite3")
            try:
                client = await connect(config.accounts["home"], transport=transport)
                return await PairSync(config, pair, client, journal).run(PassOptions(**options))
            finally:
                journal.close()
                await transport.aclose()

        return anyio.run(go)

    def write_config(self, extra: str = "") -> None:
        super().write_config(extra)
        text = self.config_path.read_text().replace("https://jmap.test", self.http.base_url)
        self.config_path.write_text(text)


@pytest.fixture(params=[NiquestsTransport, StdlibTransport], ids=["niquests", "stdlib"])
def http_pair(tmp_path: Path, request):
    """Every fault, through both transports: the daemon's (niquests) and the one-shot
    commands' (http.client)."""
    server = FakeJmapServer()
    server.event_source = False
    http = FaultyJmapHttpServer(server)
    h = HttpPairHarness(tmp_path, server, NiquestsTransport(timeout=2.0))
    h.http = http
    h.transport_class = request.param
    h.root.mkdir()
    h.write_config()
    yield h
    http.close()
