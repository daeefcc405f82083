"""PURE: what to do with each item, from the journal and both sides' changes.

Nothing here touches the disk or the network.  The engine gathers three views
of one collection -- the journal (the common base), what changed locally and
what changed remotely -- and ``plan_collection`` turns them into actions.  The
rules are the classic three-way ones (vdirsyncer, pimsync), plus syncd's
invariants: deletion only on evidence, edits beat deletions, and a deletion
guard that stops a collection instead of emptying it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from syncd.convert.canon import canon_text, canonical, comparable_of
from syncd.journal import ItemRow, served_base
from syncd.sync.merge import Overlap, merge3


class _Dropped(dict):  # type: ignore[type-arg]
    """Where a LocalVersion's object and canonical form were let go: the server's version
    has the same meaning, so the plan only records the item (``_both_changed``) and
    never reads them.  Any read is a bug, and fails loudly rather than reading nothing."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an item recorded as the same on both sides has no object here")

    __getitem__ = get = keys = items = values = __iter__ = __contains__ = __len__ = _refuse


DROPPED: dict[str, Any] = _Dropped()


class LocalVersion:
    """A local file that is new or whose etag moved since the journal, parsed.

    Its object may be given packed (a function that unpacks it), and its canonical form
    not at all: a first upload of 10,000 files holds every file's version from the scan
    to the last write, and as dicts the object and its canonical form were 5 of the 23 kB
    each file cost the main process's peak (contrib/bench/README.md, Session 28).  Only
    a merge needs the form; the upload needs the object once.  So what is given packed
    is unpacked on each read, and the form made when asked for (neither is kept)."""

    __slots__ = ("filename", "etag", "hash", "comparable", "_obj", "_canon")

    def __init__(
        self,
        filename: str,
        etag: tuple[int, int, int],
        hash: str,  # of the file's bytes
        obj: dict[str, Any] | Callable[[], dict[str, Any]],  # JSCalendar, from the file
        canon: dict[str, Any] | None,  # its comparable form (syncd.convert.canonical)
        comparable: str,  # hash of the canonical JSON, for "same content" checks
    ) -> None:
        self.filename, self.etag, self.hash, self.comparable = filename, etag, hash, comparable
        self._obj, self._canon = obj, canon

    @property
    def obj(self) -> dict[str, Any]:
        return self._obj if isinstance(self._obj, dict) else self._obj()

    @property
    def canon(self) -> dict[str, Any]:
        return self._canon if self._canon is not None else canonical(self.obj)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LocalVersion):
            return NotImplemented
        return (self.filename, self.etag, self.hash, self.comparable) == (
            other.filename,
            other.etag,
            other.hash,
            other.comparable,
        ) and self.obj == other.obj

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LocalVersion({self.filename!r}, {self.etag!r})"


class RemoteVersion:
    """A server object that is new or whose content hash moved since the journal.

    Its comparable form (``canon``, and ``comparable``, the hash of its JSON) is made
    when first asked for: only a comparison or a merge needs it, and most objects of a
    big pass meet neither (a first download's have nothing to be compared with).  A
    bulk conversion (syncd.sync.prepare) may give both in advance, the form as JSON
    text, decoded only if a merge needs it.  ``journal_base`` says what the journal
    keeps: the comparable form if it was made, else the object as served.
    """

    __slots__ = ("id", "obj", "updated", "_canon", "_comparable", "served")

    def __init__(
        self,
        id: str,
        obj: dict[str, Any],
        canon: dict[str, Any] | str | None = None,
        comparable: str | None = None,
        updated: str | None = None,
    ) -> None:
        self.id, self.obj, self.updated = id, obj, updated
        self._canon, self._comparable = canon, comparable
        self.served: str | None = None  # ``served_base(obj)``, when a worker made it

    @property
    def canon(self) -> dict[str, Any]:
        if isinstance(self._canon, str):
            self._canon = json.loads(self._canon)
        elif self._canon is None:
            self._canon = canonical(self.obj)
        return self._canon  # type: ignore[return-value]

    @property
    def comparable(self) -> str:
        if self._comparable is None:
            given = self._canon
            self._comparable = comparable_of(
                given if isinstance(given, str) else canon_text(self.canon)
            )
        return self._comparable

    def journal_base(self) -> tuple[Any, str | None]:
        """(base column, remote_hash) for the journal: the comparable form and its hash
        when they were made (JSON text as given, or the object), else the object as
        served and None (syncd.journal.served_base)."""
        if self._comparable is None:
            return (self.served if self.served is not None else served_base(self.obj)), None
        return (self._canon if self._canon is not None else self.canon), self._comparable

    def __repr__(self) -> str:
        return f"RemoteVersion({self.id!r}, uid={self.obj.get('uid')!r})"


