"""Full listings read in /query pages (syncd.sync.remote.full_listing): a first download
takes each page whole, and a result that moves between pages is read again rather than
taken as deleting what slid across a page boundary."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import served_pair
from tests.sync.test_engine import event

LIGHT = ["id", "uid", "updated", "calendarIds"]


def _event_calls(pair, method: str) -> list[dict[str, Any]]:
    return [
        args
        for request in pair.server.request_args
        for name, args in request
        if name == f"CalendarEvent/{method}"
    ]


def test_a_first_download_takes_each_page_whole_without_a_light_listing(pair):
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    result = pair.sync()
    assert result.ok, result
    assert len(pair.files()) == 20
    gets = _event_calls(pair, "get")
    assert not any(args.get("properties") == LIGHT for args in gets)  # no light listing
    paged = [args for args in gets if "#ids" in args]
    assert len(paged) == 3 and all("properties" not in args for args in paged)
    # Once the journal knows the items, a full listing compares `updated` first again.
    pair.server.calendar_destroyed_at = pair.server.state + 1  # cannotCalculateChanges
    pair.server.request_args.clear()
    again = pair.sync()
    assert again.ok and again.changes == 0, again
    assert any(args.get("properties") == LIGHT for args in _event_calls(pair, "get"))


def _destroy_between_pages(pair, times: int):
    """A hook that destroys the first event while the listing reads its second page: the
    result moves up by one, and the event at the start of page two slides into page one."""
    done = []

    def hook(request: dict[str, Any]):
        for name, args, _ in request.get("methodCalls", []):
            if name == "CalendarEvent/query" and args.get("position") and len(done) < times:
                first = min(pair.server.events)
                pair.server.delete_event(first)
                done.append(first)
        return None

    pair.server.hooks.append(hook)
    return done


def test_a_first_download_whose_result_moves_between_pages_misses_nothing(pair):
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    destroyed = _destroy_between_pages(pair, times=1)
    result = pair.sync()
    assert result.ok, result
    assert len(destroyed) == 1
    on_server = {ev["uid"] for ev in pair.server.events.values()}
    local = {name.removesuffix(".ics") for name in pair.files()}
    assert len(on_server) == 19 and local == on_server


def test_a_listing_that_keeps_moving_deletes_nothing_locally(pair):
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    assert pair.sync().ok
    before = set(pair.files())
    pair.server.calendar_destroyed_at = pair.server.state + 1  # the next pass lists all
    destroyed = _destroy_between_pages(pair, times=99)  # moves on every read
    result = pair.sync()
    assert result.ok, result
    assert len(destroyed) >= 3
    # No listing could be trusted, so nothing is taken as deleted on the server; what
    # really was destroyed goes the next pass, when /changes says so.
    assert set(pair.files()) == before
    pair.server.hooks.clear()
    assert pair.sync().ok
    on_server = {ev["uid"] for ev in pair.server.events.values()}
    assert {name.removesuffix(".ics") for name in pair.files()} == on_server


def test_a_server_that_answers_fewer_ids_than_asked_for_loses_and_repeats_nothing(pair):
    # Pages are asked for ahead at positions of maxObjectsInGet (7); a server capping
    # /query at 5 ids makes every page start 2 ids later than the one asked for ahead.
    pair.server.max_objects_in_get = 7
    pair.server.query_limit = 5
    for i in range(23):
        pair.server.put_event(event(f"ev{i:02d}"))
    assert pair.sync().ok
    on_server = {ev["uid"] for ev in pair.server.events.values()}
    assert {name.removesuffix(".ics") for name in pair.files()} == on_server
    assert len(on_server) == 23
    # A full listing (light, then the changed objects) in short pages deletes nothing.
    pair.server.calendar_destroyed_at = pair.server.state + 1  # cannotCalculateChanges
    again = pair.sync()
    assert again.ok and again.changes == 0, again
    assert len(pair.files()) == 23


def test_a_listing_asks_for_each_page_once_and_none_past_the_count(pair):
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    assert pair.sync().ok
    pages = [args["position"] for args in _event_calls(pair, "query") if args.get("limit")]
    assert sorted(pages) == [0, 7, 14]  # each page once, none past the count


@pytest.mark.parametrize("via", ["syncd sync", "the daemon's transport"])
@pytest.mark.parametrize("concurrent", [4, 1])
def test_the_first_pages_are_on_their_way_at_once_as_far_as_the_server_allows(
    tmp_path, via, concurrent
):
    # Over real HTTP: the server holds the first page's answer until the second page is
    # asked for (or a while), and notes which it was.  With maxConcurrentRequests 1 the
    # second page must not be asked for before the first is answered.
    server = FakeJmapServer(max_objects_in_get=7, max_concurrent_requests=concurrent)
    for i in range(20):
        server.put_event(event(f"ev{i:02d}"))
    second_asked = threading.Event()
    first_waited_for_second: list[bool] = []

    def hook(request: dict[str, Any]):
        for name, args, _ in request.get("methodCalls", []):
            if name == "CalendarEvent/query" and args.get("limit"):
                if args.get("position") == 7:
                    second_asked.set()
                elif args.get("position") == 0:
                    wait = 10 if concurrent > 1 else 0.5
                    first_waited_for_second.append(second_asked.wait(timeout=wait))
        return None

    server.hooks.append(hook)
    with served_pair(tmp_path, server) as h:
        if via == "syncd sync":
            code, _, err = h.cli("sync")
            assert code == 0, err
        else:
            assert h.sync().ok
        local = {p.stem for p in h.root.glob("*/*.ics")}
    assert local == {f"ev{i:02d}" for i in range(20)}
    assert first_waited_for_second == [concurrent > 1]


def test_a_first_download_announces_its_count_once_its_first_pages_are_asked_for(pair, monkeypatch):
    # The workers start on the announcement, which blocks this process for a moment:
    # the first pages must be on their way by then, so that the server works meanwhile.
    from syncd.sync.prepare import Preparer

    monkeypatch.setattr("syncd.sync.engine.worker_count", lambda: 2)
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    announced: list[tuple[int, list[int]]] = []

    def expect(self, count: int) -> None:
        asked = [args["position"] for args in _event_calls(pair, "query") if args.get("limit")]
        announced.append((count, asked))

    monkeypatch.setattr(Preparer, "expect", expect)
    assert pair.sync().ok
    assert announced == [(20, [0, 7])]
    # A later pass lists nothing whole, and announces nothing.
    pair.server.put_event(event("ev20"))
    assert pair.sync().ok
    assert len(announced) == 1
