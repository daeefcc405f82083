"""A first download's pages over real HTTP (syncd.sync.remote._get_listed): ``syncd
sync`` and the daemon read them over two connections, so the server makes one page
while syncd reads the one before, and a page that fails fails the pass as a single
request would."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import served_pair
from tests.sync.test_engine import event


@pytest.fixture
def calendar_pair(tmp_path: Path):
    server = FakeJmapServer(max_objects_in_get=4)
    server.event_source = False
    with served_pair(tmp_path, server) as h:
        h.write_config(types="events")
        yield h


def _put_events(h, n: int) -> None:
    for i in range(n):
        h.server.put_event(event(f"ev{i:02d}"))


def test_a_first_download_reads_its_pages_over_two_connections(calendar_pair):
    h = calendar_pair
    _put_events(h, 30)
    code, _, err = h.cli("sync")
    assert code == 0, err
    assert sorted(h.files("personal")) == [f"ev{i:02d}.ics" for i in range(30)]
    # The listing, then 8 pages of at most 4 (the server's maxObjectsInGet).
    assert len(h.http.seen) == 9
    assert len(set(h.http.peers[1:])) == 2, h.http.peers
    # Each object was asked for once.
    asked = [i for args in _event_gets(h) for i in args["ids"]]
    assert sorted(asked) == sorted(h.server.events)
    # The next pass asks /changes only: the state was taken with the listing.
    h.http.seen.clear()
    code, out, err = h.cli("sync")
    assert code == 0, err
    assert len(h.http.seen) == 1


def test_the_daemons_transport_reads_a_first_download_over_two_connections_too(calendar_pair):
    # run_pair as the daemon runs it, with niquests (connect's default outside commands).
    h = calendar_pair
    _put_events(h, 30)
    result = h.sync()
    assert result.ok, result
    assert sorted(h.files("personal")) == [f"ev{i:02d}.ics" for i in range(30)]
    assert len(h.http.seen) == 9
    assert len(set(h.http.peers[1:])) == 2, h.http.peers
    assert h.sync().changes == 0


def _event_gets(h) -> list[dict]:
    return [
        args
        for request in h.server.request_args
        for name, args in request
        if name == "CalendarEvent/get" and args.get("ids")
    ]


def test_a_page_that_keeps_failing_fails_the_pass_plainly_and_the_next_one_recovers(
    calendar_pair, monkeypatch
):
    monkeypatch.setattr("syncd.jmap.client._backoff", lambda attempt: 0.0)
    h = calendar_pair
    _put_events(h, 30)
    # The listing and one page are answered; every later request fails, on either
    # connection, more often than the client retries.
    h.http.faults.extend([None, None] + ["500"] * 40)
    code, out, err = h.cli("sync")
    assert code != 0
    assert "HTTP 500" in out + err, out + err
    assert "ExceptionGroup" not in out + err and "Traceback" not in out + err
    assert not h.files("personal")  # nothing written from a download that did not finish
    h.http.faults.clear()
    code, _, err = h.cli("sync")
    assert code == 0, err
    assert len(h.files("personal")) == 30


def test_what_stops_the_page_readers_is_raised_as_one_reader_would_have():
    import asyncio

    from syncd.jmap.errors import RequestError
    from syncd.sync.remote import _first_failure

    async def check() -> None:  # in the event loop, as the pass calls it
        failure = RequestError("CalendarEvent/get: the server answered HTTP 500 4 times")
        stopped = asyncio.CancelledError()
        group = BaseExceptionGroup("", [stopped, BaseExceptionGroup("", [failure])])
        assert _first_failure(group) is failure
        # The pass itself cancelled: still a cancellation, not a group nobody expects.
        only = asyncio.CancelledError()
        assert _first_failure(BaseExceptionGroup("", [only, asyncio.CancelledError()])) is only

    anyio.run(check)