@dataclass
class LocalView:
    """Local changes of one collection relative to the journal.

    ``missing`` holds UIDs whose file is gone from a directory that was read
    successfully -- the only local evidence of deletion.  ``unreadable`` holds
    UIDs whose file exists but could not be parsed: never a deletion.
    """

    changed: dict[str, LocalVersion] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)


@dataclass
class RemoteView:
    """Remote changes of one collection: fetched objects and evidenced deletions."""

    changed: dict[str, RemoteVersion] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)


class Kind(Enum):
    UPLOAD = "upload"  # local -> remote (create when the journal has no remote id)
    DOWNLOAD = "download"  # remote -> local file
    DELETE_LOCAL = "delete-local"
    DELETE_REMOTE = "delete-remote"
    RECORD = "record"  # both sides already agree: only the journal changes
    FORGET = "forget"  # both sides deleted: drop the journal row
    MERGE = "merge"  # both changed: write the merged object to both sides
    KEEP_BOTH = "keep-both"  # both changed: remote keeps the UID, local becomes a copy


@dataclass(frozen=True)
class Action:
    kind: Kind
    uid: str
    base: ItemRow | None = None
    local: LocalVersion | None = None
    remote: RemoteVersion | None = None
    merged: dict[str, Any] | None = None
    conflict: str | None = None  # the rule that decided, when sides overlapped

    @property
    def writes_remote(self) -> bool:
        return self.kind in (Kind.UPLOAD, Kind.DELETE_REMOTE, Kind.MERGE, Kind.KEEP_BOTH)

    @property
    def writes_local(self) -> bool:
        return self.kind in (Kind.DOWNLOAD, Kind.DELETE_LOCAL, Kind.MERGE, Kind.KEEP_BOTH)


@dataclass(frozen=True)
class ConflictPolicy:
    """``merge``: combine changes to different properties; ``overlap``: who wins the rest."""

    merge: bool = True
    overlap: Overlap = "remote-wins"


@dataclass(frozen=True)
class Guard:
    """Deletion guard: more than ``share`` and more than ``min_items``, or everything."""

    share: float = 0.5
    min_items: int = 5
    force: bool = False


@dataclass
class Plan:
    actions: list[Action]
    blocked: str | None = None  # set when the guard stopped this collection
    refused: list[Action] = field(default_factory=list)  # remote writes to a read-only collection

    def count(self, kind: Kind) -> int:
        return sum(1 for a in self.actions if a.kind is kind)


def plan_collection(
    journal: Mapping[str, ItemRow],
    local: LocalView,
    remote: RemoteView,
    *,
    policy: ConflictPolicy = ConflictPolicy(),
    guard: Guard = Guard(),
    remote_writable: bool = True,
) -> Plan:
    """Decide every UID that moved on either side; UIDs that moved nowhere are absent."""
    uids = set(local.changed) | local.missing | set(remote.changed) | remote.deleted
    actions = [
        action
        for uid in sorted(uids - local.unreadable - remote.unreadable)
        if (action := decide(uid, journal.get(uid), local, remote, policy)) is not None
    ]
    refused: list[Action] = []
    if not remote_writable:
        refused = [a for a in actions if a.writes_remote]
        actions = [a for a in actions if not a.writes_remote]
    # Counting the journal's rows is O(items) in SQLite: only a plan that deletes needs it.
    deletes = any(a.kind in (Kind.DELETE_LOCAL, Kind.DELETE_REMOTE) for a in actions)
    blocked = check_guard(len(journal), actions, guard) if deletes else None
    return Plan(actions, blocked, refused)


