"""A tiny counting TCP proxy for HTTP/1.1 on loopback.

The benchmark puts one in front of each server (Cyrus for syncd, Radicale for
vdirsyncer), so both clients are counted the same way, from outside, with nothing added
to either: every byte in both directions (headers included) and every HTTP request
(parsed from the client's stream: request head, then a Content-Length or chunked body).
Counters are updated before the bytes are forwarded, so they are complete by the time the
client has seen its last response and exited.

The proxy acknowledges the server's bytes at once (TCP_QUICKACK before each read).
Cyrus writes in 4 KB pieces with Nagle's algorithm on, so with Linux's delayed
acknowledgements every answer between 4 and about 100 KB would wait 40 ms for the
proxy, whatever the client does (session 14, contrib/bench/answers.py): a proxy that
delays nothing, at worst hiding a client's own delays, which favours vdirsyncer.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class CountingProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.requests = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.requests, self.bytes_up + self.bytes_down

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump_up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(server, client), daemon=True).start()

    def _pump_down(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := _ack_at_once(src).recv(262144):
                with self._lock:
                    self.bytes_down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(dst)

    def _pump_up(self, src: socket.socket, dst: socket.socket) -> None:
        parser = _RequestCounter()
        try:
            while data := src.recv(262144):
                n = parser.feed(data)
                with self._lock:
                    self.bytes_up += len(data)
                    self.requests += n
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(dst)


def _ack_at_once(s: socket.socket) -> socket.socket:
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.IPPROTO_TCP, quickack, 1)
    return s


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_WR)


class _RequestCounter:
    """Counts complete HTTP/1.1 requests in a client byte stream."""

    def __init__(self) -> None:
        self.buf = b""
        self.body_left = 0
        self.chunked = False

    def feed(self, data: bytes) -> int:
        self.buf += data
        count = 0
        while True:
            if self.body_left:
                take = min(self.body_left, len(self.buf))
                self.buf = self.buf[take:]
                self.body_left -= take
                if self.body_left:
                    return count
            if self.chunked:
                if not self._skip_chunks():
                    return count
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return count
            head = self.buf[:end].decode("latin-1").split("\r\n")
            self.buf = self.buf[end + 4 :]
            count += 1
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.chunked = True
            else:
                self.body_left = int(headers.get("content-length", "0") or 0)

    def _skip_chunks(self) -> bool:
        """Consume chunks; True when the body (and trailer) ended."""
        while True:
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            size = int(self.buf[:end].split(b";")[0] or b"0", 16)
            if size == 0:
                tail = self.buf.find(b"\r\n\r\n", end)
                if self.buf[end : end + 4] == b"\r\n\r\n":
                    self.buf = self.buf[end + 4 :]
                elif tail >= 0:
                    self.buf = self.buf[tail + 4 :]
                else:
                    return False
                self.chunked = False
                return True
            if len(self.buf) < end + 2 + size + 2:
                return False
            self.buf = self.buf[end + 2 + size + 2 :]
