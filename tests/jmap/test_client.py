"""Session discovery, auth, batching and error mapping against the in-memory server."""

from __future__ import annotations

import json

import anyio
import pytest

from syncd.jmap.client import JmapClient, Request, ref
from syncd.jmap.errors import AuthError, MethodError, RequestError, SessionError
from syncd.jmap.session import auth_headers, candidate_urls, discover, parse_session
from syncd.jmap.transport import HttpResponse
from tests.support.fakejmap import FakeJmapServer, FakeTransport


def run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


def make(server: FakeJmapServer | None = None):
    server = server or FakeJmapServer()
    transport = FakeTransport(server)
    headers = auth_headers(server.username, server.password)
    return server, transport, headers


def test_candidate_urls_cover_base_well_known_and_session():
    assert candidate_urls("https://h") == ["https://h/.well-known/jmap"]
    assert candidate_urls("https://h/") == ["https://h/.well-known/jmap"]
    assert candidate_urls("https://h/.well-known/jmap") == ["https://h/.well-known/jmap"]
    assert candidate_urls("https://h/jmap/session") == [
        "https://h/jmap/session",
        "https://h/.well-known/jmap",
    ]


def test_relative_urls_resolve_against_the_session_url():
    server = FakeJmapServer()
    session = parse_session(server.session(), "https://h/jmap/session", account_id=None)
    assert session.api_url == "https://h/jmap/api/"
    assert session.event_source_url.startswith("https://h/jmap/eventsource/?types={types}")
    assert session.limits.max_objects_in_get == 4096
    assert session.account_id == "a1"


def test_account_selection_errors_name_the_choices():
    data = FakeJmapServer().session()
    with pytest.raises(SessionError, match="a1"):
        parse_session(data, "https://h/", account_id="nope")
    data["primaryAccounts"] = {}
    data["accounts"]["a2"] = {}
    with pytest.raises(SessionError, match="account_id"):
        parse_session(data, "https://h/", account_id=None)


def test_discover_from_base_url_and_bearer_vs_basic():
    server, transport, headers = make()
    session = run(discover, transport, "https://jmap.test", headers)
    assert session.url == "https://jmap.test/jmap/session"
    assert auth_headers(None, "tok") == {"Authorization": "Bearer tok"}
    assert auth_headers("u", "p")["Authorization"].startswith("Basic ")


def test_wrong_password_is_an_auth_error_without_the_secret():
    server, transport, _ = make()
    with pytest.raises(AuthError) as info:
        run(discover, transport, "https://jmap.test", auth_headers("alice", "hunter2"))
    assert "hunter2" not in str(info.value)


def test_back_references_chain_calls_in_one_request():
    server, transport, headers = make()
    for i in range(3):
        server.put_event({"uid": f"u{i}", "title": f"t{i}"})

    async def go():
        session = await discover(transport, "https://jmap.test", headers)
        client = JmapClient(transport, session, headers)
        req = Request()
        q = req.add("CalendarEvent/query", {"accountId": "a1"})
        g = req.add(
            "CalendarEvent/get", {"accountId": "a1", "#ids": ref(q, "CalendarEvent/query", "/ids")}
        )
        res = await client.send(req)
        return res.get(g, "CalendarEvent/get")

    got = run(go)
    assert sorted(e["uid"] for e in got["list"]) == ["u0", "u1", "u2"]
    assert server.requests[-1] == ["CalendarEvent/query", "CalendarEvent/get"]


def test_get_objects_batches_by_limits():
    server = FakeJmapServer(max_objects_in_get=3, max_calls_in_request=2)
    server, transport, headers = make(server)
    ids = [server.put_event({"uid": f"u{i}"}) for i in range(10)]

    async def go():
        session = await discover(transport, "https://jmap.test", headers)
        client = JmapClient(transport, session, headers)
        return await client.get_objects("CalendarEvent", ids + ["missing"])

    found, missing, state = run(go)
    assert sorted(o["id"] for o in found) == sorted(ids)
    assert missing == ["missing"]
    api_requests = server.requests
    assert len(api_requests) == 2  # 4 gets of <= 3 ids, 2 calls per request
    assert all(len(r) <= 2 for r in api_requests)


