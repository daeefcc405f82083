"""Full listings (syncd.sync.remote.full_listing): a first download reads every id in
the request that takes the state and then gets the objects a page of ids at a time;
where the server gives only part of the listing at once, it reads /query pages, and a
result that moves between pages is read again rather than taken as deleting what slid
across a page boundary."""

from __future__ import annotations

from typing import Any

from tests.support.fakejmap import FakeTransport
from tests.sync.conftest import PairHarness
from tests.sync.test_engine import event

LIGHT = ["id", "uid", "updated", "calendarIds"]


def _event_calls(pair, method: str) -> list[dict[str, Any]]:
    return [
        args
        for request in pair.server.request_args
        for name, args in request
        if name == f"CalendarEvent/{method}"
    ]


def _gets_by_id(pair) -> list[list[str]]:
    return [args["ids"] for args in _event_calls(pair, "get") if args.get("ids")]


def test_a_first_download_takes_each_page_whole_without_a_light_listing(pair):
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    result = pair.sync()
    assert result.ok, result
    assert len(pair.files()) == 20
    gets = _event_calls(pair, "get")
    assert not any(args.get("properties") == LIGHT for args in gets)  # no light listing
    # One /query for every id, in the first request; then pages of objects by id, whole.
    queries = _event_calls(pair, "query")
    assert len(queries) == 1 and "limit" not in queries[0], queries
    assert not any("#ids" in args for args in gets)
    pages = _gets_by_id(pair)
    assert [len(p) for p in pages] == [7, 7, 6]
    assert all("properties" not in args for args in gets if args.get("ids"))
    assert sorted(i for p in pages for i in p) == sorted(pair.server.events)  # each id once
    # Once the journal knows the items, a full listing compares `updated` first again.
    pair.server.calendar_destroyed_at = pair.server.state + 1  # cannotCalculateChanges
    pair.server.request_args.clear()
    again = pair.sync()
    assert again.ok and again.changes == 0, again
    assert any(args.get("properties") == LIGHT for args in _event_calls(pair, "get"))


def test_a_first_download_asks_for_a_small_first_page_then_bigger_ones(pair, monkeypatch, tmp_path):
    # The first page is small so the conversion workers start early; the rest are
    # bigger, and no page is bigger than the server's maxObjectsInGet.
    monkeypatch.setattr("syncd.sync.remote.FIRST_PAGE", 2)
    monkeypatch.setattr("syncd.sync.remote.PAGE", 5)
    pair.server.max_objects_in_get = 7
    for i in range(18):
        pair.server.put_event(event(f"ev{i:02d}"))
    assert pair.sync().ok
    assert [len(p) for p in _gets_by_id(pair)] == [2, 5, 5, 5, 1]
    assert len(pair.files()) == 18

    monkeypatch.setattr("syncd.sync.remote.PAGE", 50)  # capped at maxObjectsInGet
    for i in range(18, 30):
        pair.server.put_event(event(f"ev{i:02d}"))
    fresh = PairHarness(tmp_path / "fresh", pair.server, FakeTransport(pair.server))
    fresh.root.mkdir(parents=True)
    fresh.write_config()
    pair.server.request_args.clear()
    assert fresh.sync().ok
    assert [len(p) for p in _gets_by_id(fresh)] == [2, 7, 7, 7, 7]
    assert len(fresh.files()) == 30


def test_a_first_download_misses_nothing_destroyed_or_made_while_it_reads(pair):
    # The listing is read at once; an object destroyed before its page is asked for
    # comes back in notFound and is left out, and one made after the listing comes in
    # the next pass's /changes.
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    done: list[str] = []

    def hook(request: dict[str, Any]):
        for name, args, _ in request.get("methodCalls", []):
            if name == "CalendarEvent/get" and args.get("ids") and not done:
                last = max(pair.server.events)
                pair.server.delete_event(last)
                pair.server.put_event(event("late"))
                done.append(last)
        return None

    pair.server.hooks.append(hook)
    result = pair.sync()
    assert result.ok, result
    assert len(done) == 1 and done[0] + ".ics" not in pair.files()
    assert len(pair.files()) == 19 and "late.ics" not in pair.files()
    pair.server.hooks.clear()
    assert pair.sync().ok
    on_server = {ev["uid"] for ev in pair.server.events.values()}
    assert {name.removesuffix(".ics") for name in pair.files()} == on_server
    assert len(on_server) == 20


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
    pair.server.query_limit = 7  # no listing at once: /query pages
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
    pair.server.query_limit = 7  # no listing at once: /query pages
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    assert pair.sync().ok
    pages = [args["position"] for args in _event_calls(pair, "query") if args.get("limit")]
    assert sorted(pages) == [0, 7, 14]  # each page once, none past the count


def test_a_first_download_announces_its_count_before_its_first_page(pair, monkeypatch):
    # The conversion workers start on the announcement, while the server prepares the
    # first page; later passes, which list nothing whole, announce nothing.
    from syncd.sync.prepare import Preparer

    monkeypatch.setattr("syncd.sync.engine.worker_count", lambda: 2)
    pair.server.max_objects_in_get = 7
    for i in range(20):
        pair.server.put_event(event(f"ev{i:02d}"))
    announced: list[tuple[int, int]] = []

    def expect(self, count: int) -> None:
        announced.append((count, len(_gets_by_id(pair))))

    monkeypatch.setattr(Preparer, "expect", expect)
    assert pair.sync().ok
    assert announced == [(20, 0)]
    pair.server.put_event(event("ev20"))
    assert pair.sync().ok
    assert len(announced) == 1


def test_a_server_that_will_not_count_still_gets_its_first_download(pair, monkeypatch):
    from syncd.sync.prepare import Preparer

    monkeypatch.setattr("syncd.sync.engine.worker_count", lambda: 2)
    announced: list[int] = []
    monkeypatch.setattr(Preparer, "expect", lambda self, count: announced.append(count))
    pair.server.refuse_counts = True  # no count, and no listing at once: /query pages
    pair.server.max_objects_in_get = 5
    for i in range(12):
        pair.server.put_event(event(f"ev{i:02d}"))
    result = pair.sync()
    assert result.ok, result
    assert len(pair.files()) == 12 and announced == []
    pages = [args["position"] for args in _event_calls(pair, "query") if args.get("limit")]
    assert sorted(pages) == [0, 5, 10]
