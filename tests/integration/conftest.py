"""Integration tests against a real Cyrus IMAP 3.12 (contrib/cyrus/harness.py).

One server per test session, one fresh user per test.  Where the server cannot run
(not root, no chroot) the tests are skipped with the reason, except when
SYNCD_REQUIRE_CYRUS=1 (set by .ci/run): then that is a failure, so CI cannot go green
without ever having talked to the real server.
"""

from __future__ import annotations

import itertools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from syncd.config import load_config
from syncd.connect import connect
from syncd.jmap.transport import NiquestsTransport, TrafficCounter
from syncd.journal import Journal
from syncd.sync.engine import PairSync, PassOptions
from syncd.sync.result import PassResult
from tests.support.pairconfig import PairPaths, write_pair_config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "contrib" / "cyrus"))
import harness  # noqa: E402

_names = itertools.count(1)


def _unavailable(reason: str) -> None:
    if os.environ.get("SYNCD_REQUIRE_CYRUS") == "1":
        pytest.fail(f"Cyrus test server required but unavailable: {reason}")
    pytest.skip(f"Cyrus test server unavailable: {reason}")


@pytest.fixture(scope="session")
def cyrus():
    if os.geteuid() != 0:
        _unavailable("needs root to run the server in its chroot")
    if not harness.is_installed():
        try:
            harness.install()
        except harness.HarnessError as exc:
            _unavailable(f"install failed: {exc}")
    try:
        server = harness.CyrusServer.start()
    except harness.HarnessError as exc:
        _unavailable(str(exc))
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def cyrus_user(cyrus):
    return cyrus.add_user(f"u{os.getpid()}x{next(_names)}")


@dataclass
class CyrusPair(PairPaths):
    """A config, a vdir and a journal pointed at one Cyrus user."""

    tmp: Path
    user: harness.CyrusUser
    conflict: str = "remote-wins"
    counter: TrafficCounter = field(default_factory=TrafficCounter)

    def write_config(self) -> None:
        write_pair_config(
            self.config_path,
            url=self.user.base_url,
            username=self.user.name,
            password=self.user.password,
            tmp=self.tmp,
            pair_lines=f"    collections: all\n    conflict: {self.conflict}\n",
        )

    def sync(self, **options) -> PassResult:
        config = load_config(self.config_path)

        async def go():
            # A transport per pass: its connection pool belongs to this event loop.
            transport = NiquestsTransport(counter=self.counter)
            journal = Journal(config.state_dir / "cal.sqlite3")
            try:
                client = await connect(config.accounts["home"], transport=transport)
                pair = config.pairs["cal"]
                return await PairSync(config, pair, client, journal).run(PassOptions(**options))
            finally:
                journal.close()
                await transport.aclose()

        return anyio.run(go)

    def requests_during(self, fn):
        before = self.counter.requests
        out = fn()
        return out, self.counter.requests - before

    def jmap(self, calls):
        return self.user.jmap(calls)

    def events(self) -> dict[str, dict]:
        """uid -> event, straight from the server."""
        ((_, body, _),) = self.jmap([["CalendarEvent/get", {"accountId": self.user.name}, "g"]])
        return {e["uid"]: e for e in body["list"]}

    def calendars(self) -> dict[str, dict]:
        ((_, body, _),) = self.jmap([["Calendar/get", {"accountId": self.user.name}, "g"]])
        return {c["id"]: c for c in body["list"]}

    def set_events(self, args: dict) -> dict:
        ((name, body, _),) = self.jmap(
            [["CalendarEvent/set", {"accountId": self.user.name, **args}, "s"]]
        )
        assert name == "CalendarEvent/set", body
        for key in ("notCreated", "notUpdated", "notDestroyed"):
            assert not body.get(key), body
        return body

    def set_calendars(self, args: dict) -> dict:
        ((name, body, _),) = self.jmap(
            [["Calendar/set", {"accountId": self.user.name, **args}, "s"]]
        )
        assert name == "Calendar/set", body
        for key in ("notCreated", "notUpdated", "notDestroyed"):
            assert not body.get(key), body
        return body

    def files(self, collection: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.root / collection).glob("*.ics"))}

    def mtimes(self) -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in self.root.rglob("*") if p.is_file()}


@pytest.fixture
def cyrus_pair(tmp_path: Path, cyrus_user) -> CyrusPair:
    h = CyrusPair(tmp_path, cyrus_user)
    h.root.mkdir()
    h.write_config()
    return h
