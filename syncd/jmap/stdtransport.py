"""A second ``Transport`` on the standard library's http.client, for one-shot commands.

Why two: ``import niquests`` costs 0.3-0.4 s here, more than the rest of a no-change
``syncd sync`` put together (a pass is one or two small HTTP requests).  The daemon pays
that once and keeps niquests for push and HTTP/2; ``syncd sync``, ``discover`` and
``check`` start, talk briefly and exit, so they use this one.  Same contract as
``NiquestsTransport``: TLS always verified (system store or ``ca_bundle``), redirects
followed with the Authorization header dropped when the origin changes, gzip accepted,
keep-alive per origin, every failure a ``TransportError`` without credentials in it.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import anyio.to_thread

from syncd.jmap import quickack
from syncd.jmap.transport import HttpResponse, TrafficCounter, TransportError

log = logging.getLogger("syncd.http")

MAX_REDIRECTS = 5
Origin = tuple[str, str, int]


@dataclass
class StdlibTransport:
    verify: bool | str = True
    timeout: float = 60.0
    counter: TrafficCounter = field(default_factory=TrafficCounter)
    _connections: dict[Origin, http.client.HTTPConnection] = field(default_factory=dict)
    _tls: ssl.SSLContext | None = None

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse:
        return await anyio.to_thread.run_sync(self._request, method, url, dict(headers), body)

    def sibling(self) -> StdlibTransport:
        """A transport with a connection of its own, for requests sent while this one's
        are (one connection carries one exchange at a time); it counts into the same
        counter."""
        return StdlibTransport(self.verify, self.timeout, self.counter, _tls=self._tls)

    async def aclose(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    def _request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> HttpResponse:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            self.counter.add(requests=1, sent=len(body or b""))
            status, resp_headers, content = self._exchange(method, url, headers, body)
            self.counter.add(received=len(content))
            location = resp_headers.get("location")
            if status not in (301, 302, 303, 307, 308) or not location:
                return HttpResponse(status, resp_headers, content, url)
            url = urljoin(url, location)
            if _origin(url) != origin:
                # As browsers and requests do: credentials never follow to another origin.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if status in (301, 302, 303) and method != "GET":
                method, body = "GET", None
        raise TransportError(f"too many redirects from {url}")

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        send = {"Accept-Encoding": "gzip", **headers}
        # A kept-alive connection the server closed while idle fails on first use: retry
        # once on a fresh one.  A fresh connection that fails is not retried (a POST could
        # have been processed); the engine's intents make even that case safe.
        for attempt in (1, 2):
            reused = _origin(url) in self._connections
            conn = self._connection(url)
            try:
                conn.request(method, target, body=body, headers=send)
                quickack.ack_at_once(conn.sock)
                resp = conn.getresponse()
                size = resp.length
                if quickack.piecewise(size, conn.sock):
                    raw = quickack.read_acknowledging(resp.read, conn.sock)
                    if len(raw) != size:  # read(n) returns short where read() raises
                        raise http.client.IncompleteRead(raw, (size or 0) - len(raw))
                else:
                    raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(url)
                if attempt == 1 and (reused or method == "GET"):
                    continue
                raise TransportError(
                    f"could not connect to {_safe(url)} (connection lost)"
                ) from None
            except ssl.SSLError:
                self._drop(url)
                raise TransportError(
                    f"TLS verification failed for {_safe(url)} (set ca_bundle for a self-signed server)"
                ) from None
            except TimeoutError:
                self._drop(url)
                raise TransportError(f"timed out talking to {_safe(url)}") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(url)
                raise TransportError(
                    f"could not connect to {_safe(url)} ({type(exc).__name__})"
                ) from None
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close:
                self._drop(url)
            try:
                content = _decode(raw, resp_headers.get("content-encoding", ""))
            except (OSError, zlib.error, EOFError):
                raise TransportError(f"{_safe(url)} sent a body that does not decompress") from None
            log.debug(
                "%s %s on %s -> %d, %d bytes", method, target, _origin_text(url), resp.status,
                len(content),
            )  # fmt: skip
            return resp.status, resp_headers, content
        raise AssertionError("unreachable")

    def _connection(self, url: str) -> http.client.HTTPConnection:
        scheme, host, port = origin = _origin(url)
        conn = self._connections.get(origin)
        if conn is None:
            if scheme == "https":
                conn = _HTTPSConnection(
                    host, port, timeout=self.timeout, context=self._tls_context()
                )
            elif scheme == "http":
                conn = _HTTPConnection(host, port, timeout=self.timeout)
            else:
                raise TransportError(f"unsupported URL scheme in {_safe(url)}")
            self._connections[origin] = conn
        return conn

    def _drop(self, url: str) -> None:
        conn = self._connections.pop(_origin(url), None)
        if conn is not None:
            conn.close()

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            cafile = self.verify if isinstance(self.verify, str) else None
            self._tls = ssl.create_default_context(cafile=cafile)
            self._tls.set_alpn_protocols(["http/1.1"])
        return self._tls


class _SkipInterimResponse(http.client.HTTPResponse):
    """Skips interim 1xx answers: Cyrus sends "102 Processing" while a big /set runs,
    and http.client would otherwise return it as the final answer."""

    def _read_status(self):  # type: ignore[no-untyped-def]
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if 100 <= status < 200 and status != 101:
                http.client._read_headers(self.fp)  # type: ignore[attr-defined]
                continue
            return version, status, reason


class _HTTPConnection(http.client.HTTPConnection):
    response_class = _SkipInterimResponse


class _HTTPSConnection(http.client.HTTPSConnection):
    response_class = _SkipInterimResponse


def _origin(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


def _safe(url: str) -> str:
    """The URL without userinfo (a URL in the config may carry user:password@)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _decode(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        try:
            return zlib.decompress(raw)
        except zlib.error:
            return zlib.decompress(raw, -zlib.MAX_WBITS)
    return raw
