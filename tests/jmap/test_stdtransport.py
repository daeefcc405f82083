"""The standard-library transport: redirects, credentials, compression, keep-alive, TLS."""

from __future__ import annotations

import gzip
import http.server
import ssl
import threading
from collections.abc import Iterator

import anyio
import pytest

from syncd.jmap.stdtransport import StdlibTransport
from syncd.jmap.transport import NiquestsTransport, TransportError


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str | None]]
    other_port: int = 0
    barrier: threading.Barrier

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.path == "/to-other-origin":
            self._redirect(f"http://127.0.0.1:{self.other_port}/landed")
        elif self.path == "/together":  # answered once two requests are in at once
            self.barrier.wait()
            self._reply(200, b"together")
        elif self.path == "/same-origin":
            self._redirect("/landed")
        elif self.path == "/gzip":
            body = gzip.compress(b'{"ok": true}')
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._reply(200, self.path.encode())

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.path == "/slow":  # as Cyrus does while a big /set runs
            self.wfile.write(b"HTTP/1.1 102 Processing\r\n\r\n" * 2)
            self.wfile.flush()
        self._reply(200, body)

    def _redirect(self, location: str) -> None:
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _serve(seen: list) -> http.server.ThreadingHTTPServer:
    handler = type("H", (Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[
    tuple[http.server.ThreadingHTTPServer, http.server.ThreadingHTTPServer, list, list]
]:
    seen_a: list = []
    seen_b: list = []
    a, b = _serve(seen_a), _serve(seen_b)
    a.RequestHandlerClass.other_port = b.server_address[1]
    yield a, b, seen_a, seen_b
    a.shutdown()
    b.shutdown()


def _get(transport: StdlibTransport, url: str, **headers: str):
    async def go():
        try:
            return await transport.request("GET", url, headers=headers)
        finally:
            await transport.aclose()

    return anyio.run(go)


def test_credentials_do_not_follow_a_redirect_to_another_origin(servers):
    a, _, seen_a, seen_b = servers
    url = f"http://127.0.0.1:{a.server_address[1]}/to-other-origin"
    resp = _get(StdlibTransport(), url, Authorization="Basic c2VjcmV0")
    assert resp.status == 200 and resp.body == b"/landed"
    assert resp.url.endswith(f":{servers[1].server_address[1]}/landed")
    assert seen_a == [("GET", "/to-other-origin", "Basic c2VjcmV0")]
    assert seen_b == [("GET", "/landed", None)]


def test_credentials_follow_a_redirect_on_the_same_origin(servers):
    a, _, seen_a, _ = servers
    resp = _get(
        StdlibTransport(), f"http://127.0.0.1:{a.server_address[1]}/same-origin", Authorization="X"
    )
    assert resp.body == b"/landed"
    assert seen_a == [("GET", "/same-origin", "X"), ("GET", "/landed", "X")]


def test_gzip_bodies_are_decoded_and_connections_kept_alive(servers):
    a, _, seen_a, _ = servers
    transport = StdlibTransport()
    base = f"http://127.0.0.1:{a.server_address[1]}"

    async def go():
        try:
            one = await transport.request("GET", f"{base}/gzip", headers={})
            two = await transport.request("POST", f"{base}/echo", headers={}, body=b"payload")
            return one, two, len(transport._connections)
        finally:
            await transport.aclose()

    one, two, connections = anyio.run(go)
    assert one.body == b'{"ok": true}' and two.body == b"payload"
    assert connections == 1
    assert transport.counter.requests == 2 and transport.counter.bytes_sent == len(b"payload")


def test_a_sibling_sends_at_the_same_time_over_a_connection_of_its_own(servers):
    # The server answers /together only once two requests for it are in at the same
    # time: over one connection the first would wait for the second forever.
    a, _, seen_a, _ = servers
    a.RequestHandlerClass.barrier = threading.Barrier(2, timeout=10)
    transport = StdlibTransport(timeout=20)
    sibling = transport.sibling()
    url = f"http://127.0.0.1:{a.server_address[1]}/together"
    got: list = []

    async def one(t: StdlibTransport) -> None:
        got.append(await t.request("GET", url, headers={}))

    async def go():
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(one, transport)
                tg.start_soon(one, sibling)
        finally:
            await transport.aclose()
            await sibling.aclose()

    anyio.run(go)
    assert [r.body for r in got] == [b"together", b"together"]
    assert sibling.timeout == transport.timeout and sibling.verify == transport.verify
    assert sibling.counter is transport.counter and transport.counter.requests == 2
    assert transport.counter.bytes_received == 2 * len(b"together")


def test_refused_connection_is_a_transport_error_without_userinfo():
    with pytest.raises(TransportError) as info:
        _get(StdlibTransport(timeout=2), "http://alice:hunter2@127.0.0.1:9/x")
    assert "hunter2" not in str(info.value) and "127.0.0.1:9" in str(info.value)


def test_untrusted_certificate_is_refused_with_advice(tmp_path):
    # A TLS server with a certificate nobody trusts: verification is never switched off.
    import subprocess

    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = _serve([])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    try:
        with pytest.raises(TransportError, match="TLS verification failed.*ca_bundle"):
            _get(StdlibTransport(timeout=5), f"https://127.0.0.1:{server.server_address[1]}/x")
    finally:
        server.shutdown()


@pytest.mark.parametrize("transport_class", [StdlibTransport, NiquestsTransport])
def test_interim_102_processing_is_skipped(servers, transport_class):
    a, _, _, _ = servers
    transport = transport_class(timeout=5)

    async def go():
        try:
            return await transport.request(
                "POST", f"http://127.0.0.1:{a.server_address[1]}/slow", headers={}, body=b"big"
            )
        finally:
            await transport.aclose()

    resp = anyio.run(go)
    assert (resp.status, resp.body) == (200, b"big")