def test_method_error_is_raised_with_its_type():
    server, transport, headers = make()

    async def go():
        session = await discover(transport, "https://jmap.test", headers)
        client = JmapClient(transport, session, headers)
        await client.call("CalendarEvent/changes", {"accountId": "a1", "sinceState": "x"})

    with pytest.raises(MethodError) as info:
        run(go)
    assert info.value.type == "cannotCalculateChanges"


def test_429_with_retry_after_is_honoured(monkeypatch):
    server, transport, headers = make()
    answers = [HttpResponse(429, {"retry-after": "2"}, b"", "x")]
    server.hooks.append(lambda req: answers.pop() if answers else None)
    slept: list[float] = []

    async def fake_sleep(delay):
        slept.append(delay)

    monkeypatch.setattr("syncd.jmap.client.anyio.sleep", fake_sleep)

    async def go():
        session = await discover(transport, "https://jmap.test", headers)
        client = JmapClient(transport, session, headers)
        return await client.call("Calendar/get", {"accountId": "a1"})

    got = run(go)
    assert got["list"][0]["id"] == "Default"
    assert slept == [2.0]


def test_malformed_json_is_a_clear_request_error():
    server, transport, headers = make()
    server.hooks.append(lambda req: HttpResponse(200, {}, b"{not json", "x"))

    async def go():
        session = await discover(transport, "https://jmap.test", headers)
        client = JmapClient(transport, session, headers)
        await client.call("Calendar/get", {"accountId": "a1"})

    with pytest.raises(RequestError, match="not valid JSON"):
        run(go)


def test_persistent_503_gives_up_with_a_message(monkeypatch):
    server, transport, headers = make()
    server.hooks.append(
        lambda req: HttpResponse(503, {}, json.dumps({"detail": "down"}).encode(), "x")
    )

    async def no_sleep(delay):
        return None

    monkeypatch.setattr("syncd.jmap.client.anyio.sleep", no_sleep)

    async def go():
        session = await discover(transport, "https://jmap.test", headers)
        client = JmapClient(transport, session, headers)
        await client.call("Calendar/get", {"accountId": "a1"})

    with pytest.raises(RequestError, match="503"):
        run(go)


def test_remembered_session_url_is_tried_first_and_only_on_the_configured_origin(tmp_path):
    from syncd.config import Account, PasswordSource, Secret
    from syncd.connect import SESSION_URLS, _account_key, connect

    server, transport, _ = make()
    seen: list[str] = []
    real = transport.request

    async def recording(method, url, **kw):
        seen.append(url)
        return await real(method, url, **kw)

    transport.request = recording  # type: ignore[method-assign]
    account = Account(
        name="home",
        url="https://jmap.test",
        username=server.username,
        password_source=PasswordSource("literal", Secret(server.password)),
        account_id=None,
        ca_bundle=None,
        allow_insecure_http=False,
    )
    run(lambda: connect(account, transport, state_dir=tmp_path))
    assert seen == ["https://jmap.test/.well-known/jmap"]
    stored = json.loads((tmp_path / SESSION_URLS).read_text())
    assert stored == {_account_key(account): "https://jmap.test/jmap/session"}
    assert server.password not in (tmp_path / SESSION_URLS).read_text()
    seen.clear()
    run(lambda: connect(account, transport, state_dir=tmp_path))
    assert seen == ["https://jmap.test/jmap/session"]
    # A remembered URL on another origin (a tampered or stale file) never gets credentials.
    (tmp_path / SESSION_URLS).write_text(json.dumps({_account_key(account): "https://evil.test/s"}))
    seen.clear()
    run(lambda: connect(account, transport, state_dir=tmp_path))
    assert seen == ["https://jmap.test/.well-known/jmap"]
