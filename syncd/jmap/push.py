"""JMAP push over EventSource (RFC 8620 §7.3): a sans-IO parser and a reconnecting subscriber.

The parser only turns bytes into events, so it is tested without a network; the
subscriber owns reconnects, pings and backoff.  A stream that misses its pings is dead
even when TCP says otherwise (a laptop that resumed from suspend keeps a socket that
will never deliver again), so every read has a deadline derived from the ping interval.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
import niquests

log = logging.getLogger("syncd.push")


@dataclass(frozen=True)
class ServerEvent:
    """One dispatched EventSource event."""

    event: str
    data: str
    id: str | None


@dataclass
class EventStreamParser:
    """The text/event-stream format, incrementally: feed bytes, get events.

    Follows the WHATWG rules that matter here: lines end in CRLF, LF or CR; a blank line
    dispatches; ``:`` starts a comment; one leading space after the colon is dropped;
    ``data`` lines are joined with LF; ``id`` persists across events.
    """

    last_event_id: str | None = None
    _buffer: bytes = b""
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _pending_cr: bool = False

    def feed(self, chunk: bytes) -> Iterator[ServerEvent]:
        buf = self._buffer + chunk
        if self._pending_cr and buf.startswith(b"\n"):
            buf = buf[1:]
        self._pending_cr = False
        while True:
            cut = _line_end(buf)
            if cut is None:
                break
            end, skip = cut
            line, buf = buf[:end], buf[end + skip :]
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                yield event
        if buf.endswith(b"\r"):
            # A CR at the end may be the first half of CRLF: wait for the next chunk.
            self._pending_cr = True
            event = self._line(buf[:-1].decode("utf-8", errors="replace"))
            buf = b""
            if event is not None:
                yield event
        self._buffer = buf

    def _line(self, line: str) -> ServerEvent | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = ServerEvent(self._event or "message", "\n".join(self._data), self.last_event_id)
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        return None


def _line_end(buf: bytes) -> tuple[int, int] | None:
    """Index and length of the first line terminator; a CR at the very end is undecided."""
    for i, byte in enumerate(buf):
        if byte == 0x0A:
            return i, 1
        if byte == 0x0D:
            if i + 1 < len(buf):
                return i, 2 if buf[i + 1] == 0x0A else 1
            return None
    return None


def state_changes(event: ServerEvent) -> dict[str, dict[str, str]] | None:
    """``changed`` of a StateChange event (account id -> type -> state), else None."""
    if event.event not in ("state", "message"):
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        log.warning("push: ignoring an event that is not JSON")
        return None
    if not isinstance(data, dict) or data.get("@type") != "StateChange":
        return None
    changed = data.get("changed")
    return changed if isinstance(changed, dict) else None


def eventsource_url(template: str, types: list[str], ping: int) -> str:
    """Expand the session's URI template (RFC 6570 level 1, as RFC 8620 asks)."""
    values = {"types": ",".join(types), "closeafter": "no", "ping": str(ping)}
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", quote(value, safe=","))
    return out


class PushUnavailable(Exception):
    """The server has no working EventSource: fall back to polling."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter, capped; reset after a healthy stream."""

    base: float = 1.0
    cap: float = 300.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        self.attempt += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 20))
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


OnChange = Callable[[dict[str, dict[str, str]]], Awaitable[None] | None]


@dataclass
class PushSubscriber:
    """Keeps one EventSource stream open and calls ``on_change`` for each StateChange.

    ``on_connect`` runs after each (re)connect: whatever happened while the stream was
    down is caught up by a pass, since a server need not replay missed events.
    """

    url: str
    headers: dict[str, str]
    on_change: OnChange
    on_connect: Callable[[], Any] | None = None
    ping: int = 30
    verify: bool | str = True
    backoff: Backoff = field(default_factory=Backoff)
    parser: EventStreamParser = field(default_factory=EventStreamParser)
    connected: bool = False
    _scope: anyio.CancelScope | None = None

    def reconnect(self) -> None:
        """Drop the current stream now (after a suspend, or a network change)."""
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Run until cancelled; raises PushUnavailable if the server cannot push."""
        async with niquests.AsyncSession(retries=0, disable_http3=True) as session:
            while True:
                healthy = False
                with anyio.CancelScope() as scope:
                    self._scope = scope
                    try:
                        healthy = await self._stream(session)
                    except PushUnavailable:
                        raise
                    except (niquests.exceptions.RequestException, OSError, TimeoutError) as exc:
                        log.info("push: stream lost (%s)", type(exc).__name__)
                    finally:
                        self.connected = False
                if scope.cancelled_caught:
                    log.info("push: reconnecting on request")
                    continue
                if healthy:
                    self.backoff.reset()
                delay = self.backoff.next_delay()
                log.info("push: reconnecting in %.1f s", delay)
                await anyio.sleep(delay)

    async def _stream(self, session: niquests.AsyncSession) -> bool:
        headers = {**self.headers, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.parser.last_event_id is not None:
            headers["Last-Event-ID"] = self.parser.last_event_id
        # The read timeout must outlast the ping interval: with a plain 30 s one, a read
        # waiting for a 30 s ping timed out and the stream was torn down and rebuilt about
        # every half minute (each time with a catch-up pass).  Silence is judged by the
        # ping deadline below instead.
        resp = await session.get(
            self.url,
            headers=headers,
            stream=True,
            timeout=stream_timeouts(self.ping),
            verify=self.verify,
        )
        try:
            if resp.status_code == 204:
                raise PushUnavailable("the server answered 204 No Content to the EventSource")
            if resp.status_code in (401, 403):
                raise PushUnavailable(
                    f"the EventSource refused the credentials ({resp.status_code})"
                )
            if resp.status_code == 404:
                raise PushUnavailable("the EventSource URL does not exist (404)")
            if resp.status_code != 200:
                log.info("push: EventSource answered HTTP %s", resp.status_code)
                return False
            ctype = resp.headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                raise PushUnavailable(f"the EventSource answered {ctype or 'no content type'}")
            self.connected = True
            log.info("push: connected")
            if self.on_connect is not None:
                await _maybe_await(self.on_connect())
            events = 0
            # A missed ping (with some slack) means the stream is dead.
            deadline = ping_deadline(self.ping)
            chunks = (await resp.iter_raw()).__aiter__()
            while True:
                with anyio.fail_after(deadline):
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        log.info("push: the server closed the stream")
                        return events > 0
                for event in self.parser.feed(chunk):
                    events += 1
                    changed = state_changes(event)
                    if changed:
                        await _maybe_await(self.on_change(changed))
        finally:
            await resp.close()


def ping_deadline(ping: int) -> float:
    """How long a stream may stay silent before it counts as dead: two and a half pings."""
    return ping * 2.5 + 5


def stream_timeouts(ping: int) -> tuple[float, float]:
    """(connect, read) for the EventSource request: the read timeout outlasts the ping
    deadline, so the deadline, not the HTTP library, decides when silence is death."""
    return 30.0, ping_deadline(ping) + 10


async def _maybe_await(value: Any) -> None:
    if value is not None and hasattr(value, "__await__"):
        await value
