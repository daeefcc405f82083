"""One sync pass of one pair: gather both sides, plan, execute, record.

The I/O shell around the pure planner.  Order matters for crash safety: the
remote writes go first, then the local files (atomic, one filesystem flush per
collection), then the journal commits, and only then does the stored JMAP state
move.  A crash anywhere before the end replays from the old state, and the
replay is idempotent because both sides are compared by content hash.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import logging
import operator
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio.lowlevel

from syncd import convert
from syncd.config import Config, Pair
from syncd.convert.canon import canon_text, comparable_of
from syncd.errors import SyncdError
from syncd.jmap.client import JmapClient
from syncd.journal import (
    CollectionRow,
    ItemRow,
    ItemRows,
    Journal,
    etag_from_text,
    etag_to_text,
)
from syncd.sync import plan as P
from syncd.sync import readahead
from syncd.sync.committer import Committer
from syncd.sync.prepare import Canon, Made, Preparer, bytes_hash
from syncd.sync.readahead import Readahead
from syncd.sync.remote import (
    CALENDARS,
    DataType,
    PackedObjects,
    RemoteCollection,
    RemoteDelta,
    RemoteStore,
    collection_of,
)
from syncd.sync.result import CollectionResult, PassResult
from syncd.sync.workers import worker_count
from syncd.vdir.look import plain_collections
from syncd.vdir.names import collection_dirname, item_filename
from syncd.vdir.prefetch import directory_look
from syncd.vdir.storage import ChangedOnDisk, Etag, VdirCollection, VdirRoot, holds_at_least

log = logging.getLogger("syncd.sync")

# Files (and their journal rows) written in one batch at most: one flush of the disk and
# one journal commit per this many items of a big pass.
COMMIT_EVERY = 2000
# From this many new files, an empty collection directory is written whole beside it and
# swapped in (PairSync._fills_empty_directory); below it a pass writes file by file.
# Above WHOLE_MAX too: the journal rows of a whole download wait in memory for the swap
# (about 1.5 KB each, with their base), and a pass of 50,000 already peaks near 500 MB.
WHOLE_MIN, WHOLE_MAX = 1000, 20000


@dataclass(frozen=True)
class PassOptions:
    dry_run: bool = False
    force_delete: bool = False
    allow_account_change: bool = False
    # Compare each directory with the journal by fingerprint before file by file, and keep
    # the journal's fingerprints for the next pass (syncd.vdir.fingerprint).  For `syncd
    # sync`, whose fingerprints a child computes on the other core; the daemon, which
    # would compute them itself for as much as the comparison costs, leaves it off.
    fingerprints: bool = False
    # The daemon's word that no file changed since the journal was written (its watcher
    # saw nothing; syncd.daemon.local_scan_needed): no file is stat'ed.  A write this
    # pass makes still checks its file's etag first.
    local_unchanged: bool = False
    # The daemon's word that only these files may have changed since the journal was
    # written (collection directory -> file names its watcher reported): only they are
    # stat'ed, the rest is taken as the journal has it.  A directory not named is
    # unchanged.  None: look at every file.
    local_named: dict[str, set[str]] | None = None
    # Start the conversion workers as a pair's first pass begins, before the server says
    # how many objects it has (syncd.sync.prepare.Preparer.start_early).  For `syncd
    # sync` and the daemon (which stops the forkserver after a pass: a small account's
    # first pass leaves it nothing); off where a caller says nothing.
    early_workers: bool = False


def content_hash(canon: dict[str, Any]) -> str:
    return comparable_of(canon_text(canon))


def remote_version(obj: dict[str, Any], ready: Canon | None = None) -> P.RemoteVersion:
    """``ready``: its comparable form, computed by a conversion worker; without it the
    form is made only if the pass compares or merges this object."""
    return P.RemoteVersion(
        id=str(obj["id"]),
        obj=obj,
        canon=ready.text if ready is not None else None,  # decoded if a merge needs it
        comparable=ready.comparable if ready is not None else None,
        updated=obj.get("updated"),
    )


@dataclass
class Active:
    """A collection paired on both sides in this pass."""

    remote: RemoteCollection
    row: CollectionRow
    vdir: VdirCollection
    result: CollectionResult
    local: P.LocalView = field(default_factory=P.LocalView)
    remote_view: P.RemoteView = field(default_factory=P.RemoteView)
    journal: ItemRows = field(default_factory=lambda: ItemRows({}, None))  # type: ignore[arg-type]
    touched: list[ItemRow] = field(default_factory=list)  # etag moved, content did not
    plan: P.Plan | None = None
    new_remote: bool = False
    # Rows of a whole download (VdirCollection.begin_whole), recorded after its swap.
    deferred: list[ItemRow] | None = None


class _OnDemand(Mapping[str, Any]):
    """A mapping loaded on first use."""

    def __init__(self, load: Callable[[], dict[str, Any]]) -> None:
        self._load: Callable[[], dict[str, Any]] = load
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class _RemoteIndex(Mapping[str, tuple[str, str]]):
    """remote id -> (collection, uid), as ``Journal.remote_index``: a pass that brings a
    few objects looks each up (50,000 rows cost a one-change pass 0.1 s); iterating, or
    a pass that brings many, reads the whole index once."""

    MANY = 500

    def __init__(self, journal: Journal, expected: int) -> None:
        self.journal = journal
        self._all: dict[str, tuple[str, str]] | None = None
        self._one: dict[str, tuple[str, str] | None] = {}
        self._eager = expected > self.MANY

    @property
    def all(self) -> dict[str, tuple[str, str]]:
        if self._all is None:
            self._all = self.journal.remote_index()
        return self._all

    def get(self, key: str, default: Any = None) -> Any:
        if self._all is not None or self._eager:
            return self.all.get(key, default)
        if key not in self._one:
            self._one[key] = self.journal.remote_location(key)
        found = self._one[key]
        return default if found is None else found

    def __getitem__(self, key: str) -> tuple[str, str]:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)


def _went_back(old: str, new: str | None) -> bool:
    """JMAP states are opaque, but where both are numbers (Cyrus's modseqs) a smaller
    new one can only mean the server's data went back in time."""
    return new is not None and old.isdigit() and new.isdigit() and int(new) < int(old)


def _advice(exc: Exception, act: Active) -> str:
    """The error, and what to do when the cure is the user's."""
    errno_ = getattr(exc, "errno", None)
    if errno_ == errno.ENOSPC:
        return f"{exc}; free some space on the disk holding {act.vdir.path}: it syncs next pass"
    if errno_ in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc}; make {act.vdir.path} writable for this user: it syncs next pass"
    return str(exc)


def _touch(act: Active, row: ItemRow) -> None:
    """A file whose etag moved but whose meaning did not: its current etag becomes the base
    this pass compares against, so deleting or replacing it is not mistaken for overwriting
    a user's change."""
    act.touched.append(row)
    act.journal[row.uid] = row


class _Seen(Protocol):
    """uid -> the file a scan found it in (files taken in name order)."""

    def __contains__(self, uid: object) -> bool: ...
    def __getitem__(self, uid: str) -> str: ...
    def __setitem__(self, uid: str, filename: str) -> None: ...


