"""The three-way table, row by row, and the deletion guard."""

from __future__ import annotations

import hashlib
import json

import pytest

from syncd.journal import ItemRow
from syncd.sync.plan import (
    ConflictPolicy,
    Guard,
    Kind,
    LocalVersion,
    LocalView,
    RemoteVersion,
    RemoteView,
    check_guard,
    plan_collection,
)


def h(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def row(uid: str, base: dict | None = None) -> ItemRow:
    base = base if base is not None else {"uid": uid, "title": "base"}
    return ItemRow("cal", uid, f"{uid}.ics", f"id-{uid}", (1, 1, 1), "lh", h(base), None, base)


def lv(uid: str, **props) -> LocalVersion:
    obj = {"uid": uid, "title": "base", **props}
    return LocalVersion(f"{uid}.ics", (2, 2, 2), "new", obj, obj, h(obj))


def rv(uid: str, **props) -> RemoteVersion:
    obj = {"uid": uid, "title": "base", **props}
    return RemoteVersion(f"id-{uid}", obj, obj, h(obj), obj.get("updated"))


def one(journal, local=None, remote=None, **kw):
    p = plan_collection(journal, local or LocalView(), remote or RemoteView(), **kw)
    assert p.blocked is None
    assert len(p.actions) <= 1
    return p.actions[0] if p.actions else None


# (journal row?, local state, remote state) -> expected kind
CASES = [
    # never synced
    (False, "new", None, Kind.UPLOAD),
    (False, None, "new", Kind.DOWNLOAD),
    (False, "same", "same", Kind.RECORD),
    # synced before
    (True, "changed", None, Kind.UPLOAD),
    (True, None, "changed", Kind.DOWNLOAD),
    (True, "missing", None, Kind.DELETE_REMOTE),
    (True, None, "deleted", Kind.DELETE_LOCAL),
    (True, "missing", "deleted", Kind.FORGET),
    (True, "changed", "deleted", Kind.UPLOAD),  # edit beats delete
    (True, "missing", "changed", Kind.DOWNLOAD),  # edit beats delete
    (True, "same", "same", Kind.RECORD),  # both changed to the same thing
    (True, "unreadable", "deleted", None),  # unreadable is never evidence
    (True, "unreadable", "changed", None),
    (True, "missing", "unreadable", None),
]


@pytest.mark.parametrize(("synced", "local_state", "remote_state", "expected"), CASES)
def test_three_way_table(synced, local_state, remote_state, expected):
    uid = "u1"
    journal = {"other1": row("other1"), "other2": row("other2")}
    if synced:
        journal[uid] = row(uid)
    local, remote = LocalView(), RemoteView()
    if local_state in ("new", "changed"):
        local.changed[uid] = lv(uid, title="local")
    elif local_state == "same":
        local.changed[uid] = lv(uid, title="both")
    elif local_state == "missing":
        local.missing.add(uid)
    elif local_state == "unreadable":
        local.unreadable.add(uid)
    if remote_state in ("new", "changed"):
        remote.changed[uid] = rv(uid, title="remote")
    elif remote_state == "same":
        remote.changed[uid] = rv(uid, title="both")
    elif remote_state == "deleted":
        remote.deleted.add(uid)
    elif remote_state == "unreadable":
        remote.unreadable.add(uid)
    action = one(journal, local, remote)
    assert (action.kind if action else None) is expected


def test_unchanged_items_produce_no_actions():
    journal = {f"u{i}": row(f"u{i}") for i in range(50)}
    p = plan_collection(journal, LocalView(), RemoteView())
    assert p.actions == []


def test_different_properties_merge_without_conflict():
    journal = {"u": row("u", {"uid": "u", "title": "t", "description": "d"})}
    local = LocalView(changed={"u": lv("u", title="t", description="laptop")})
    remote = RemoteView(changed={"u": rv("u", title="phone", description="d")})
    local.changed["u"].canon["title"] = "t"
    remote.changed["u"].canon["description"] = "d"
    action = one(journal, local, remote)
    assert action.kind is Kind.MERGE
    assert action.conflict is None
    assert action.merged["title"] == "phone"
    assert action.merged["description"] == "laptop"


@pytest.mark.parametrize(
    ("rule", "winner"),
    [("remote-wins", "remote"), ("local-wins", "local")],
)
def test_overlapping_change_follows_rule(rule, winner):
    journal = {"u": row("u", {"uid": "u", "title": "base"})}
    local = LocalView(changed={"u": lv("u", title="local")})
    remote = RemoteView(changed={"u": rv("u", title="remote")})
    action = one(journal, local, remote, policy=ConflictPolicy(True, rule))
    assert action.kind is Kind.MERGE
    assert action.conflict == rule
    assert action.merged["title"] == winner


def test_overlap_without_merge_picks_a_side():
    journal = {"u": row("u")}
    local = LocalView(changed={"u": lv("u", title="local")})
    remote = RemoteView(changed={"u": rv("u", title="remote")})
    assert (
        one(journal, local, remote, policy=ConflictPolicy(False, "local-wins")).kind is Kind.UPLOAD
    )
    assert (
        one(journal, local, remote, policy=ConflictPolicy(False, "remote-wins")).kind
        is Kind.DOWNLOAD
    )


def test_newest_takes_later_update_and_remote_on_tie():
    journal = {"u": row("u")}
    remote = RemoteView(changed={"u": rv("u", title="remote", updated="2026-01-02T00:00:00Z")})
    newer_local = LocalView(changed={"u": lv("u", title="local", updated="2026-01-03T00:00:00Z")})
    tie_local = LocalView(changed={"u": lv("u", title="local", updated="2026-01-02T00:00:00Z")})
    policy = ConflictPolicy(False, "newest")
    assert one(journal, newer_local, remote, policy=policy).kind is Kind.UPLOAD
    assert one(journal, tie_local, remote, policy=policy).kind is Kind.DOWNLOAD


def test_keep_both_on_overlap():
    journal = {"u": row("u")}
    local = LocalView(changed={"u": lv("u", title="local")})
    remote = RemoteView(changed={"u": rv("u", title="remote")})
    action = one(journal, local, remote, policy=ConflictPolicy(True, "keep-both"))
    assert action.kind is Kind.KEEP_BOTH


def test_first_sync_with_same_uid_different_content_is_a_conflict():
    local = LocalView(changed={"u": lv("u", title="local")})
    remote = RemoteView(changed={"u": rv("u", title="remote")})
    assert one({}, local, remote).kind is Kind.DOWNLOAD  # remote-wins, no base to merge on


def test_read_only_collection_refuses_remote_writes():
    journal = {"a": row("a"), "b": row("b")}
    local = LocalView(changed={"a": lv("a", title="x")}, missing={"b"})
    remote = RemoteView(changed={"c": rv("c")})
    p = plan_collection(journal, local, remote, remote_writable=False)
    assert [a.kind for a in p.actions] == [Kind.DOWNLOAD]
    assert sorted(a.uid for a in p.refused) == ["a", "b"]


@pytest.mark.parametrize("side", ["local", "remote"])
def test_guard_blocks_mass_deletion(side):
    journal = {f"u{i}": row(f"u{i}") for i in range(20)}
    gone = {f"u{i}" for i in range(11)}
    local = LocalView(missing=gone if side == "local" else set())
    remote = RemoteView(deleted=gone if side == "remote" else set())
    p = plan_collection(journal, local, remote)
    assert p.blocked is not None and "11 of 20" in p.blocked
    forced = plan_collection(journal, local, remote, guard=Guard(force=True))
    assert forced.blocked is None and len(forced.actions) == 11


def test_guard_allows_small_deletions_and_blocks_emptying():
    journal = {f"u{i}": row(f"u{i}") for i in range(4)}
    p = plan_collection(journal, LocalView(missing={"u0", "u1", "u2"}), RemoteView())
    assert p.blocked is None  # 3 of 4: more than half, but not more than 5 items
    p = plan_collection(journal, LocalView(missing={"u0", "u1", "u2", "u3"}), RemoteView())
    assert p.blocked is not None and "all of them" in p.blocked


def test_guard_ignores_empty_journal():
    assert check_guard(0, [], Guard()) is None


def test_a_packed_local_version_merges_as_one_given_whole():
    """A version held packed, with no canonical form (a first upload's, Session 28),
    gives its object on each read and plans exactly as the same version given whole."""
    import pickle

    from syncd.convert.canon import canonical

    journal = {"u": row("u", {"uid": "u", "@type": "Event", "title": "t", "description": "d"})}
    mine = {"uid": "u", "@type": "Event", "title": "t", "description": "laptop"}
    packed_bytes = pickle.dumps(mine)
    unpacked: list[dict] = []

    def unpack() -> dict:
        unpacked.append(pickle.loads(packed_bytes))
        return unpacked[-1]

    packed = LocalVersion("u.ics", (2, 2, 2), "new", unpack, None, h(mine))
    whole = LocalVersion("u.ics", (2, 2, 2), "new", mine, canonical(mine), h(mine))
    assert packed.obj == mine and packed.obj is not packed.obj  # unpacked on each read
    assert packed.canon == canonical(mine)
    assert packed == whole
    theirs = {"uid": "u", "@type": "Event", "title": "phone", "description": "d"}

    def plan_with(local: LocalVersion):
        remote = RemoteView(changed={"u": RemoteVersion("id-u", dict(theirs), None, h(theirs))})
        return one(journal, LocalView(changed={"u": local}), remote)

    merged, expected = plan_with(packed), plan_with(whole)
    assert merged.kind is expected.kind is Kind.MERGE
    assert merged.merged == expected.merged
    assert merged.merged["title"] == "phone" and merged.merged["description"] == "laptop"
