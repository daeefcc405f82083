"""Both transports acknowledge an answer's pieces at once (TCP_QUICKACK, syncd.jmap.quickack)
as they read its body: Cyrus sends answers in 4 KB pieces with Nagle's algorithm on, and
each piece after the first waits for the client's acknowledgement of the one before,
which Linux otherwise delays by up to 40 ms (contrib/bench/answers.py; bench README,
sessions 14 and 16).

The server here plays Cyrus strictly: it sends each piece after the first only once the
client has switched immediate acknowledgements on again since the piece before.  A
transport that switches them on once (they lapse), only after reading the body, or
never, leaves the server holding a piece, and the test counts the pieces held."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import anyio
import pytest

from syncd.jmap.stdtransport import StdlibTransport
from syncd.jmap.transport import NiquestsTransport

QUICKACK = getattr(socket, "TCP_QUICKACK", None)
PIECE = 4096
BODY = bytes(range(256)) * 64  # 16 KB: four pieces
HOLD_SECONDS = 5.0  # how long the server waits for the client, at most


class PiecewiseServer:
    """Kept-alive HTTP/1.1; each answer is BODY in PIECEs, each piece after the first sent
    once ``switched`` has been called since the one before (or after HOLD_SECONDS, which
    counts in ``held``)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.changed = threading.Condition()
        self.switches = 0
        self.held = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def switched(self) -> None:
        with self.changed:
            self.switches += 1
            self.changed.notify_all()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                _, buffered = buffered.split(b"\r\n\r\n", 1)
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(BODY)}\r\n\r\n"
                ).encode()
                last = self._send(conn, head + BODY[:PIECE])
                for start in range(PIECE, len(BODY), PIECE):
                    self._wait_for_a_switch(since=last)
                    last = self._send(conn, BODY[start : start + PIECE])

    def _send(self, conn: socket.socket, data: bytes) -> int:
        """Send a piece; the switches counted just before it."""
        with self.changed:
            before = self.switches
        conn.sendall(data)
        return before

    def _wait_for_a_switch(self, since: int) -> None:
        """Until the client switches immediate acknowledgements on again after the piece
        before was sent: that piece is then acknowledged, and Nagle's algorithm lets the
        next one go."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.switches > since, HOLD_SECONDS):
                self.held += 1


@pytest.fixture
def server() -> Iterator[PiecewiseServer]:
    s = PiecewiseServer()
    yield s
    s.listener.close()


@pytest.mark.skipif(QUICKACK is None, reason="TCP_QUICKACK is Linux's")
@pytest.mark.parametrize("transport_class", [StdlibTransport, NiquestsTransport])
def test_acknowledgements_are_immediate_before_the_body_is_read(
    server, transport_class, monkeypatch
):
    real = socket.socket.setsockopt

    def spy(sock, level, option, value, *rest):
        if level == socket.IPPROTO_TCP and option == QUICKACK and value == 1:
            server.switched()
        return real(sock, level, option, value, *rest)

    monkeypatch.setattr(socket.socket, "setsockopt", spy)
    transport = transport_class(timeout=30.0)

    async def go():
        try:
            return [
                await transport.request(
                    "POST", f"http://127.0.0.1:{server.port}/jmap/", headers={}, body=b"{}"
                )
                for _ in range(2)  # the second over the kept-alive connection
            ]
        finally:
            await transport.aclose()

    for resp in anyio.run(go):
        assert resp.status == 200 and resp.body == BODY
    assert server.switches > 0, "immediate acknowledgements were never switched on"
    assert server.held == 0, f"{server.held} pieces waited for an acknowledgement"