class _SeenAmongNamed:
    """A full scan's ``seen`` at file ``at``, for a scan of the named files alone.

    A full scan takes every file in name order and records the UID of each unchanged
    one as found there; a changed file whose UID was found before it is a duplicate.
    In a named scan every file not named is unchanged and holds its row's UID, so "was
    this UID found before ``at``" is answered from the UID's row, with one point query."""

    def __init__(self, journal: ItemRows, named: Mapping[str, str | None]) -> None:
        self.among_named: dict[str, str] = {}
        self.at = ""
        self._journal = journal
        self._named = named

    def _unnamed_file(self, uid: str) -> str | None:
        row = self._journal.get(uid)
        if row is None or row.filename in self._named or row.filename >= self.at:
            return None
        return row.filename

    def __contains__(self, uid: object) -> bool:
        if uid in self.among_named:
            return True
        return isinstance(uid, str) and self._unnamed_file(uid) is not None

    def __getitem__(self, uid: str) -> str:
        files = [f for f in (self.among_named.get(uid), self._unnamed_file(uid)) if f]
        if not files:
            raise KeyError(uid)
        return max(files)  # the one a full scan came to last

    def __setitem__(self, uid: str, filename: str) -> None:
        self.among_named[uid] = filename


class PairSync:
    """Runs passes for one pair; owns nothing but references."""

    def __init__(
        self,
        config: Config,
        pair: Pair,
        client: JmapClient,
        journal: Journal,
        *,
        dtype: DataType = CALENDARS,
        echo: Callable[[str], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        exclude_dirs: frozenset[str] = frozenset(),
    ):
        self.config = config
        self.pair = pair
        self.client = client
        self.journal = journal
        self._since_yield = 0  # items handled since the event loop last ran (_breathe)
        self._preparer: Preparer | None = None  # conversion workers of a big pass
        self.store = RemoteStore(client, dtype)
        self.dtype = dtype
        self.echo = echo or (lambda line: None)
        self.progress = progress  # (items done, items to do) while a pass writes
        self._done = self._total = 0
        # Directories under the root that hold the pair's other type (task lists for a
        # calendar pass and the reverse) or whose type is not known yet: not ours.
        self.exclude_dirs = exclude_dirs
        self._options = PassOptions()
        self._local_named: dict[str, set[str]] | None = None  # see _pass
        self._ahead: Readahead | None = None  # files parsed ahead of _scan_local
        # A first pass over a filled vdir: each directory's files read and parsed while
        # the server answers (``_read_early``), by directory path.
        self._early: dict[str, tuple[Readahead, threading.Thread]] = {}
        self._pending_meta: list[tuple[str, dict[str, Any]]] = []

    @property
    def state_key(self) -> str:
        return self.dtype.item

    async def run(self, options: PassOptions = PassOptions()) -> PassResult:
        self._preparer = None if options.dry_run else self._new_preparer()
        try:
            return await self._pass(options)
        finally:
            self.store.sink = self.store.expect = None
            if self._preparer is not None:
                self._preparer.close()
                self._preparer = None
            for ahead, thread in self._early.values():  # directories the pass did not scan
                thread.join()
                ahead.close()
            self._early.clear()

    def _new_preparer(self) -> Preparer | None:
        """Conversion workers, used once a pass brings enough objects (syncd.sync.prepare):
        they convert each batch of the fetch while the server sends the next."""
        workers = worker_count()
        if workers == 0:
            return None
        index: dict[str, tuple[str, str]] | None = None

        adopting: bool | None = None

        def new_to_journal(obj: dict[str, Any]) -> bool:
            nonlocal index
            if index is None:
                index = self.journal.remote_index()
            return str(obj.get("id")) not in index

        def is_adopting() -> bool:
            """A first pass over a vdir filled by another tool (an empty journal, files)."""
            nonlocal adopting
            if adopting is None:
                adopting = not index and _holds_items(self.pair.local)
            return adopting

        def compared(obj: dict[str, Any]) -> bool:
            """Will the pass compare this object?  Those the journal knows, yes; new ones
            only with a local file of the same UID, which a vdir the journal knows
            nothing of yet may hold (syncing into a vdir filled by another tool)."""
            return not new_to_journal(obj) or is_adopting()

        def rendered(obj: dict[str, Any]) -> bool:
            """Is its file made in advance?  For an object new to the journal, yes, but
            not when adopting: then nearly every object has its file already (a vdir
            vdirsyncer filled from this server), and the few that have none are made
            when written (10,000 files made for nothing were a fifth of the pass)."""
            return new_to_journal(obj) and not is_adopting()

        preparer = Preparer(rendered, workers, compared)
        self.store.sink = preparer.feed
        self.store.expect = preparer.expect
        return preparer

    async def _pass(self, options: PassOptions) -> PassResult:
        self._options = options
        result = PassResult(pair=self.pair.name)
        root = VdirRoot(self.pair.local)
        root.check()  # an unmounted disk is an error, never "everything was deleted"
        self.journal.bind_account(
            f"{self.client.account_id}@{self.client.session.api_url}",
            allow_change=options.allow_account_change,
        )
        self._retry_ids: set[str] = set()
        since = self.journal.get_state(self.state_key)
        # Server time before this pass read anything: an ``updated`` older than this
        # second can serve as a fingerprint later (see trusted_updated).
        self.updated_floor = self.client.last_server_date
        known = self._known_updated()
        first_pass = since is None and not known  # it brings everything the server has
        if first_pass and options.early_workers and self._preparer is not None:
            self._preparer.start_early()
        self._read_early(root, options)
        pending = self.journal.pending_remote()
        pending += [i for i in await self._settle_intents() if i not in pending]
        delta = await self.store.fetch(since, pending, known)
        if await self._state_moved_suspiciously(since, delta):
            # /changes said nothing changed, but the state went back or the server's
            # count disagrees with ours: a server that lost or restored data answers
            # like this.  Trust only a complete listing.
            log.warning(
                "%s: the server's state moved with no changes (went back, or its item "
                "count differs from the journal's); verifying with a full listing",
                self.pair.name,
            )
            delta = await self.store.full_listing(known, collections=delta)
        if self._preparer is not None:
            self._preparer.seal()
            await self._preparer.canons_ready()
        actives = await self._collections(root, delta, result, options)
        self._local_named = options.local_named
        if self._local_named is not None and not set(self._local_named) <= {
            str(act.vdir.path) for act in actives
        }:
            # A name the pass cannot place (a directory not synced, a path spelled
            # otherwise): no change may be taken for none, so every file is looked at.
            log.debug("%s: a named file outside the synced directories", self.pair.name)
            self._local_named = None
        self._route_remote(delta, actives)
        for act in actives:
            await self._scan_local(act)
            self._compare_ready(act)
            act.plan = P.plan_collection(
                act.journal,
                act.local,
                act.remote_view,
                policy=P.ConflictPolicy(self.pair.conflict.merge, self.pair.conflict.overlap),
                guard=P.Guard(
                    self.pair.delete_share, self.pair.delete_min_items, options.force_delete
                ),
                remote_writable=act.remote.may_write,
            )
            for refused in act.plan.refused:
                act.result.errors.append(
                    f"{act.row.dirname}: {refused.uid}: the {self.dtype.label} is read-only on the "
                    f"server; the local {refused.kind.value} was not sent (undo it locally)"
                )
            if act.plan.blocked:
                act.result.blocked = (
                    f"{act.row.dirname}: {act.plan.blocked}; nothing was changed in this collection. "
                    f"If that is intended, run: syncd sync --force-delete {self.pair.name}"
                )
        if options.dry_run:
            self._print_plan(actives)
            result.collections = [a.result for a in actives]
            return result
        new_state = await self._execute(actives, delta)
        with self.journal.transaction():
            for act in actives:
                acted = {a.uid for a in act.plan.actions} if act.plan else set()
                for row in act.touched:
                    if row.uid not in acted:  # an executed action wrote its own row
                        self.journal.put_item(row)
            self._settle_fingerprints(delta)
            self.journal.clear_intents()
            self.journal.clear_pending_remote(pending)
            if self._retry_ids:
                self.journal.add_pending_remote(self._retry_ids, "failed item", backoff=True)
            blocked_ids = self._blocked_remote_ids(actives)
            if blocked_ids:
                self.journal.add_pending_remote(blocked_ids, "deletion guard", backoff=False)
            if delta.collection_state is not None:
                self.journal.set_state(self.dtype.collection, delta.collection_state)
            self.journal.set_state(self.state_key, new_state)
            if options.fingerprints:  # for the next pass; O(items) only after a change
                for act in actives:
                    self.journal.store_listing_fingerprint(act.remote.id)
        result.collections = [a.result for a in actives]
        return result

    # -- gathering ---------------------------------------------------------------------

    async def _state_moved_suspiciously(self, since: str | None, delta: RemoteDelta) -> bool:
        """A quiet /changes with a moved state is normal (the state counts mail and tasks
        too on Cyrus); it is suspicious only when the server's item count is not ours."""
        if since is None or delta.complete or delta.objects or delta.destroyed:
            return False
        if delta.state in (None, since):
            return False
        if _went_back(since, delta.state):
            # Cyrus's states are counters: a smaller one means the server was restored
            # from a backup, and its "no changes" hides whatever the restore reverted.
            log.warning("%s: the server's state went back from %s to %s (restored?)",
                        self.pair.name, since, delta.state)  # fmt: skip
            return True
        ids = [c.remote_id for c in self.journal.collections() if not c.detached]
        if not ids:
            return False
        expected = self.journal.db.execute(
            "SELECT COUNT(DISTINCT remote_id) FROM items WHERE remote_id IS NOT NULL"
            f" AND collection IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchone()[0]
        return await self.store.count(ids) != expected

    def _settle_fingerprints(self, delta: RemoteDelta) -> None:
        """Unchanged objects seen again get a trusted ``updated``, so the next full
        listing can skip them."""
        # Many objects (a first download's): one query for the rows that could need it,
        # not a look-up per object; a few: a look-up each (the query reads every row).
        many = len(delta.objects) > _RemoteIndex.MANY
        untrusted = self.journal.remote_ids_not_trusted() if many else set()
        for obj in delta.objects.values():
            if many and obj.get("id") not in untrusted:
                continue
            row = self.journal.item_by_remote_id(obj.get("id", ""))
            if row is None or row.remote_updated is not None:
                continue
            trusted = trusted_updated(obj.get("updated"), self.updated_floor)
            if (
                trusted is not None
                and _remote_hash(row) == remote_version(obj, self._canon_for(obj)).comparable
            ):
                self.journal.put_item(_replace(row, remote_updated=trusted))

    def _known_updated(self) -> Mapping[str, str | None]:
        """remote id -> ``updated`` last seen, read only if a full listing needs it: a
        pass that asks /changes never does (10,000 rows cost a no-change pass 15 ms)."""
        return _OnDemand(
            lambda: dict(
                self.journal.db.execute(
                    "SELECT remote_id, remote_updated FROM items WHERE remote_id IS NOT NULL"
                ).fetchall()
            )
        )

    def _selected(self, rc: RemoteCollection) -> bool:
        wanted = self.pair.collections
        return wanted == "all" or rc.id in wanted or rc.name in wanted

    def _read_early(self, root: VdirRoot, options: PassOptions) -> None:
        """A first pass over a vdir another tool filled (an empty journal, item files)
        reads and parses every file: begin now, on a thread and the parsing workers,
        while the server answers, instead of after its answer (the cores were half idle
        until then).  The scan takes a file's early bytes only where its own listing
        shows the same etag (Readahead.read)."""
        if options.dry_run or options.local_unchanged or options.local_named is not None:
            return
        if worker_count() < 2 or not self.journal.is_empty():
            return
        for dirname in sorted(root.collections()):
            if dirname in self.exclude_dirs:
                continue
            vdir = root.collection(dirname)
            if not holds_at_least(vdir.path, readahead.MIN_FILES):
                continue  # too few to be worth workers: no second listing of it either
            try:
                listing = {name: etag_to_text(etag) for name, etag in vdir.list().items()}
            except OSError:
                continue  # the scan says what is wrong with it
            ahead = Readahead()
            thread = ahead.start_early(listing, vdir.read)  # type: ignore[arg-type]
            if thread is not None:
                self._early[str(vdir.path)] = (ahead, thread)

    async def _collections(
        self, root: VdirRoot, delta: RemoteDelta, result: PassResult, options: PassOptions
    ) -> list[Active]:
        """Pair remote calendars with local directories; create what is new on either side."""
        rows = {r.remote_id: r for r in self.journal.collections()}
        all_dirs = set(root.collections())
        local_dirs = all_dirs - (self.exclude_dirs - {r.dirname for r in rows.values()})
        taken = all_dirs | {r.dirname for r in rows.values()}
        remote_by_id = {rc.id: rc for rc in delta.collections}
        actives: list[Active] = []
        paired_dirs: set[str] = set()

        for rc in sorted(delta.collections, key=lambda c: c.id):
            if not self._selected(rc):
                continue
            row = rows.get(rc.id)
            if row is None:
                dirname = self._adoptable_dir(
                    root, rc, local_dirs - {r.dirname for r in rows.values()} - paired_dirs
                )
                if dirname is None:
                    dirname = collection_dirname(rc.name if rc.name != rc.id else rc.id, taken)
                    taken.add(dirname)
                    if options.dry_run:
                        self.echo(
                            f"would create local directory {dirname} for {self.dtype.label} {rc.name!r}"
                        )
                        continue
                    root.create_collection(dirname)
                    log.info(
                        "%s: new %s %r -> %s", self.pair.name, self.dtype.label, rc.name, dirname
                    )
                row = CollectionRow(rc.id, dirname, None, None, self.dtype.label, None)
            elif row.dirname not in local_dirs:
                result.errors.append(
                    f"{self.pair.name}: the local directory {row.dirname} of {self.dtype.label} "
                    f"{rc.name!r} is gone; nothing was deleted on the server. To stop syncing it, "
                    f"list the other collections in the pair; to get it back, recreate the directory"
                )
                paired_dirs.add(row.dirname)
                continue
            paired_dirs.add(row.dirname)
            vdir = root.collection(row.dirname)
            row = self._sync_meta(rc, row, vdir, options)
            actives.append(
                Active(
                    rc, row, vdir, CollectionResult(row.dirname), journal=self.journal.items(rc.id)
                )
            )

        for rid, row in rows.items():
            if rid not in remote_by_id and row.dirname in local_dirs:
                paired_dirs.add(row.dirname)
                if row.detached is None:
                    result.errors.append(
                        f"{self.pair.name}: {self.dtype.label} {row.name!r} was deleted on the server; "
                        f"the local directory {row.dirname} was kept. Remove it by hand if it is no "
                        "longer wanted"
                    )
                    if not options.dry_run:
                        with self.journal.transaction():
                            self.journal.put_collection(
                                CollectionRow(
                                    rid,
                                    row.dirname,
                                    row.name,
                                    row.color,
                                    row.kind,
                                    "remote-deleted",
                                )
                            )

        for dirname in sorted(local_dirs - paired_dirs):
            if self.pair.collections != "all" and dirname not in self.pair.collections:
                continue
            vdir = root.collection(dirname)
            name = (vdir.read_meta("displayname") or dirname).strip() or dirname
            color = vdir.read_meta("color")
            if options.dry_run:
                self.echo(f"would create {self.dtype.label} {name!r} on the server for {dirname}")
                continue
            rid = await self.store.create_collection(name, color.strip() if color else None)
            log.info(
                "%s: local directory %s -> new %s %s",
                self.pair.name,
                dirname,
                self.dtype.label,
                rid,
            )
            row = CollectionRow(
                rid, dirname, name, color.strip() if color else None, self.dtype.label, None
            )
            with self.journal.transaction():
                self.journal.put_collection(row)
            rc = RemoteCollection(rid, name, row.color, True, {})
            actives.append(Active(rc, row, vdir, CollectionResult(dirname), new_remote=True))
        return actives

    def _adoptable_dir(self, root: VdirRoot, rc: RemoteCollection, free: set[str]) -> str | None:
        """A local directory made earlier for this calendar (by vdirsyncer, or a lost journal)."""
        if rc.id in free:
            return rc.id
        for d in sorted(free):
            name = root.collection(d).read_meta("displayname")
            if name is not None and name.strip() == rc.name:
                return d
        candidate = collection_dirname(rc.name, set())
        return candidate if candidate in free else None

    def _sync_meta(
        self, rc: RemoteCollection, row: CollectionRow, vdir: VdirCollection, options: PassOptions
    ) -> CollectionRow:
        """displayname/color: three-way against the journal, the server winning a tie."""
        name, color = row.name, row.color
        local_name = _strip(vdir.read_meta("displayname"))
        local_color = _strip(vdir.read_meta("color"))
        patch: dict[str, Any] = {}
        for key, remote_value, local_value, last in (
            ("name", rc.name, local_name, row.name),
            ("color", rc.color, local_color, row.color),
        ):
            meta_key = "displayname" if key == "name" else "color"
            if remote_value != last or local_value is None:
                value = remote_value
                if local_value != value and value is not None and not options.dry_run:
                    vdir.write_meta(meta_key, value)
            elif local_value != last:
                value = local_value
                patch[key] = value
            else:
                value = last
            if key == "name":
                name = value
            else:
                color = value
        if patch and rc.may_write and not options.dry_run:
            # Applied right away: calendars are few and a rename is rare.
            self._pending_meta.append((rc.id, patch))
        new = CollectionRow(row.remote_id, row.dirname, name, color, row.kind, None)
        if new != row and not options.dry_run:
            with self.journal.transaction():
                self.journal.put_collection(new)
        return new

    def _canon_for(self, obj: dict[str, Any]) -> Canon | None:
        return self._preparer.canon(obj) if self._preparer is not None else None

    def _route_remote(self, delta: RemoteDelta, actives: list[Active]) -> None:
        """Give each collection its remote changes, by membership, UID and journal row."""
        by_id = {a.remote.id: a for a in actives}
        index = _RemoteIndex(self.journal, len(delta.objects) + len(delta.destroyed))
        if len(delta.objects) > _RemoteIndex.MANY:
            for active in actives:  # rows looked up by uid below: one listing, not a query each
                active.journal.read_listing()
        for oid, obj in delta.objects.items():
            uid = obj.get("uid")
            cid = collection_of(obj, self.dtype)
            old = index.get(oid)
            if old is not None and old[0] != cid and old[0] in by_id:
                # Moved to another calendar (or out of the pair): gone from the old one.
                by_id[old[0]].remote_view.deleted.add(old[1])
            act = by_id.get(cid or "")
            if act is None or not isinstance(uid, str) or not uid:
                if act is not None:
                    act.result.errors.append(f"server item {oid} has no UID; skipped")
                continue
            rv = remote_version(obj, self._canon_for(obj))
            known = act.journal.get(uid)
            if known is not None and known.remote_id == oid:
                try:
                    if _remote_hash(known) == rv.comparable:
                        continue  # our own write coming back, or a no-op change
                except Exception as exc:  # noqa: BLE001 - invalid JSCalendar from the server
                    self._unreadable_remote(act, oid, uid, exc)
                    continue
            act.remote_view.changed[uid] = rv
        gone = set(delta.destroyed)
        if delta.complete:
            gone |= {rid for rid in index if rid not in delta.all_ids}
        for rid in gone:
            where = index.get(rid)
            if where and where[0] in by_id and where[1] not in by_id[where[0]].remote_view.changed:
                by_id[where[0]].remote_view.deleted.add(where[1])

    def _unreadable_remote(self, act: Active, oid: str, uid: str, exc: Exception) -> None:
        """Report it and leave both sides as they are (never a deletion); asked again later."""
        act.remote_view.unreadable.add(uid)
        act.remote_view.changed.pop(uid, None)
        act.result.errors.append(f"server item {oid} ({uid}) cannot be read: {exc}")
        self._retry_ids.add(oid)

    def _compare_ready(self, act: Active) -> None:
        """Make the comparable form of each server object the plan will compare with a
        local edit (``plan._both_changed``), here, where one that cannot be made is
        reported instead of failing the pass.  The others' are made only if needed."""
        for uid in act.local.changed.keys() & act.remote_view.changed.keys():
            rv = act.remote_view.changed[uid]
            try:
                rv.comparable  # noqa: B018 - made now, kept in rv
            except Exception as exc:  # noqa: BLE001 - invalid JSCalendar from the server
                self._unreadable_remote(act, rv.id, uid, exc)

    async def _scan_local(self, act: Active) -> None:
        """Stat every file; read only those whose etag moved (DESIGN: local delta)."""
        if self._options.local_unchanged:
            log.debug("%s: %s unchanged (the watcher saw nothing)", self.pair.name, act.vdir.path)
            return
        listing: dict[str, str] | None = None  # file name -> etag text
        if self._local_named is not None:
            names = self._local_named.get(str(act.vdir.path))
            if not names:
                return  # nothing named in this directory
            if not act.journal.any_without_etag():
                await self._scan_named(act, names)
                return
            # A row without an etag says nothing about its file: look at every file.
            listing = self._full_listing(act)
        if listing is None and self._options.fingerprints:
            look = directory_look(act.vdir)
            if look is not None:
                if look.fingerprint == self.journal.listing_fingerprint(act.remote.id):
                    # every file is the journal's, with the journal's etag: nothing moved
                    log.debug("%s: %s is as the journal left it", self.pair.name, act.vdir.path)
                    return
                listing = look.listing()  # the same stat of every file, not a second one
        if listing is None:
            listing = self._full_listing(act)
        by_file = act.journal.by_filename()  # file name -> (uid, etag text)
        seen: dict[str, str] = {}  # uid -> filename, for duplicate detection
        names = sorted(listing)
        to_read = [
            name
            for name in names
            if (entry := by_file.get(name)) is None or entry[1] != listing[name]
        ]
        early = self._early.pop(str(act.vdir.path), None)
        if early is not None:
            self._ahead, thread = early
            thread.join()
        else:
            self._ahead = Readahead()
        try:
            if early is None:
                self._ahead.start(to_read, act.vdir.read)
            for filename in names:
                etag_text = listing[filename]
                entry = by_file.get(filename)
                if entry is not None and entry[1] == etag_text:
                    seen[entry[0]] = filename  # unchanged
                    continue
                await self._look_at(act, filename, etag_text, entry, seen)
        finally:
            self._ahead.close()
            self._ahead = None
        for uid, filename in act.journal.filenames():
            if uid not in seen and uid not in act.local.unreadable:
                if filename in listing:
                    continue  # still there but unreadable or re-UIDed: handled above
                act.local.missing.add(uid)
            # (a renamed file is changed content under a new name: handled above)
        self._keep_only_meaningful_changes(act)

    async def _scan_named(self, act: Active, names: set[str]) -> None:
        """What ``_scan_local`` finds when only ``names`` may differ from the journal (the
        daemon's watcher named them), at the cost of those files alone: their stats and
        journal rows, and a row by UID to place an item found in a second file.  Every
        other file is taken as the journal has it, as a full look over a listing that is
        the journal's but for these names would (tests/sync/test_named_scan.py compares
        the two)."""
        found: dict[str, str | None] = {}  # name -> etag text, None where list() has none
        for name in sorted(names):
            etag, skipped = act.vdir.listed(name)
            if skipped is not None:
                act.result.errors.append(f"{act.vdir.path}/{skipped}; left untouched")
            found[name] = etag_to_text(etag)
        by_file = act.journal.by_filenames(names)
        seen = _SeenAmongNamed(act.journal, found)
        for filename, etag_text in sorted(found.items()):
            if etag_text is None:
                continue
            seen.at = filename
            entry = by_file.get(filename)
            if entry is not None and entry[1] == etag_text:
                seen[entry[0]] = filename  # unchanged
                continue
            await self._look_at(act, filename, etag_text, entry, seen)
        for filename, (uid, _) in by_file.items():
            # Only a named file can be gone, and its row's UID is found only among them.
            gone = found.get(filename) is None
            if gone and uid not in seen.among_named and uid not in act.local.unreadable:
                act.local.missing.add(uid)
        self._keep_only_meaningful_changes(act)

    def _full_listing(self, act: Active) -> dict[str, str]:
        listing = {name: etag_to_text(etag) for name, etag in act.vdir.list().items()}
        for skipped in act.vdir.skipped:
            act.result.errors.append(f"{act.vdir.path}/{skipped}; left untouched")
        return listing  # type: ignore[return-value]

    async def _look_at(
        self,
        act: Active,
        filename: str,
        etag_text: str,
        entry: tuple[str, str | None] | None,
        seen: _Seen,
    ) -> None:
        """Read a file whose etag moved (or that the journal does not know) and say what
        it holds: a change, the same content (a touch), or a problem."""
        etag: Etag = etag_from_text(etag_text)  # type: ignore[assignment]
        row = act.journal.get(entry[0]) if entry is not None else None
        await self._breathe()
        try:
            data = (
                self._ahead.read(filename, act.vdir.read, etag_text)
                if self._ahead
                else act.vdir.read(filename)
            )
        except (OSError, SyncdError) as exc:
            self._local_problem(act, filename, row, str(exc))
            return
        digest = bytes_hash(data)
        if row is not None and row.local_hash == digest:
            seen[row.uid] = filename
            _touch(act, _replace(row, local_etag=etag))
            return
        parsed = await self._ahead.parsed(filename, data) if self._ahead else None
        objs: list[dict[str, Any]] | None = None
        try:
            if parsed is None:
                objs = convert.ics_to_jscal(data)
        except convert.ConversionError as exc:
            where = f" line {exc.line}" if getattr(exc, "line", None) else ""
            self._local_problem(act, filename, row, f"not valid iCalendar{where}: {exc}")
            return
        if objs is not None:
            count, kind, uid = len(objs), str(objs[0].get("@type", "Event")), str(objs[0]["uid"])
        else:
            assert parsed is not None
            count, kind, uid = parsed.count, parsed.kind, parsed.uid
        if count != 1:
            self._local_problem(
                act,
                filename,
                row,
                f"holds {count} items with different UIDs; a vdir file holds one (split it)",
            )
            return
        if kind != self.dtype.item_type:
            other = "VTODO" if kind == "Task" else "VEVENT"
            self._local_problem(
                act,
                filename,
                row,
                f"holds a {other}, but this directory is a {self.dtype.label} "
                f"({self.dtype.component}s only); move it to a "
                f"{'task list' if other == 'VTODO' else 'calendar'} directory",
            )
            return
        if not has_uid(data):
            try:
                data, etag = self._write_back_uid(act, filename, data, uid, etag)
            except (OSError, SyncdError) as exc:
                self._local_problem(act, filename, row, f"has no UID and {exc}")
                return
            digest = bytes_hash(data)
        if uid in seen:
            act.result.errors.append(
                f"{act.vdir.path / filename}: UID {uid!r} is also in {seen[uid]}; skipped "
                "(give one of them a new UID)"
            )
            act.local.unreadable.add(uid)
            return
        seen[uid] = filename
        obj: dict[str, Any] | Callable[[], dict[str, Any]] | None = (
            objs[0] if objs is not None else None
        )
        canon: dict[str, Any] | None = None
        if parsed is not None and parsed.comparable is not None:
            comparable = parsed.comparable  # the form itself stayed in the worker
            obj = parsed.first_obj  # unpacked when read (P.LocalVersion)
        else:
            obj = obj if obj is not None else parsed.objs()[0]  # type: ignore[union-attr]
            canon = convert.canonical(obj)  # type: ignore[arg-type]
            comparable = content_hash(canon)
        if _same_on_server(act.remote_view.changed.get(uid), comparable):
            # The plan only records it (plan._both_changed): its object and canonical form
            # are not needed (nor unpacked), and not held until the plan.
            obj = canon = P.DROPPED
        act.local.changed[uid] = P.LocalVersion(filename, etag, digest, obj, canon, comparable)
        # (the row of another UID that named this file: missing below unless seen)

    def _keep_only_meaningful_changes(self, act: Active) -> None:
        for uid, lv in list(act.local.changed.items()):
            row = act.journal.get(uid)
            if (
                row is not None
                and row.local_hash is not None
                and lv.comparable == _row_comparable(row)
            ):
                # Same meaning as last synced (a reformat, a touch): just remember the new etag.
                _touch(
                    act, _replace(row, filename=lv.filename, local_etag=lv.etag, local_hash=lv.hash)
                )
                del act.local.changed[uid]

    def _write_back_uid(
        self, act: Active, filename: str, data: bytes, uid: str, etag: Etag
    ) -> tuple[bytes, Etag]:
        """A file without UID gets the stable derived one written in, so every later pass
        (and every other tool) sees the same item."""
        fixed = insert_uid(data, uid)
        new_etag = act.vdir.write(filename, fixed, etag)
        log.info("%s: gave %s the UID %s", self.pair.name, act.vdir.path / filename, uid)
        return fixed, new_etag

    def _local_problem(self, act: Active, filename: str, row: ItemRow | None, reason: str) -> None:
        act.result.errors.append(f"{act.vdir.path / filename}: {reason}; left untouched")
        if row is not None:
            act.local.unreadable.add(row.uid)

    # -- executing -----------------------------------------------------------------------

    async def _execute(self, actives: list[Active], delta: RemoteDelta) -> str | None:
        # Packed: a first upload makes 10,000 of them before the first request goes out
        # (contrib/bench/README.md, Session 28).
        creates = PackedObjects()
        updates: dict[str, dict[str, Any]] = {}
        destroys: list[str] = []
        keys: dict[tuple[int, str], str] = {}  # (id(action), role) -> creation key or remote id
        n = 0
        for rc_id, patch in self._pending_meta:
            try:
                await self.store.update_collection(rc_id, patch)
            except SyncdError as exc:  # pragma: no cover - reported, not fatal
                log.warning("%s: could not update %s: %s", self.pair.name, rc_id, exc)
        self._pending_meta = []
        for act in actives:
            if act.plan is None or act.plan.blocked:
                continue
            for action in act.plan.actions:
                obj = None
                if action.kind is P.Kind.UPLOAD:
                    assert action.local is not None
                    obj = action.local.obj
                elif action.kind is P.Kind.MERGE:
                    obj = action.merged
                elif action.kind is P.Kind.KEEP_BOTH:
                    assert action.local is not None
                    n += 1
                    key = f"k{n}"
                    creates[key] = self._for_create(conflict_copy(action.local.obj), act)
                    keys[(id(action), "copy")] = key
                if obj is not None:
                    rid = self._remote_id(act, action)
                    if rid is None:
                        n += 1
                        key = f"k{n}"
                        creates[key] = self._for_create(obj, act)
                        keys[(id(action), "create")] = key
                    else:
                        base = action.base.base if action.base is not None else None
                        updates[rid] = self._patch(obj, base, action.remote)
                        keys[(id(action), "update")] = rid
                elif action.kind is P.Kind.DELETE_REMOTE:
                    assert action.base is not None
                    if action.base.remote_id:
                        destroys.append(action.base.remote_id)
        outcome = None
        self._total = sum(len(a.plan.actions) for a in actives if a.plan and not a.plan.blocked)
        self._step(0)
        if creates or updates or destroys:
            self._write_intents(actives, creates, updates, destroys)
            outcome = await self.store.write(creates, updates, destroys)
        for act in actives:
            if act.plan is None or act.plan.blocked:
                continue
            await self._apply_local(act, outcome, keys)
        new_state = delta.state
        if outcome is not None and outcome.states_chain and outcome.old_state == delta.state:
            new_state = outcome.new_state  # only our own writes happened since the fetch
        return new_state

    def _write_intents(
        self,
        actives: list[Active],
        creates: Mapping[str, dict[str, Any]],
        updates: dict[str, dict[str, Any]],
        destroys: list[str],
    ) -> None:
        """Durably note what we are about to send; a crash before the journal commit
        leaves these for ``_settle_intents`` to check against the server."""
        with self.journal.transaction():
            for obj in creates.values():
                self.journal.add_intent("create", _membership_of(obj), str(obj.get("uid")))
            for rid in updates:
                self.journal.add_intent("update", "", "", {"id": rid})
            for rid in destroys:
                self.journal.add_intent("destroy", "", "", {"id": rid})

    async def _settle_intents(self) -> list[str]:
        """Remote ids to fetch again because an interrupted pass may have changed them.

        A create whose answer was lost is found by its UID, so it is paired with the
        local file instead of being created a second time."""
        intents = self.journal.intents()
        if not intents:
            return []
        log.warning(
            "%s: settling %d operation(s) of an interrupted pass", self.pair.name, len(intents)
        )
        created = [uid for _, kind, _, uid, _ in intents if kind == "create" and uid]
        ids = await self.store.find_by_uids(created) if created else []
        ids += [
            str(detail["id"])
            for _, kind, _, uid, detail in intents
            if not (kind == "create" and uid) and detail.get("id")
        ]
        return ids

    def _remote_id(self, act: Active, action: P.Action) -> str | None:
        """The id to update, or None to create (new, or deleted remotely while edited here)."""
        if action.uid in act.remote_view.deleted:
            return None
        if action.remote is not None:
            return action.remote.id
        return action.base.remote_id if action.base is not None else None

    def _membership(self, act: Active) -> dict[str, Any]:
        if self.dtype.membership_is_map:
            return {self.dtype.membership: {act.remote.id: True}}
        return {self.dtype.membership: act.remote.id}

    def _for_create(self, obj: dict[str, Any], act: Active) -> dict[str, Any]:
        out = convert.for_upload(obj)
        out.update(self._membership(act))
        return out

    def _patch(
        self, obj: dict[str, Any], base: dict[str, Any] | None, remote: P.RemoteVersion | None
    ) -> dict[str, Any]:
        """A PatchObject that replaces every top-level property and removes what went away."""
        new = convert.for_upload(obj)
        new.pop(self.dtype.membership, None)
        new.pop("uid", None)
        patch: dict[str, Any] = dict(new)
        previous = set(base or {}) | set(convert.for_upload(remote.obj) if remote else {})
        for key in previous - set(new):
            if key not in ("uid", self.dtype.membership, "id"):
                patch[key] = None
        return patch

    def _retry_later(self, action: P.Action) -> None:
        """The state moves on past a failed item: fetch it again next pass."""
        if action.remote is not None:
            self._retry_ids.add(action.remote.id)

    async def _breathe(self, every: int = 32) -> None:
        """Let the event loop run between items of a long pass: converting 10,000 events
        takes many seconds, and a loop that never runs stops the systemd watchdog pings
        and the push stream's reads (the daemon could be killed, or see a false resume).
        No new cancellation point: a pass is cancelled only where it already could be."""
        self._since_yield += 1
        if self._since_yield >= every:
            self._since_yield = 0
            await anyio.lowlevel.cancel_shielded_checkpoint()

    def _step(self, n: int = 1) -> None:
        self._done = self._done + n if n else 0
        if self.progress is not None and self._total:
            self.progress(self._done, self._total)

    async def _apply_local(
        self, act: Active, outcome: Any, keys: dict[tuple[int, str], str]
    ) -> None:
        rows: list[ItemRow] = []
        assert act.plan is not None
        committer: Committer[list[ItemRow]] = Committer()
        if self._fills_empty_directory(act) and act.vdir.begin_whole():
            act.deferred = []  # recorded once the whole directory is in place
        else:
            act.vdir.begin_batch()
        try:
            await self._apply_actions(act, outcome, keys, rows, committer)
            self._record_settled(act, committer)
        except BaseException:
            act.vdir.abort_batch()
            with contextlib.suppress(Exception):  # the error that stopped the pass wins
                self._record_settled(act, committer)
            act.deferred = None  # their files went with the directory
            raise
        finally:
            committer.close()
        if act.deferred is None:
            self._commit_local(act, rows)
            return
        deferred, act.deferred = act.deferred + rows, None
        failed, kept = act.vdir.commit_whole()
        act.result.errors.extend(kept)
        # By UID: every row is new and has a file of its own, so any order will do, and
        # this one fills the indexes by UID and by file name from one end instead of
        # touching most of their pages in every chunk (and the one by server id too on
        # Cyrus, whose ids are made of the UID).  Servers send events in an order of
        # their own, and UIDs are mostly random: 10,000 rows took 0.22-0.27 s to put in
        # the order served, 0.19-0.20 s by UID, 36 MB written instead of 46
        # (contrib/bench/journal_rows.py; README, Session 25).
        deferred.sort(key=operator.attrgetter("uid"))
        with self.journal.checkpoints_beside():
            for start in range(0, len(deferred), COMMIT_EVERY):
                chunk = deferred[start : start + COMMIT_EVERY]
                self._record_committed(act, chunk, failed, new=True)

    def _fills_empty_directory(self, act: Active) -> bool:
        """A big download into a collection whose directory holds no items yet (a first
        download): every action writes a new file, so the whole directory can be made
        beside it and swapped in (``VdirCollection.begin_whole``).  It saves a rename per
        file and the temp file's own directory entry: 0.2 CPU-seconds of the main
        process at 10,000 events (contrib/bench/README.md, Session 24)."""
        assert act.plan is not None
        actions = act.plan.actions
        return WHOLE_MIN <= len(actions) <= WHOLE_MAX and all(
            a.kind is P.Kind.DOWNLOAD and a.local is None and a.base is None for a in actions
        )

    def _commit_local(self, act: Active, rows: list[ItemRow]) -> None:
        """Put the batch's files in place, durably, then record them in the journal (in
        that order: a crash between leaves files the next pass finds equal to the
        server's, never a row whose file is not there).  ``rows`` is emptied."""
        self._record_committed(act, rows, act.vdir.commit_batch())
        rows.clear()

    def _commit_in_background(
        self, act: Active, rows: list[ItemRow], committer: Committer[list[ItemRow]]
    ) -> None:
        """As ``_commit_local``, with the flush and renames on the committer's thread
        while this pass writes the next batch; the batch before this one is recorded
        now (it has had a whole batch's time to finish).  ``rows`` is emptied."""
        committer.start(act.vdir.detach_batch(), list(rows))
        rows.clear()
        self._record_settled(act, committer, keep=1)

    def _record_settled(
        self, act: Active, committer: Committer[list[ItemRow]], keep: int = 0
    ) -> None:
        for done_rows, failed in committer.settled(keep):
            self._record_committed(act, done_rows, failed)

    def _record_committed(
        self, act: Active, rows: list[ItemRow], failed: dict[str, str], new: bool = False
    ) -> None:
        """The journal rows of a batch whose files are in place (``failed``: the ones a
        save under the pass kept from being written).  In a whole download the batches'
        files are durable but not in place until the swap: their rows wait, and are then
        ``new`` (``Journal.add_items``)."""
        assert act.plan is not None
        if act.deferred is not None:
            act.deferred.extend(rows)
            return
        kept = rows
        if failed:
            by_uid = {a.uid: a for a in act.plan.actions}
            for row in rows:
                if row.filename in failed:
                    # Edited under us: fetch the server's side again, so the next pass
                    # sees both edits and the conflict rules decide (the user's edit is
                    # not lost).
                    act.result.errors.append(f"{failed[row.filename]}; it syncs next pass")
                    if row.uid in by_uid:
                        self._retry_later(by_uid[row.uid])
            kept = [row for row in rows if row.filename not in failed]
        with self.journal.transaction():
            # In the plan's order (a uid forgotten, then put, ends put), a run at a time.
            for forget, run in itertools.groupby(kept, key=_is_forgotten):
                if forget:
                    self.journal.delete_items(act.remote.id, (row.uid for row in run))
                elif new:
                    self.journal.add_items(list(run))
                else:
                    self.journal.put_items(run)
            self.journal.clear_errors(act.remote.id, (row.uid for row in kept))

    async def _apply_actions(
        self,
        act: Active,
        outcome: Any,
        keys: dict[tuple[int, str], str],
        rows: list[ItemRow],
        committer: Committer[list[ItemRow]],
    ) -> None:
        assert act.plan is not None
        actions = act.plan.actions
        preparer = self._preparer
        if preparer is not None:  # files made in advance: in the order they come back
            actions = sorted(
                actions, key=lambda a: preparer.order(a.remote.obj) if a.remote else -1
            )
        for action in actions:
            await self._breathe()
            self._step()
            ready = None
            if preparer is not None and action.kind is P.Kind.DOWNLOAD and action.remote:
                ready = await preparer.file(action.remote.obj)
                if ready is not None:
                    action.remote.served = ready.served
            try:
                row = self._apply_one(act, action, outcome, keys, ready)
            except ChangedOnDisk:
                act.result.errors.append(
                    f"{act.vdir.path}: {action.uid} changed on disk during the pass; it syncs next pass"
                )
                self._retry_later(action)
                continue
            except (OSError, SyncdError, convert.ConversionError) as exc:
                act.result.errors.append(f"{act.row.dirname}: {action.uid}: {_advice(exc, act)}")
                self.journal.record_error(act.remote.id, action.uid, "local", str(exc))
                self._retry_later(action)
                continue
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                # Server data the converter cannot use: report it, keep the local file.
                reason = f"the server's version cannot be converted ({type(exc).__name__}: {exc})"
                act.result.errors.append(f"{act.row.dirname}: {action.uid}: {reason}; left as is")
                self.journal.record_error(act.remote.id, action.uid, "remote", reason)
                self._retry_later(action)
                continue
            if row is not None:
                rows.append(row)
                if len(rows) >= COMMIT_EVERY:
                    # A big pass commits as it goes (a crash keeps what is committed),
                    # each part's flush and renames on a thread of their own while this
                    # one writes the next part (syncd.sync.committer).
                    self._commit_in_background(act, rows, committer)
                    act.vdir.begin_batch()

    def _apply_one(self, act, action, outcome, keys, ready=None):  # type: ignore[no-untyped-def]
        """``ready``: the file of a download, made in advance by a conversion worker."""
        K = P.Kind
        res = act.result
        coll = act.remote.id
        if action.kind is K.RECORD:
            assert action.local and action.remote
            return self._row(
                act,
                action.uid,
                action.local.filename,
                action.remote,
                action.local.etag,
                action.local.hash,
            )
        if action.kind is K.FORGET:
            return _forget(coll, action.uid)
        if action.kind is K.DELETE_REMOTE:
            rid = action.base.remote_id
            if outcome is not None and rid in outcome.failed:
                raise SyncdError(f"server refused to delete: {outcome.failed[rid]}")
            res.deleted_remote += 1
            return _forget(coll, action.uid)
        if action.kind is K.DELETE_LOCAL:
            base = action.base
            if base.local_etag is not None:
                with contextlib.suppress(FileNotFoundError):
                    act.vdir.delete(base.filename, base.local_etag)
            res.deleted_local += 1
            return _forget(coll, action.uid)
        if action.kind is K.DOWNLOAD:
            assert action.remote is not None
            filename, etag, digest = self._write_local(act, action, action.remote.obj, ready)
            res.downloaded += 1
            if action.conflict:
                res.conflicts += 1
                self._record_conflict(act, action, "remote")
            return self._row(act, action.uid, filename, action.remote, etag, digest)
        if action.kind in (K.UPLOAD, K.MERGE):
            copy = self._server_copy(action, outcome, keys, ("create", "update"))
            if copy is None:
                return None
            res.uploaded += 1
            lv = action.local
            if action.kind is K.MERGE:
                filename, etag, digest = self._write_local(act, action, copy)
                res.downloaded += 1
                if action.conflict:
                    res.conflicts += 1
                    self._record_conflict(act, action, f"merged, overlaps: {action.conflict}")
                return self._row(act, action.uid, filename, remote_version(copy), etag, digest)
            if action.conflict:
                res.conflicts += 1
                self._record_conflict(act, action, "local")
            return self._row(act, action.uid, lv.filename, remote_version(copy), lv.etag, lv.hash)
        if action.kind is K.KEEP_BOTH:
            # The server's version keeps the UID and the file name; the local one becomes a copy.
            copy = self._server_copy(action, outcome, keys, ("copy",))
            if copy is not None:
                data = convert.jscal_to_ics([copy])
                name = item_filename(str(copy["uid"]))
                etag = act.vdir.write(name, data, None)
                self.journal.put_item(
                    self._row(
                        act, str(copy["uid"]), name, remote_version(copy), etag, bytes_hash(data)
                    )
                )
                res.uploaded += 1
            filename, etag, digest = self._write_local(act, action, action.remote.obj)
            res.downloaded += 1
            res.conflicts += 1
            self._record_conflict(act, action, "kept both")
            return self._row(act, action.uid, filename, action.remote, etag, digest)
        raise AssertionError(action.kind)

    def _server_copy(
        self,
        action: P.Action,
        outcome: Any,
        keys: dict[tuple[int, str], str],
        roles: tuple[str, ...],
    ) -> dict[str, Any] | None:
        """What the server stored for this action's write; raises with its reason if refused."""
        if outcome is None:
            return None
        for role in roles:
            key = keys.get((id(action), role))
            if key is None:
                continue
            if key in outcome.failed:
                raise SyncdError(f"the server refused it: {outcome.failed[key]}")
            rid = outcome.created.get(key) if role != "update" else key
            copy = outcome.copies.get(rid) if rid else None
            if copy is None:
                raise SyncdError("the server did not confirm the write; it is retried next pass")
            return copy
        return None

    def _write_local(
        self, act: Active, action: P.Action, obj: dict[str, Any], ready: Made | None = None
    ) -> tuple[str, tuple[int, int, int], str]:
        """Write the server's version; unmapped local extras are merged back from the old file."""
        base = action.base
        if action.local is not None:
            filename, expected = action.local.filename, action.local.etag
        elif base is not None and action.uid not in act.local.missing:
            filename, expected = base.filename, base.local_etag
        else:
            filename, expected = (base.filename if base else item_filename(action.uid)), None
        previous = None
        if expected is not None:
            try:
                previous = act.vdir.read(filename)
            except (OSError, SyncdError):
                previous = None
        # Made in advance only for objects new to the journal: there is nothing to merge back.
        if ready is not None and previous is None:
            return filename, act.vdir.write(filename, ready.data, expected), ready.digest
        data = convert.jscal_to_ics([obj], previous=previous)
        etag = act.vdir.write(filename, data, expected)
        return filename, etag, bytes_hash(data)

    def _row(
        self, act: Active, uid: str, filename: str, rv: P.RemoteVersion, etag, digest: str
    ) -> ItemRow:  # type: ignore[no-untyped-def]
        base, remote_hash = rv.journal_base()
        return ItemRow(
            collection=act.remote.id,
            uid=uid,
            filename=filename,
            remote_id=rv.id,
            local_etag=etag,
            local_hash=digest,
            remote_hash=remote_hash,
            remote_updated=trusted_updated(rv.updated, self.updated_floor),
            base=base,
        )

    def _record_conflict(self, act: Active, action: P.Action, result: str) -> None:
        self.journal.record_conflict(
            act.remote.id,
            action.uid,
            action.conflict or "",
            json.dumps(action.local.obj, sort_keys=True) if action.local else None,
            json.dumps(action.remote.obj, sort_keys=True) if action.remote else None,
            result,
        )

    def _blocked_remote_ids(self, actives: list[Active]) -> set[str]:
        """Remote changes of blocked collections are fetched again next pass."""
        ids: set[str] = set()
        for act in actives:
            if act.plan is not None and act.plan.blocked:
                ids |= {rv.id for rv in act.remote_view.changed.values()}
                ids |= {
                    act.journal[u].remote_id or ""
                    for u in act.remote_view.deleted
                    if u in act.journal and act.journal[u].remote_id
                }
        ids.discard("")
        return ids

    def _print_plan(self, actives: list[Active]) -> None:
        for act in actives:
            assert act.plan is not None
            counts = {k: act.plan.count(k) for k in P.Kind}
            self.echo(
                f"{self.pair.name}/{act.row.dirname}: "
                + ", ".join(f"{k.value} {v}" for k, v in counts.items() if v)
                if any(counts.values())
                else f"{self.pair.name}/{act.row.dirname}: nothing to do"
            )
            for action in act.plan.actions:
                self.echo(
                    f"  {action.kind.value:13} {action.uid}"
                    + (f" (conflict: {action.conflict})" if action.conflict else "")
                )
            if act.plan.blocked:
                self.echo(f"  BLOCKED: {act.plan.blocked}")


def conflict_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """The losing local version of keep-both: a new UID and a marked title."""
    copy = dict(obj)
    uid = str(obj.get("uid"))
    copy["uid"] = (
        f"{uid}-conflict-{hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]}"
    )
    copy["title"] = f"{obj.get('title') or ''} (conflict copy)".strip()
    copy.pop("id", None)
    return copy


def _replace(row: ItemRow, **changes: Any) -> ItemRow:
    from dataclasses import replace

    return replace(row, **changes)


def _is_forgotten(row: ItemRow) -> bool:
    """A row ``_forget`` made: the item leaves the journal."""
    return row.remote_id is None and row.filename == ""


def _forget(collection: str, uid: str) -> ItemRow:
    """A marker row: remote_id None and empty filename mean 'delete this journal row'."""
    return ItemRow(collection, uid, "", None, None, None, None, None, None)


def has_uid(data: bytes) -> bool:
    return re.search(rb"^UID[;:]", data, re.MULTILINE | re.IGNORECASE) is not None


def insert_uid(data: bytes, uid: str) -> bytes:
    """Add ``UID`` to every VEVENT/VTODO of a file, changing nothing else in it."""
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    line = b"UID:" + uid.encode() + newline
    return re.sub(
        rb"^(BEGIN:(?:VEVENT|VTODO)\r?\n)",
        lambda m: m.group(1) + line,
        data,
        flags=re.MULTILINE | re.IGNORECASE,
    )


def _membership_of(obj: dict[str, Any]) -> str:
    ids = obj.get("calendarIds")
    if isinstance(ids, dict) and ids:
        return str(next(iter(ids)))
    return str(obj.get("taskListId") or "")


def trusted_updated(updated: str | None, floor: float | None) -> str | None:
    """``updated`` if it can tell a later edit apart, else None (always re-fetch).

    Servers keep ``updated`` to the second (Cyrus does), so an edit in the same second
    as our read leaves it unchanged.  Only a value from a second strictly before the
    server's clock at the start of the pass (``floor``) is sure to move on any edit.
    """
    if updated is None or floor is None:
        return None
    try:
        when = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return updated if when.timestamp() < int(floor) else None


def _same_on_server(rv: P.RemoteVersion | None, comparable: str) -> bool:
    """Whether the server's version has this very meaning (False where its comparable
    form cannot be made: ``_compare_ready`` reports that)."""
    if rv is None:
        return False
    try:
        return rv.comparable == comparable
    except Exception:  # noqa: BLE001 - invalid JSCalendar from the server, reported later
        return False


def _holds_items(root: Path) -> bool:
    """Whether any collection directory under ``root`` holds an item file (one that
    cannot be read may: compare, as before)."""
    try:
        names = plain_collections(root)
    except OSError:
        return True
    return any(holds_at_least(root / name, 1, unreadable=True) for name in names)


def _row_comparable(row: ItemRow) -> str | None:
    return content_hash(row.base) if row.base is not None else None


def _remote_hash(row: ItemRow) -> str | None:
    """The server's version as last synced, as ``RemoteVersion.comparable`` hashes it; a
    row whose base was kept as served has it made from the base now."""
    return row.remote_hash if row.remote_hash is not None else _row_comparable(row)


def _strip(value: str | None) -> str | None:
    return value.strip() if value is not None else None
