"""The EventSource parser, fed the way a network feeds it: in arbitrary pieces."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.jmap.push import (
    Backoff,
    EventStreamParser,
    ServerEvent,
    eventsource_url,
    state_changes,
)

CYRUS = (
    b'id: 34\nevent: state\ndata: {"@type":"StateChange","changed":{"alice":{"CalendarEvent":"34"}}}\n\n'
    b'event: ping\ndata: {"interval":2}\n\n'
)


def parse(*chunks: bytes) -> list[ServerEvent]:
    p = EventStreamParser()
    return [e for c in chunks for e in p.feed(c)]


def test_cyrus_stream_gives_a_state_change_and_a_ping():
    events = parse(CYRUS)
    assert [e.event for e in events] == ["state", "ping"]
    assert state_changes(events[0]) == {"alice": {"CalendarEvent": "34"}}
    assert state_changes(events[1]) is None
    assert events[0].id == "34" and events[1].id == "34"  # the id persists


@given(st.lists(st.integers(1, len(CYRUS) - 1), unique=True, max_size=10))
def test_any_split_gives_the_same_events(cuts):
    cuts = sorted(cuts)
    pieces = [CYRUS[a:b] for a, b in zip([0, *cuts], [*cuts, len(CYRUS)], strict=True)]
    assert parse(*pieces) == parse(CYRUS)


def test_line_endings_comments_and_multiline_data():
    stream = b": hello\r\nevent: state\r\ndata: a\r\ndata:b\r\n\r\ndata: c\r\r"
    events = parse(stream[:20], stream[20:21], stream[21:])
    assert events == [ServerEvent("state", "a\nb", None), ServerEvent("message", "c", None)]


def test_crlf_split_between_chunks_is_one_line_end():
    events = parse(b"data: x\r", b"\n\r\n")
    assert events == [ServerEvent("message", "x", None)]


def test_garbage_is_ignored_not_fatal():
    events = parse(b"event: state\ndata: {not json\n\n")
    assert state_changes(events[0]) is None


def test_url_template_is_expanded():
    url = eventsource_url(
        "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}",
        ["CalendarEvent", "Calendar"],
        30,
    )
    assert url == "/jmap/eventsource/?types=CalendarEvent,Calendar&closeafter=no&ping=30"


def test_backoff_grows_is_capped_and_resets():
    b = Backoff(base=1, cap=60)
    delays = [b.next_delay() for _ in range(12)]
    assert delays[0] <= 2 and max(delays) <= 60
    assert delays[-1] >= 30
    b.reset()
    assert b.next_delay() <= 2


@pytest.mark.parametrize("ping", [1, 5, 30, 60, 300])
def test_a_quiet_stream_is_judged_by_the_ping_deadline_not_the_http_read_timeout(ping):
    """A read waiting for the next ping must not time out first (a 30 s read timeout with
    30 s pings tore the stream down every half minute, each time with a catch-up pass)."""
    from syncd.jmap.push import ping_deadline, stream_timeouts

    _, read = stream_timeouts(ping)
    assert ping < ping_deadline(ping) < read
