"""Finding the JMAP session: autodiscovery, redirects, auth, capabilities, limits.

The configured URL may be a base URL (``https://host``), the well-known URL, or
the session URL itself; servers answer relative ``apiUrl``/``eventSourceUrl``
(Cyrus 3.12 does) which are resolved against the URL the session came from.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from syncd.jmap.errors import AuthError, SessionError
from syncd.jmap.transport import Transport, TransportError

CORE = "urn:ietf:params:jmap:core"
CALENDARS = "urn:ietf:params:jmap:calendars"
TASKS = "urn:ietf:params:jmap:tasks"


@dataclass(frozen=True)
class Limits:
    """Core limits the client batches against (RFC 8620 2, core capability)."""

    max_objects_in_get: int = 500
    max_objects_in_set: int = 500
    max_calls_in_request: int = 16
    max_size_request: int = 10_000_000

    @classmethod
    def from_capability(cls, cap: Mapping[str, Any]) -> Limits:
        def num(key: str, default: int) -> int:
            value = cap.get(key)
            return int(value) if isinstance(value, int) and value > 0 else default

        return cls(
            max_objects_in_get=num("maxObjectsInGet", cls.max_objects_in_get),
            max_objects_in_set=num("maxObjectsInSet", cls.max_objects_in_set),
            max_calls_in_request=num("maxCallsInRequest", cls.max_calls_in_request),
            max_size_request=num("maxSizeRequest", cls.max_size_request),
        )


@dataclass(frozen=True)
class Session:
    """The parts of a JMAP session object that syncd uses."""

    url: str
    api_url: str
    event_source_url: str | None
    account_id: str
    capabilities: Mapping[str, Any]
    account_capabilities: Mapping[str, Any]
    limits: Limits
    state: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    server_date: float | None = None  # the Date header of the session response (epoch s)

    @property
    def has_calendars(self) -> bool:
        return CALENDARS in self.account_capabilities or CALENDARS in self.capabilities

    @property
    def has_tasks(self) -> bool:
        return TASKS in self.account_capabilities or TASKS in self.capabilities


def auth_headers(username: str | None, secret: str | None) -> dict[str, str]:
    """Basic with a username, Bearer without one (the secret is then a token)."""
    if secret is None:
        return {}
    if username:
        token = base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    return {"Authorization": f"Bearer {secret}"}


def candidate_urls(url: str) -> list[str]:
    """Where to look for the session, in order.

    A bare origin means autodiscovery (RFC 8620 2.2); anything with a path is
    tried as given first, then the origin's well-known URL as a fallback.
    """
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    well_known = origin + "/.well-known/jmap"
    if parts.path in ("", "/"):
        return [well_known]
    if parts.path.rstrip("/") == "/.well-known/jmap":
        return [well_known]
    return [url, well_known]


async def discover(
    transport: Transport,
    url: str,
    headers: Mapping[str, str],
    *,
    account_id: str | None = None,
    known_session_url: str | None = None,
) -> Session:
    """Fetch and parse the session, following redirects and the fallbacks above.

    ``known_session_url`` is where the session was found last time: trying it first
    saves the well-known redirect (one round trip of every ``syncd sync``).
    """
    last_problem = ""
    candidates = candidate_urls(url)
    if known_session_url and known_session_url not in candidates:
        candidates.insert(0, known_session_url)
    for candidate in candidates:
        try:
            resp = await transport.request(
                "GET", candidate, headers={**headers, "Accept": "application/json"}
            )
        except TransportError as exc:
            raise SessionError(str(exc)) from None
        if resp.status in (401, 403):
            raise AuthError(
                f"the server at {candidate} refused the credentials (HTTP {resp.status}); "
                "check the username and password (or token)"
            )
        if resp.status != 200:
            last_problem = f"{candidate} answered HTTP {resp.status}"
            continue
        try:
            data = json.loads(resp.body)
        except ValueError:
            last_problem = f"{candidate} did not answer JSON"
            continue
        if not isinstance(data, dict) or "apiUrl" not in data:
            last_problem = f"{candidate} answered JSON that is not a JMAP session"
            continue
        session = parse_session(data, resp.url, account_id=account_id)
        return dataclasses.replace(session, server_date=http_date(resp.headers.get("date")))
    raise SessionError(f"no JMAP session found at {url}: {last_problem}")


def parse_session(data: Mapping[str, Any], session_url: str, *, account_id: str | None) -> Session:
    """Pure: session JSON + the URL it came from -> Session."""
    caps = data.get("capabilities") or {}
    accounts = data.get("accounts") or {}
    primary = data.get("primaryAccounts") or {}
    chosen = account_id or primary.get(CALENDARS) or primary.get(TASKS) or primary.get(CORE)
    if chosen is None and len(accounts) == 1:
        chosen = next(iter(accounts))
    if chosen is None:
        raise SessionError(
            "the session has several accounts and none is primary for calendars; "
            f"set account_id to one of: {', '.join(sorted(accounts))}"
        )
    if chosen not in accounts:
        raise SessionError(
            f"account_id {chosen!r} is not in the session; available: {', '.join(sorted(accounts))}"
        )
    account = accounts[chosen] or {}
    api_url = urljoin(session_url, str(data["apiUrl"]))
    es = data.get("eventSourceUrl")
    return Session(
        url=session_url,
        api_url=api_url,
        event_source_url=urljoin(session_url, str(es)) if es else None,
        account_id=str(chosen),
        capabilities=caps,
        account_capabilities=account.get("accountCapabilities") or {},
        limits=Limits.from_capability(caps.get(CORE) or {}),
        state=data.get("state"),
        raw=data,
    )


def http_date(value: str | None) -> float | None:
    """An HTTP Date header as epoch seconds; None when absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
