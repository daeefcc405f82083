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
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import anyio.to_thread

from syncd.jmap.transport import HttpResponse, TrafficCounter, TransportError

log = logging.getLogger("syncd.http")

MAX_REDIRECTS = 5
Origin = tuple[str, str, int]


@dataclass
class StdlibTransport:
    """Requests run in worker threads, each on a connection of its own: an idle one kept
    alive for its origin, else a new one, given back when its answer is read.  So two
    requests at once (a listing's pages, syncd.sync.remote) travel on two connections and
    the server can work on both."""

    verify: bool | str = True
    timeout: float = 60.0
    counter: TrafficCounter = field(default_factory=TrafficCounter)
    _idle: dict[Origin, list[http.client.HTTPConnection]] = field(default_factory=dict)
    _tls: ssl.SSLContext | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse:
        return await anyio.to_thread.run_sync(self._request, method, url, dict(headers), body)

    async def aclose(self) -> None:
        with self._lock:
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()

    def _request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> HttpResponse:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            with self._lock:
                self.counter.requests += 1
                self.counter.bytes_sent += len(body or b"")
            status, resp_headers, content = self._exchange(method, url, headers, body)
            with self._lock:
                self.counter.bytes_received += len(content)
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
            conn, reused = self._take(url)
            try:
                conn.request(method, target, body=body, headers=send)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if attempt == 1 and (reused or method == "GET"):
                    continue
                raise TransportError(
                    f"could not connect to {_safe(url)} (connection lost)"
                ) from None
            except ssl.SSLError:
                conn.close()
                raise TransportError(
                    f"TLS verification failed for {_safe(url)} (set ca_bundle for a self-signed server)"
                ) from None
            except TimeoutError:
                conn.close()
                raise TransportError(f"timed out talking to {_safe(url)}") from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise TransportError(
                    f"could not connect to {_safe(url)} ({type(exc).__name__})"
                ) from None
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close:
                conn.close()
            else:
                self._give_back(url, conn)
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

    def _take(self, url: str) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``url``'s origin for one exchange, and whether it was kept
        alive from an earlier one (a closed kept-alive connection is worth a retry)."""
        scheme, host, port = origin = _origin(url)
        with self._lock:
            idle = self._idle.get(origin)
            if idle:
                return idle.pop(), True
        if scheme == "https":
            conn: http.client.HTTPConnection = _HTTPSConnection(
                host, port, timeout=self.timeout, context=self._tls_context()
            )
        elif scheme == "http":
            conn = _HTTPConnection(host, port, timeout=self.timeout)
        else:
            raise TransportError(f"unsupported URL scheme in {_safe(url)}")
        return conn, False

    def _give_back(self, url: str, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(_origin(url), []).append(conn)

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
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
