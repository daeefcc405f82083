from hypothesis import given
from hypothesis import strategies as st

from syncd.sync.merge import merge3


def test_map_entries_added_on_both_sides_both_survive():
    base = {"title": "t", "alerts": {"a": {"offset": "-PT5M"}}}
    local = {"title": "t", "alerts": {"a": {"offset": "-PT5M"}, "b": {"offset": "-PT1H"}}}
    remote = {"title": "t", "alerts": {"a": {"offset": "-PT5M"}, "c": {"offset": "-P1D"}}}
    merged, overlaps = merge3(base, local, remote, "remote-wins")
    assert overlaps == []
    assert set(merged["alerts"]) == {"a", "b", "c"}


def test_removal_on_one_side_is_kept():
    base = {"title": "t", "description": "d"}
    merged, overlaps = merge3(base, {"title": "t"}, base, "remote-wins")
    assert merged == {"title": "t"} and overlaps == []


values = st.one_of(st.none(), st.integers(0, 3), st.text(max_size=2))
objs = st.dictionaries(st.sampled_from(["title", "description", "priority"]), values, max_size=3)


@given(objs, objs)
def test_one_sided_change_is_taken_whole(base, changed):
    assert merge3(base, changed, base, "remote-wins") == (changed, [])
    assert merge3(base, base, changed, "local-wins") == (changed, [])


@given(objs, objs, objs)
def test_overlaps_follow_the_rule(base, local, remote):
    merged_r, overlaps = merge3(base, local, remote, "remote-wins")
    merged_l, _ = merge3(base, local, remote, "local-wins")
    for key in overlaps:
        assert merged_r.get(key) == remote.get(key)
        assert merged_l.get(key) == local.get(key)
