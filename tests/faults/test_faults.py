"""Faults over real HTTP: each one is reported, nothing is lost, the next pass recovers."""

from __future__ import annotations

import time

import pytest

from syncd.errors import SyncdError
from syncd.jmap.errors import JmapError

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:{uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def seed(h, n: int = 5) -> None:
    for i in range(n):
        h.server.put_event(
            {"@type": "Event", "uid": f"ev{i}", "title": f"E{i}", "start": "2026-03-01T10:00:00"}
        )


@pytest.mark.parametrize("fault", ["reset", "hang", "503"])
def test_a_read_that_fails_is_retried_within_the_pass(http_pair, fault):
    seed(http_pair)
    http_pair.sync()
    http_pair.server.put_event(
        {"@type": "Event", "uid": "new", "title": "N", "start": "2026-03-02T10:00:00"}
    )
    http_pair.http.hang_seconds = 4
    http_pair.http.faults.extend([fault])
    result = http_pair.sync()
    assert result.ok
    assert "new.ics" in http_pair.files()
    assert http_pair.http.seen[-2:] == [fault, "ok"]


def test_429_retry_after_is_honoured(http_pair):
    seed(http_pair)
    http_pair.http.faults.extend(["429"])
    started = time.monotonic()
    assert http_pair.sync().ok
    assert time.monotonic() - started >= 0.9  # Retry-After: 1
    assert len(http_pair.files()) == 5


@pytest.mark.parametrize("fault", ["500", "badjson"])
def test_a_broken_answer_fails_the_pass_clearly_and_loses_nothing(http_pair, fault):
    seed(http_pair)
    assert http_pair.sync().ok
    before = http_pair.files()
    http_pair.http.faults.extend([fault, fault, fault, fault])
    with pytest.raises((SyncdError, JmapError)) as info:
        http_pair.sync()
    message = str(info.value)
    assert ("500" in message) if fault == "500" else ("JSON" in message or "json" in message)
    assert http_pair.files() == before  # nothing deleted or rewritten
    http_pair.http.faults.clear()
    assert http_pair.sync().ok
    assert http_pair.files() == before
    assert len(http_pair.server.events) == 5


def test_a_write_cut_off_mid_answer_is_not_repeated_blindly_and_not_doubled(http_pair):
    seed(http_pair, 2)
    assert http_pair.sync().ok
    d = http_pair.root / "personal"
    for i in range(3):
        (d / f"up{i}.ics").write_text(ICS.format(uid=f"up{i}"))
    # fetch ok, then the /set is applied by the server but its answer is cut off
    http_pair.http.faults.extend([None, "reset"])
    with pytest.raises((SyncdError, JmapError)):
        http_pair.sync()
    result = http_pair.sync()
    assert result.ok, result.summary()
    uids = sorted(e["uid"] for e in http_pair.server.events.values())
    assert uids == ["ev0", "ev1", "up0", "up1", "up2"]  # each exactly once
    assert http_pair.sync().changes == 0


def test_one_refused_item_does_not_block_the_others_and_is_retried(http_pair):
    seed(http_pair, 1)
    assert http_pair.sync().ok
    d = http_pair.root / "personal"
    for uid in ("good1", "bad", "good2"):
        (d / f"{uid}.ics").write_text(ICS.format(uid=uid))
    http_pair.server.refuse["bad"] = "overQuota"
    result = http_pair.sync()
    assert not result.ok
    problems = [e for c in result.collections for e in c.errors]
    assert any("bad" in p and "overQuota" in p for p in problems), problems
    uids = {e["uid"] for e in http_pair.server.events.values()}
    assert {"good1", "good2"} <= uids and "bad" not in uids
    assert (d / "bad.ics").exists()
    del http_pair.server.refuse["bad"]
    assert http_pair.sync().ok
    assert "bad" in {e["uid"] for e in http_pair.server.events.values()}


def test_an_upload_cut_off_between_its_requests_settles_in_few_requests(http_pair, monkeypatch):
    """A first upload goes out in several requests; the second's answer is cut off after
    the server applied it.  The next pass finds what the server has by UID, many UIDs
    per request (one request per UID made a big upload cut short cost one round trip
    per event), and creates only the rest: every event exactly once."""
    from syncd.jmap import packing

    monkeypatch.setattr(packing, "WRITES_PER_REQUEST", 3)
    seed(http_pair, 1)
    assert http_pair.sync().ok
    d = http_pair.root / "personal"
    for i in range(10):
        (d / f"up{i}.ics").write_text(ICS.format(uid=f"up{i}"))
    # the fetch and the first write answered; the second write applied, its answer cut off
    http_pair.http.faults.extend([None, None, "reset"])
    with pytest.raises((SyncdError, JmapError)):
        http_pair.sync()
    assert len(http_pair.server.events) == 1 + 6  # requests 1 and 2 were applied
    http_pair.server.requests.clear()
    result = http_pair.sync()
    assert result.ok, result.summary()
    uids = sorted(e["uid"] for e in http_pair.server.events.values())
    assert uids == sorted(["ev0", *(f"up{i}" for i in range(10))])  # each exactly once
    lookups = [r for r in http_pair.server.requests if r.count("CalendarEvent/query") >= 2]
    assert len(lookups) == 1 and lookups[0].count("CalendarEvent/query") == 10
    assert http_pair.sync().changes == 0
