"""Writes packed into /set calls and requests within the server's limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.jmap import packing
from syncd.jmap.packing import CALL_OVERHEAD, WRITE_OVERHEAD, Sized, pack


def sized(sizes: list[int]) -> list[Sized[int]]:
    return [Sized(i, size) for i, size in enumerate(sizes)]


def request_bytes(calls: list[list[int]], sizes: list[int]) -> int:
    return CALL_OVERHEAD * len(calls) + sum(sizes[i] + WRITE_OVERHEAD for c in calls for i in c)


def test_writes_within_every_limit_go_in_one_request():
    assert pack(sized([100] * 5), 10, 8, 10_000_000) == [[[0, 1, 2, 3, 4]]]


def test_objects_per_call_then_calls_per_request():
    out = pack(sized([10] * 7), per_call=2, calls_per_request=2, max_request_bytes=10**9)
    assert out == [[[0, 1], [2, 3]], [[4, 5], [6]]]


def test_a_request_never_passes_the_size_limit():
    sizes = [1000] * 10
    limit = CALL_OVERHEAD + 3 * (1000 + WRITE_OVERHEAD)  # three writes fit, not four
    out = pack(sized(sizes), per_call=100, calls_per_request=10, max_request_bytes=limit)
    assert out == [[[0, 1, 2]], [[3, 4, 5]], [[6, 7, 8]], [[9]]]


def test_a_request_holds_at_most_the_writes_per_request(monkeypatch):
    monkeypatch.setattr(packing, "WRITES_PER_REQUEST", 3)
    out = pack(sized([10] * 7), per_call=100, calls_per_request=10, max_request_bytes=10**9)
    assert out == [[[0, 1, 2]], [[3, 4, 5]], [[6]]]


def test_a_write_too_big_for_any_request_goes_alone_and_nothing_is_dropped():
    out = pack(sized([10, 5000, 10]), per_call=100, calls_per_request=10, max_request_bytes=2000)
    assert out == [[[0]], [[1]], [[2]]]


def test_nothing_to_write_is_no_request():
    assert pack([], 10, 10, 1000) == []


@given(
    sizes=st.lists(st.integers(0, 3000), max_size=60),
    per_call=st.integers(1, 8),
    calls_per_request=st.integers(1, 5),
    max_bytes=st.integers(1, 20_000),
    per_request=st.integers(1, 30),
)
def test_every_write_once_in_order_and_every_limit_held(
    sizes, per_call, calls_per_request, max_bytes, per_request
):
    out = pack(sized(sizes), per_call, calls_per_request, max_bytes, per_request)
    flat = [i for request in out for call in request for i in call]
    assert flat == list(range(len(sizes)))
    for request in out:
        assert request and all(request)
        assert len(request) <= calls_per_request
        assert all(len(call) <= per_call for call in request)
        count = sum(len(call) for call in request)
        assert count <= per_request
        if count > 1:  # only a write alone may be over the size limit
            assert request_bytes(request, sizes) <= max_bytes


@pytest.mark.parametrize("n", [1, 499, 500, 501, 10_000])
def test_a_first_upload_of_n_events_in_requests_of_at_most_500(n):
    out = pack(sized([1200] * n), 4096, 25, 10_000_000)
    assert sum(len(c) for r in out for c in r) == n
    assert len(out) == -(-n // 500)
