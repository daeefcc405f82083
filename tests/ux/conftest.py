"""The engine tests' pair (in-memory JMAP server) and a real-HTTP one, for the UX tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fakejmap import FakeJmapServer
from tests.support.httpfake import FaultyJmapHttpServer
from tests.sync.conftest import PairHarness, pair  # noqa: F401  (the fixture)


def event(uid: str, title: str = "Meeting", **extra) -> dict:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": "2026-03-01T10:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        **extra,
    }


@pytest.fixture
def http_server():
    """The in-memory server behind real HTTP on loopback, for commands run as users do."""
    server = FakeJmapServer()
    http = FaultyJmapHttpServer(server)
    yield http
    http.close()


def write_config(tmp: Path, url: str, *, password: str = "secret", extra: str = "") -> Path:
    path = tmp / "config.yaml"
    (tmp / "vdir").mkdir(exist_ok=True)
    path.write_text(
        "accounts:\n"
        "  home:\n"
        f"    url: {url}\n"
        "    username: alice\n"
        f"    password: {password}\n"
        "pairs:\n"
        "  cal:\n"
        "    account: home\n"
        f"    local: {tmp / 'vdir'}\n"
        f"{extra}"
        f"state_dir: {tmp / 'state'}\n"
    )
    path.chmod(0o600)
    return path