def decide(
    uid: str,
    base: ItemRow | None,
    local: LocalView,
    remote: RemoteView,
    policy: ConflictPolicy,
) -> Action | None:
    """The three-way table for one UID (see tests/sync/test_plan.py for every row)."""
    lv = local.changed.get(uid)
    rv = remote.changed.get(uid)
    l_gone = uid in local.missing
    r_gone = uid in remote.deleted

    if base is None:
        # Never synced: whatever exists on one side is new there.
        if lv and rv:
            return _both_changed(uid, None, lv, rv, policy)
        if lv:
            return Action(Kind.UPLOAD, uid, local=lv)
        if rv:
            return Action(Kind.DOWNLOAD, uid, remote=rv)
        return None

    if lv and rv:
        return _both_changed(uid, base, lv, rv, policy)
    if lv:
        # Edit beats delete: a local edit of a remotely deleted item is re-created there.
        return Action(Kind.UPLOAD, uid, base=base, local=lv)
    if rv:
        return Action(Kind.DOWNLOAD, uid, base=base, remote=rv)
    if l_gone and r_gone:
        return Action(Kind.FORGET, uid, base=base)
    if l_gone:
        return Action(Kind.DELETE_REMOTE, uid, base=base)
    if r_gone:
        return Action(Kind.DELETE_LOCAL, uid, base=base)
    return None


def _both_changed(
    uid: str, base: ItemRow | None, lv: LocalVersion, rv: RemoteVersion, policy: ConflictPolicy
) -> Action:
    if lv.comparable == rv.comparable:
        return Action(Kind.RECORD, uid, base=base, local=lv, remote=rv)
    base_obj = base.base if base is not None else None
    if policy.merge and base_obj is not None:
        merged, overlapping = merge3(base_obj, lv.canon, rv.canon, policy.overlap, _newer(lv, rv))
        if not overlapping:
            return Action(Kind.MERGE, uid, base=base, local=lv, remote=rv, merged=merged)
        if policy.overlap != "keep-both":
            return Action(
                Kind.MERGE,
                uid,
                base=base,
                local=lv,
                remote=rv,
                merged=merged,
                conflict=policy.overlap,
            )
    rule = policy.overlap
    if rule == "keep-both":
        return Action(Kind.KEEP_BOTH, uid, base=base, local=lv, remote=rv, conflict=rule)
    winner_local = rule == "local-wins" or (rule == "newest" and _newer(lv, rv) == "local")
    if winner_local:
        return Action(Kind.UPLOAD, uid, base=base, local=lv, remote=rv, conflict=rule)
    return Action(Kind.DOWNLOAD, uid, base=base, local=lv, remote=rv, conflict=rule)


def _newer(lv: LocalVersion, rv: RemoteVersion) -> str:
    """'local' only when the local LAST-MODIFIED is strictly later; remote wins ties."""
    l_upd = str(lv.obj.get("updated") or "")
    r_upd = str(rv.obj.get("updated") or rv.updated or "")
    return "local" if l_upd and l_upd > r_upd else "remote"


def check_guard(known: int, actions: list[Action], guard: Guard) -> str | None:
    """Why this collection must stop, or None.  Both sides are checked separately."""
    if guard.force or known == 0:
        return None
    for kind, side in ((Kind.DELETE_LOCAL, "local"), (Kind.DELETE_REMOTE, "remote")):
        n = sum(1 for a in actions if a.kind is kind)
        if n == 0:
            continue
        # Emptying a one-item collection is an ordinary edit, not a disaster.
        everything = n >= known and known > 1
        too_many = n > guard.min_items and n > guard.share * known
        if everything or too_many:
            return f"would delete {n} of {known} items on the {side} side" + (
                " (all of them)" if everything else ""
            )
    return None
