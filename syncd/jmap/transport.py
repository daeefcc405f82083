"""The wire, kept behind one small interface.

The JMAP client never touches niquests directly: it hands a request to a
``Transport`` and gets bytes back.  Tests swap the transport (or put a fault
proxy behind it) without monkeypatching, and the transport is the one place
that counts requests and bytes for the benchmarks.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from syncd.jmap import quickack

if TYPE_CHECKING:
    import niquests


@dataclass(frozen=True)
class HttpResponse:
    """What the client needs of an HTTP answer: status, headers, body, final URL."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


class TransportError(Exception):
    """The request did not produce an HTTP answer (DNS, refused, reset, timeout, TLS)."""


class Transport(Protocol):
    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse: ...

    async def aclose(self) -> None: ...


@dataclass
class TrafficCounter:
    """Requests and bytes that went over one transport (for benchmarks and tests)."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, requests: int = 0, sent: int = 0, received: int = 0) -> None:
        """Counted from transport threads that may run at the same time (``+=`` on an
        attribute is a read and a write: two threads could lose one of their counts)."""
        with self._lock:
            self.requests += requests
            self.bytes_sent += sent
            self.bytes_received += received


@dataclass
class NiquestsTransport:
    """HTTP/1.1 or HTTP/2 over niquests, TLS verification always on.

    ``verify`` is True or a CA bundle path for self-hosted servers; there is
    deliberately no way to switch verification off.
    """

    verify: bool | str = True
    timeout: float = 60.0
    counter: TrafficCounter = field(default_factory=TrafficCounter)
    _session: niquests.AsyncSession | None = None

    def _get_session(self) -> niquests.AsyncSession:
        import niquests  # 0.3-0.4 s: only for the daemon and callers that choose this transport

        if self._session is None:
            # Quiet retries off: the client decides what is safe to retry.
            self._session = niquests.AsyncSession(retries=0, disable_http3=True)
        return self._session

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse:
        import niquests

        session = self._get_session()
        self.counter.add(requests=1, sent=len(body or b""))
        try:
            resp = await session.request(
                method,
                url,
                headers=dict(headers),
                data=body,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=True,
                stream=True,  # the body is read below, once acknowledgements are immediate
            )
            content = await _read_body(resp)
        except niquests.exceptions.RequestException as exc:
            raise TransportError(_describe(exc, url)) from None
        self.counter.add(received=len(content))
        return HttpResponse(
            status=resp.status_code or 0,
            headers={k.lower(): v for k, v in resp.headers.items()},
            body=content,
            url=str(resp.url or url),
        )

    def sibling(self) -> NiquestsTransport:
        """A transport with a session (and so connections) of its own, for requests sent
        while this one's are; it counts into the same counter.  A session of its own,
        not this one shared: closing it after a first download must leave this one's
        kept-alive connection (and the daemon's push stream beside it) alone."""
        return NiquestsTransport(self.verify, self.timeout, self.counter)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_body(resp: niquests.AsyncResponse) -> bytes:
    """The answer's body, acknowledged piece by piece as it comes (syncd.jmap.quickack).
    niquests has no hook between sending a request and reading its answer: the socket is
    found through the response's connection, and where it is not there (another
    niquests, HTTP/3) the body is read whole, as before."""

    sock = getattr(getattr(getattr(resp, "raw", None), "_connection", None), "sock", None)
    try:
        size: int | None = int(resp.headers.get("content-length", ""))
    except ValueError:
        size = None
    if not quickack.piecewise(size, sock):
        return await resp.content or b""
    chunks: list[bytes] = []
    quickack.ack_at_once(sock)
    async for chunk in await resp.iter_content(quickack.CHUNK):
        chunks.append(chunk)
        quickack.ack_at_once(sock)
    return b"".join(chunks)  # type: ignore[arg-type]


def _describe(exc: Exception, url: str) -> str:
    """A message without credentials: the exception text may echo headers in some libraries."""
    import niquests

    kind = type(exc).__name__
    if isinstance(exc, niquests.exceptions.Timeout):
        return f"timed out talking to {url}"
    if isinstance(exc, niquests.exceptions.SSLError):
        return f"TLS verification failed for {url} (set ca_bundle for a self-signed server)"
    if isinstance(exc, niquests.exceptions.ConnectionError):
        return f"could not connect to {url} ({kind})"
    return f"request to {url} failed ({kind})"
