"""From an account in the config to a ready JMAP client (credentials, session, limits)."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from syncd.config import Account, Secret
from syncd.errors import SyncdError
from syncd.jmap.client import JmapClient
from syncd.jmap.errors import JmapError
from syncd.jmap.session import CALENDARS, CORE, TASKS, auth_headers, discover
from syncd.jmap.stdtransport import StdlibTransport
from syncd.jmap.transport import NiquestsTransport, Transport
from syncd.logsetup import register_basic_auth, register_secret
from syncd.records import read_record, write_record


class ConnectError(SyncdError):
    """The account could not be reached or used; the message says which and why."""


async def connect(
    account: Account,
    transport: Transport | None = None,
    *,
    oneshot: bool = False,
    state_dir: Path | None = None,
) -> JmapClient:
    """Resolve the secret, discover the session and check it can do calendars.

    ``oneshot`` (``syncd sync``, ``discover``, ``check``): a command that talks briefly and
    exits gets the standard-library transport, which starts 0.3 s faster than niquests.
    With ``state_dir``, the session URL found by autodiscovery is remembered there and
    tried first next time (the session itself is always fetched fresh).
    """
    secret = account.resolve_secret()
    headers = credential_headers(account, secret)
    transport = transport or make_transport(account, oneshot=oneshot)
    try:
        known = _known_session_url(state_dir, account) if state_dir else None
        session = await discover(
            transport,
            account.url,
            headers,
            account_id=account.account_id,
            known_session_url=known,
        )
    except JmapError as exc:
        raise ConnectError(f"account {account.name}: {exc}") from None
    if not session.has_calendars:
        raise ConnectError(
            f"account {account.name}: the server at {session.url} does not offer JMAP calendars "
            f"({CALENDARS}); it offers: {', '.join(sorted(session.capabilities))}"
        )
    if state_dir is not None and session.url != known:
        _remember_session_url(state_dir, account, session.url)
    using = (CORE, CALENDARS) + ((TASKS,) if session.has_tasks else ())
    return JmapClient(transport, session, headers, using=using, jscalendar=account.jscalendar)


def credential_headers(account: Account, secret: Secret | None) -> dict[str, str]:
    """The Authorization header for an account; from here on its secret (and the Basic
    form it travels in) is masked in every log record."""
    revealed = secret.reveal() if secret is not None else None
    if revealed:
        if account.username:
            register_basic_auth(account.username, revealed)
        else:
            register_secret(revealed)
    return auth_headers(account.username, revealed)


def make_transport(account: Account, *, oneshot: bool, timeout: float = 60.0) -> Transport:
    """The daemon's niquests, or for a short command the standard library's http.client
    (starts 0.3 s faster); TLS verified either way, with the account's CA bundle."""
    verify = account.ca_bundle or True
    if oneshot:
        return StdlibTransport(verify=verify, timeout=timeout)
    return NiquestsTransport(verify=verify, timeout=timeout)


SESSION_URLS = "session-urls.json"


def _account_key(account: Account) -> str:
    """Which configured account a remembered URL belongs to (no secret goes into it)."""
    return hashlib.sha256(f"{account.url}\0{account.username or ''}".encode()).hexdigest()[:24]


def _known_session_url(state_dir: Path, account: Account) -> str | None:
    url = read_record(state_dir / SESSION_URLS).get(_account_key(account))
    if not isinstance(url, str):
        return None
    # Credentials go only where the config points: same scheme, host and port.
    mine, theirs = urlsplit(account.url), urlsplit(url)
    same_origin = (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)
    return url if same_origin and theirs.scheme in ("http", "https") else None


def _remember_session_url(state_dir: Path, account: Account, url: str) -> None:
    """Best effort: a read-only or full state dir only costs the redirect next time."""
    path = state_dir / SESSION_URLS
    data = read_record(path)
    data[_account_key(account)] = url
    with contextlib.suppress(OSError):
        write_record(path, data)
