"""How many writes go into one ``/set`` call, and how many calls into one request.

PURE.  A server states its limits in the session (RFC 8620 2): objects per ``/set``,
calls per request, and the size of a request's body (``maxSizeRequest``), which it may
refuse with a ``limit`` error (RFC 8620 3.6.1).  A first upload of 10,000 events is
about 12 MB of JSCalendar: in one request it is over the 10 MB most servers state
(Cyrus 3.12 and the fake server both say 10,000,000), and it keeps the server busy
for 40-60 s before the first byte of the answer (Cyrus 3.12 takes about 4 ms per
created event here), up to the transports' 60 s read timeout.  So a request also holds
at most ``WRITES_PER_REQUEST`` writes: each answer comes within seconds, and a pass cut
short has its earlier requests' writes recorded as done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# Writes per request, whatever the limits allow (see the module's docstring).
WRITES_PER_REQUEST = 500
# What a request's body holds besides the objects: "using", the method names, call ids,
# the accountId, the /get that reads the written objects back.  Counted per call,
# generously, so that the sum of the objects' sizes can be held to the limit.
CALL_OVERHEAD = 512
# Per write, on top of its own size (Sized.size: its JSON where it appears): a margin.
WRITE_OVERHEAD = 16


@dataclass(frozen=True)
class Sized(Generic[T]):
    """One write and the bytes of its JSON in the request (key and value)."""

    item: T
    size: int


def pack(
    writes: Sequence[Sized[T]],
    per_call: int,
    calls_per_request: int,
    max_request_bytes: int,
    per_request: int | None = None,
) -> list[list[list[T]]]:
    """Requests, each a list of calls, each a list of writes, in the given order.

    A write bigger than a request may be on its own still goes out, alone: the server
    then refuses that one request and says why, which is the clearest error there is.
    """
    per_call = max(1, per_call)
    calls_per_request = max(1, calls_per_request)
    per_request = max(1, WRITES_PER_REQUEST if per_request is None else per_request)
    requests: list[list[list[T]]] = []
    calls: list[list[T]] = []
    call: list[T] = []
    count = 0
    used = CALL_OVERHEAD

    for write in writes:
        cost = write.size + WRITE_OVERHEAD
        if call and len(call) >= per_call:
            calls.append(call)
            call = []
            used += CALL_OVERHEAD
        full = (
            count >= per_request
            or used + cost > max_request_bytes
            or (not call and len(calls) >= calls_per_request)
        )
        if full and (call or calls):
            if call:
                calls.append(call)
            requests.append(calls)
            calls, call, count, used = [], [], 0, CALL_OVERHEAD
        call.append(write.item)
        count += 1
        used += cost
    if call:
        calls.append(call)
    if calls:
        requests.append(calls)
    return requests
