"""Acknowledging an answer's pieces as they come (Linux's TCP_QUICKACK), for both transports.

Cyrus writes an answer in pieces of 4 KB with Nagle's algorithm on: each piece after the
first waits until the client acknowledges the one before, and Linux delays that
acknowledgement by up to 40 ms while it waits for something to send back.  Every answer
between about 4 and 100 KB (3 to 40 events) took 44-48 ms on loopback instead of 2-10
(contrib/bench/answers.py; bench README, sessions 14 and 16).

Switching immediate acknowledgements on sends the one pending at once, and it does not
last (the kernel goes back to delaying them as the exchange goes on), so the body of
such an answer is read in reads smaller than a piece, with the switch thrown before each:
no read then waits for a piece whose sending waits for this side.  A bigger answer comes
in full-sized segments, which nothing holds back, and is read whole.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

OPTION: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only
MAX_BYTES = 96 * 1024  # answers up to this size are read piece by piece (above: full segments)
CHUNK = 1024  # under Cyrus's 4 KB pieces, so no read needs two of them


def ack_at_once(sock: object) -> None:
    """Send a pending acknowledgement now, and the next ones for a while."""
    if OPTION is not None and sock is not None:
        with contextlib.suppress(OSError, AttributeError, TypeError, ValueError):
            sock.setsockopt(socket.IPPROTO_TCP, OPTION, 1)  # type: ignore[attr-defined]


def piecewise(size: int | None, sock: object) -> bool:
    """Whether a body of ``size`` bytes (None: unknown) on ``sock`` is read in ``CHUNK``s."""
    return OPTION is not None and sock is not None and size is not None and 0 < size <= MAX_BYTES


def read_acknowledging(read: Callable[[int], bytes], sock: object) -> bytes:
    """The rest of a body, ``CHUNK`` bytes a read, acknowledged before each."""
    chunks: list[bytes] = []
    while True:
        ack_at_once(sock)
        chunk = read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
