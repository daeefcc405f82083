"""The in-memory JMAP server over real HTTP on loopback, with faults on demand.

Cyrus cannot be asked to reset a connection mid-response or to answer 429; this server
can.  Faults are queued and each POST to the API takes the next one: "reset" (headers,
then the connection is cut mid-body), "hang" (no answer until the client gives up),
"500", "503", "429" (with Retry-After: 1), "badjson" (200 with a truncated JSON body),
or None (answer normally).

It also serves the session's EventSource (RFC 8620 7.3): a ``state`` event when the
stream opens and whenever the state of a requested type moves, and ``ping`` events at
the requested interval (``ping_interval`` overrides it, for fast tests).  Calendar
tests that want polling set ``server.event_source = False`` as before.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.fakejmap import FakeJmapServer, FakeTransport


class FaultyJmapHttpServer:
    def __init__(self, server: FakeJmapServer | None = None) -> None:
        self.jmap = server or FakeJmapServer()
        self.faults: collections.deque[str | None] = collections.deque()
        self.seen: list[str] = []  # what each API request got, for assertions
        self.peers: list[int] = []  # the client port each API request came from
        self.hang_seconds = 5.0
        self.ping_interval: float | None = None  # None: what the client asked for
        self.streams = 0  # EventSource connections opened so far
        self._closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                if method == "GET" and self.path.startswith("/jmap/eventsource"):
                    outer._event_stream(self)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = None
                if method == "POST" and self.path.startswith("/jmap/api"):
                    fault = outer.faults.popleft() if outer.faults else None
                    outer.seen.append(fault or "ok")
                    outer.peers.append(self.client_address[1])
                if fault == "hang":
                    time.sleep(outer.hang_seconds)
                    self.close_connection = True
                    return
                if fault in ("500", "503", "429"):
                    payload = b'{"type":"serverFail"}'
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                transport = FakeTransport(outer.jmap, base=outer.base_url)
                resp = asyncio.run(
                    transport.request(
                        method, outer.base_url + self.path, headers=dict(self.headers), body=body
                    )
                )
                data = resp.body
                if fault == "badjson":
                    data = data[: len(data) // 2]
                self.send_response(resp.status)
                for key, value in resp.headers.items():
                    self.send_header(key, value)
                self.send_header(
                    "Content-Length", str(len(resp.body if fault == "reset" else data))
                )
                if fault == "reset":
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _authorized(self, headers) -> bool:  # type: ignore[no-untyped-def]
        j = self.jmap
        expected = "Basic " + base64.b64encode(f"{j.username}:{j.password}".encode()).decode()
        return headers.get("Authorization") == expected

    def _state_event(self, types: set[str], since: int | None) -> bytes | None:
        """A StateChange for the requested types that moved since ``since`` (all at first)."""
        j = self.jmap
        moved = {t for st, t, _, _ in list(j.log) if since is None or st > since}
        if since is None:
            moved = set(types)
        changed = {t: str(j.state) for t in sorted(moved & types)}
        if not changed:
            return None
        data = {"@type": "StateChange", "changed": {j.account_id: changed}}
        return f"event: state\nid: {j.state}\ndata: {json.dumps(data)}\n\n".encode()

    def _event_stream(self, handler: BaseHTTPRequestHandler) -> None:
        """text/event-stream until the client goes away or the server closes."""
        if not self.jmap.event_source:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if not self._authorized(handler.headers):
            handler.send_response(401)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        query = parse_qs(urlsplit(handler.path).query)
        types = set(",".join(query.get("types", ["*"])).split(","))
        if "*" in types:
            types = {"Calendar", "CalendarEvent", "TaskList", "Task"}
        asked = float((query.get("ping") or ["0"])[0] or 0)
        ping = self.ping_interval if self.ping_interval is not None else asked
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        self.streams += 1
        sent_state: int | None = None
        last_ping = time.monotonic()
        try:
            while not self._closing.is_set():
                current = self.jmap.state
                if sent_state != current:
                    event = self._state_event(types, sent_state)
                    sent_state = current
                    if event is not None:
                        handler.wfile.write(event)
                        handler.wfile.flush()
                if ping and time.monotonic() - last_ping >= ping:
                    handler.wfile.write(f'event: ping\ndata: {{"interval": {ping}}}\n\n'.encode())
                    handler.wfile.flush()
                    last_ping = time.monotonic()
                time.sleep(0.02)
        except OSError:
            pass  # the client went away

    def close(self) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
