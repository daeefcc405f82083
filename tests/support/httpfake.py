"""The in-memory JMAP server over real HTTP on loopback, with faults on demand.

Cyrus cannot be asked to reset a connection mid-response or to answer 429; this server
can.  Faults are queued and each POST to the API takes the next one: "reset" (headers,
then the connection is cut mid-body), "hang" (no answer until the client gives up),
"500", "503", "429" (with Retry-After: 1), "badjson" (200 with a truncated JSON body),
or None (answer normally).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.fakejmap import FakeJmapServer, FakeTransport


class FaultyJmapHttpServer:
    def __init__(self, server: FakeJmapServer | None = None) -> None:
        self.jmap = server or FakeJmapServer()
        self.faults: collections.deque[str | None] = collections.deque()
        self.seen: list[str] = []  # what each API request got, for assertions
        self.hang_seconds = 5.0
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
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = None
                if method == "POST" and self.path.startswith("/jmap/api"):
                    fault = outer.faults.popleft() if outer.faults else None
                    outer.seen.append(fault or "ok")
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

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
