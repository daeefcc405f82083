"""A pair against the in-memory JMAP server served over real HTTP on loopback: the
harness of the task tests, and of any test that needs real processes (``syncd`` on the
command line) to talk to the in-memory server."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from syncd.config import load_config
from syncd.connect import connect
from syncd.sync.engine import PassOptions
from syncd.sync.pair import run_pair
from syncd.sync.result import PassResult
from tests.support.fakejmap import FakeJmapServer
from tests.support.httpfake import FaultyJmapHttpServer
from tests.support.pairconfig import PairPaths, write_pair_config

VTODO = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nSUMMARY:{title}\r\n{extra}END:VTODO\r\nEND:VCALENDAR\r\n"
)
VEVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@dataclass
class TaskHarness(PairPaths):
    tmp: Path
    server: FakeJmapServer
    http: FaultyJmapHttpServer

    def write_config(self, types: str | None = None, extra: str = "") -> None:
        write_pair_config(
            self.config_path,
            url=self.http.base_url,
            username=self.server.username,
            password=self.server.password,
            tmp=self.tmp,
            pair_lines=f"    types: {types}\n" if types else "",
            extra=extra,
        )

    def sync(self, **options) -> PassResult:
        config = load_config(self.config_path)
        pair = config.pairs["cal"]

        async def go():
            client = await connect(config.accounts["home"])
            try:
                return await run_pair(config, pair, client, PassOptions(**options))
            finally:
                await client.transport.aclose()

        return anyio.run(go)

    def cli(self, *args: str) -> tuple[int, str, str]:
        """``syncd -c CONFIG ARGS`` in-process; (exit status, stdout, stderr)."""
        from syncd.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["-c", str(self.config_path), *args])
        return code, out.getvalue(), err.getvalue()

    def files(self, collection: str = "tasks") -> dict[str, bytes]:
        d = self.root / collection
        return {p.name: p.read_bytes() for p in sorted(d.glob("*.ics"))}

    def mtimes(self) -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in self.root.rglob("*") if p.is_file()}

    def api_requests(self) -> int:
        return len(self.http.seen)


@contextlib.contextmanager
def served_pair(tmp_path: Path, server: FakeJmapServer) -> Iterator[TaskHarness]:
    """``server`` on loopback HTTP, a vdir root and a configuration for pair "cal"."""
    http = FaultyJmapHttpServer(server)
    h = TaskHarness(tmp_path, server, http)
    h.root.mkdir()
    h.write_config()
    try:
        yield h
    finally:
        http.close()
