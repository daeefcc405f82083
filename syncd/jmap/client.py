"""JMAP requests: many method calls per HTTP request, back-references, batching.

The client knows the JMAP core protocol (RFC 8620 3) and nothing of calendars;
``syncd.jmap.calendars`` builds calendar-specific calls on top of it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import anyio

from syncd.jmap.errors import AuthError, MethodError, RequestError
from syncd.jmap.session import CALENDARS, CORE, Session, http_date
from syncd.jmap.transport import Transport, TransportError

log = logging.getLogger("syncd.jmap")

RETRY_STATUSES = {429, 502, 503, 504}


@dataclass
class Call:
    """One method call of a request; ``id`` is the method call id."""

    name: str
    args: dict[str, Any]
    id: str


@dataclass
class Request:
    """A builder for one JMAP request; back-references name earlier calls."""

    calls: list[Call] = field(default_factory=list)

    def add(self, name: str, args: dict[str, Any]) -> str:
        call_id = f"c{len(self.calls)}"
        self.calls.append(Call(name, args, call_id))
        return call_id

    def __len__(self) -> int:
        return len(self.calls)


def ref(call_id: str, name: str, path: str) -> dict[str, str]:
    """A ResultReference (RFC 8620 3.7), used as ``{"#ids": ref(...)}``."""
    return {"resultOf": call_id, "name": name, "path": path}


@dataclass
class Responses:
    """Method responses of one request, looked up by call id."""

    by_id: dict[str, list[tuple[str, dict[str, Any]]]]
    session_state: str | None = None

    def get(self, call_id: str, name: str | None = None) -> dict[str, Any]:
        """The (first) response of a call, raising MethodError for an ``error``."""
        for resp_name, args in self.by_id.get(call_id, []):
            if resp_name == "error":
                raise MethodError(
                    name or call_id, str(args.get("type")), args.get("description"), args
                )
            if name is None or resp_name == name:
                return args
        raise RequestError(f"the server gave no {name or 'response'} for call {call_id}")

    def error(self, call_id: str) -> dict[str, Any] | None:
        """The error arguments of a call, or None when it succeeded."""
        for resp_name, args in self.by_id.get(call_id, []):
            if resp_name == "error":
                return args
        return None


@dataclass
class JmapClient:
    """One account's API endpoint; ``headers`` carry auth and are never logged."""

    transport: Transport
    session: Session
    headers: Mapping[str, str]
    using: tuple[str, ...] = (CORE, CALENDARS)
    max_retries: int = 3
    last_server_date: float | None = None  # Date of the latest answer (server clock)
    # Which JSCalendar the server's calendar objects are in: the account's `jscalendar`
    # setting, and under "auto" what syncd.sync.remote found out (kept here so that a
    # daemon finds out once per connection, not once per pass).
    jscalendar: str = "auto"
    jscalendar_found: str | None = None

    def __post_init__(self) -> None:
        if self.last_server_date is None:
            self.last_server_date = self.session.server_date

    @property
    def account_id(self) -> str:
        return self.session.account_id

    def sibling(self) -> JmapClient | None:
        """A client for requests sent while this one's are, over a connection of its
        own; None where the transport cannot make one (then requests go one by one)."""
        make = getattr(self.transport, "sibling", None)
        return None if make is None else dataclasses.replace(self, transport=make())

    @property
    def limits(self):  # type: ignore[no-untyped-def]
        return self.session.limits

    async def send(self, request: Request) -> Responses:
        """POST one request; retries only what the server said it did not process."""
        if len(request) > self.session.limits.max_calls_in_request:
            raise ValueError("request has more calls than maxCallsInRequest; split it first")
        body = json.dumps(
            {
                "using": list(self.using),
                "methodCalls": [[c.name, c.args, c.id] for c in request.calls],
            },
            separators=(",", ":"),
        ).encode()
        names = ", ".join(sorted({c.name for c in request.calls}))
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self.transport.request(
                    "POST",
                    self.session.api_url,
                    headers={
                        **self.headers,
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                    },
                    body=body,
                )
            except TransportError as exc:
                # Without an answer we cannot know whether a /set was applied; reads are safe to repeat.
                if attempt <= self.max_retries and not _has_set(request):
                    await anyio.sleep(_backoff(attempt))
                    continue
                raise RequestError(f"{names}: {exc}") from None
            if resp.status in (401, 403):
                raise AuthError(
                    f"the server refused the credentials for {self.session.api_url} "
                    f"(HTTP {resp.status}); check the password or token"
                )
            if resp.status in RETRY_STATUSES:
                retry_after = _retry_after(resp.headers.get("retry-after"))
                if attempt <= self.max_retries:
                    delay = retry_after if retry_after is not None else _backoff(attempt)
                    log.info("%s: HTTP %s, retrying in %.1f s", names, resp.status, delay)
                    await anyio.sleep(min(delay, 300.0))
                    continue
                raise RequestError(
                    f"{names}: the server answered HTTP {resp.status} {attempt} times; try again later",
                    status=resp.status,
                    retry_after=retry_after,
                )
            if resp.status != 200:
                raise RequestError(
                    f"{names}: {_problem(resp.status, resp.body)}", status=resp.status
                )
            self.last_server_date = http_date(resp.headers.get("date")) or self.last_server_date
            return _parse_responses(resp.body, names)

    async def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """One call, one request: for the rare single-method cases."""
        req = Request()
        cid = req.add(name, args)
        return (await self.send(req)).get(cid, name)

    async def send_all(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Responses]:
        """Independent calls, packed into as few requests as the limits allow."""
        out: list[Responses] = []
        for chunk in chunks(calls, self.session.limits.max_calls_in_request):
            req = Request()
            for name, args in chunk:
                req.add(name, args)
            out.append(await self.send(req))
        return out

    async def get_objects(
        self, type_: str, ids: Sequence[str], properties: list[str] | None = None
    ) -> tuple[list[dict[str, Any]], list[str], str | None]:
        """``Type/get`` for any number of ids: (objects, notFound, state of the last batch)."""
        calls = []
        for batch in chunks(ids, self.session.limits.max_objects_in_get):
            args: dict[str, Any] = {"accountId": self.account_id, "ids": list(batch)}
            if properties is not None:
                args["properties"] = properties
            calls.append((f"{type_}/get", args))
        found: list[dict[str, Any]] = []
        missing: list[str] = []
        state = None
        for responses in await self.send_all(calls):
            for call_id in sorted(responses.by_id, key=_call_order):
                got = responses.get(call_id, f"{type_}/get")
                found.extend(got.get("list") or [])
                missing.extend(got.get("notFound") or [])
                state = got.get("state", state)
        return found, missing, state


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    size = max(1, size)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _call_order(call_id: str) -> int:
    try:
        return int(call_id.lstrip("c"))
    except ValueError:
        return 0


def _has_set(request: Request) -> bool:
    return any(c.name.endswith("/set") for c in request.calls)


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _problem(status: int, body: bytes) -> str:
    """Summarise an RFC 7807 problem answer without echoing large bodies."""
    try:
        data = json.loads(body)
    except ValueError:
        return f"HTTP {status}"
    if isinstance(data, dict):
        kind = str(data.get("type", "")).rsplit(":", 1)[-1]
        detail = data.get("detail") or data.get("title") or ""
        return f"HTTP {status} {kind} {detail}".strip()
    return f"HTTP {status}"


def _parse_responses(body: bytes, names: str) -> Responses:
    try:
        data = json.loads(body)
    except ValueError:
        raise RequestError(f"{names}: the server's answer is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("methodResponses"), list):
        raise RequestError(f"{names}: the server's answer has no methodResponses")
    by_id: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for item in data["methodResponses"]:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[1], dict)):
            raise RequestError(f"{names}: malformed method response {str(item)[:80]}")
        by_id.setdefault(str(item[2]), []).append((str(item[0]), item[1]))
    return Responses(by_id, data.get("sessionState"))
