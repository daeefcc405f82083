"""From an account in the config to a ready JMAP client (credentials, session, limits)."""

from __future__ import annotations

from syncd.config import Account
from syncd.errors import SyncdError
from syncd.jmap.client import JmapClient
from syncd.jmap.errors import JmapError
from syncd.jmap.session import CALENDARS, CORE, TASKS, auth_headers, discover
from syncd.jmap.stdtransport import StdlibTransport
from syncd.jmap.transport import NiquestsTransport, Transport
from syncd.logsetup import register_basic_auth, register_secret


class ConnectError(SyncdError):
    """The account could not be reached or used; the message says which and why."""


async def connect(
    account: Account, transport: Transport | None = None, *, oneshot: bool = False
) -> JmapClient:
    """Resolve the secret, discover the session and check it can do calendars.

    ``oneshot`` (``syncd sync``, ``discover``, ``check``): a command that talks briefly and
    exits gets the standard-library transport, which starts 0.3 s faster than niquests.
    """
    secret = account.resolve_secret()
    revealed = secret.reveal() if secret is not None else None
    if revealed:
        if account.username:
            register_basic_auth(account.username, revealed)
        else:
            register_secret(revealed)
    headers = auth_headers(account.username, revealed)
    if transport is None:
        verify = account.ca_bundle or True
        transport = StdlibTransport(verify=verify) if oneshot else NiquestsTransport(verify=verify)
    try:
        session = await discover(transport, account.url, headers, account_id=account.account_id)
    except JmapError as exc:
        raise ConnectError(f"account {account.name}: {exc}") from None
    if not session.has_calendars:
        raise ConnectError(
            f"account {account.name}: the server at {session.url} does not offer JMAP calendars "
            f"({CALENDARS}); it offers: {', '.join(sorted(session.capabilities))}"
        )
    using = (CORE, CALENDARS) + ((TASKS,) if session.has_tasks else ())
    return JmapClient(transport, session, headers, using=using)
