"""The JMAP side of a pair: collections and their items over JMAP calls.

Built on ``JmapClient``; knows the calendar (and task) data types, how to ask
for a delta in one request, how to fall back to a full listing, and how to
pack writes into requests within the server's limits (syncd.jmap.packing).
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from syncd.convert.dialect import (
    AUTO,
    PROBE,
    Dialect,
    detect,
    from_probe,
    from_server,
    patch_to_server,
    to_server,
)
from syncd.jmap.client import JmapClient, Request, Responses, ref
from syncd.jmap.errors import JmapError, MethodError
from syncd.jmap.packing import Sized, pack

log = logging.getLogger("syncd.remote")

# Times a paged listing is read again when the result moves under it (see _list_all).
LISTING_ATTEMPTS = 3
# Ids per /get of a first download's listing (_get_listed); the server's limit caps both.
FIRST_PAGE = 1024
PAGE = 2048
# Connections a first download's pages are read over (both transports can open a
# second one): while this process reads one answer, the server makes the next.
PAGE_CONNECTIONS = 2


@dataclass(frozen=True)
class DataType:
    """Names of one kind of collection and item in the server's dialect."""

    collection: str  # "Calendar"
    item: str  # "CalendarEvent"
    membership: str  # "calendarIds" (a map) or "taskListId" (a single id)
    membership_is_map: bool
    label: str  # "calendar", for messages
    in_collections: str  # the /query filter condition: "inCalendars" / "inTaskLists"
    item_type: str = "Event"  # the JSCalendar @type a local file must hold
    component: str = "VEVENT"  # the iCalendar component, for messages
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # server -> engine


# Task properties of draft-ietf-jmap-tasks that iCalendar has no place for.  The engine
# never sees them (they live in this vendor key, which is neither compared nor sent),
# so a local edit can never remove them on the server.
TASK_SERVER_ONLY = ("sortOrder", "workflowStatus", "estimatedWork", "impact")
VENDOR_TASK = "syncd.app:jmapTask"
# Server-set or computed on request (draft-ietf-jmap-tasks "Task"): never content.
TASK_COMPUTED = ("isDraft", "utcStart", "utcDue", "baseTaskId")


def normalize_task(obj: dict[str, Any]) -> dict[str, Any]:
    """A Task as the server sent it -> what the engine compares and writes locally.

    Drops what the server computes, and parks the task-only properties that have no
    iCalendar mapping (``sortOrder``, ``workflowStatus``, ``estimatedWork``,
    ``impact``) in a vendor key, dropping them where they hold their defaults.
    """
    out = {k: v for k, v in obj.items() if k not in TASK_COMPUTED}
    parked: dict[str, Any] = {}
    for key in TASK_SERVER_ONLY:
        if key in out:
            value = out.pop(key)
            if value not in (None, 0):
                parked[key] = value
    if parked:
        out[VENDOR_TASK] = parked
    return out


CALENDARS = DataType("Calendar", "CalendarEvent", "calendarIds", True, "calendar", "inCalendars")
TASKS = DataType(
    "TaskList",
    "Task",
    "taskListId",
    False,
    "task list",
    "inTaskLists",
    item_type="Task",
    component="VTODO",
    normalize=normalize_task,
)


@dataclass(frozen=True)
class RemoteCollection:
    id: str
    name: str
    color: str | None
    may_write: bool
    raw: dict[str, Any]


@dataclass
class RemoteDelta:
    """What changed on the server since the stored state.

    ``objects`` are full objects of created/updated/pending ids; ``destroyed``
    ids are evidence of deletion; with ``complete`` set, ``all_ids`` is the full
    id set and any journal id missing from it is gone too.
    """

    collections: list[RemoteCollection]
    collection_state: str | None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    destroyed: set[str] = field(default_factory=set)
    complete: bool = False
    all_ids: set[str] = field(default_factory=set)
    state: str | None = None


class PackedObjects(MutableMapping[str, dict[str, Any]]):
    """id -> object, each kept pickled and unpickled on every read.

    The server's copies of a first upload's 10,000 events are all read back before the
    first journal row is made; as dicts they were about 5 kB each of the main process's
    peak, pickled 1.4 (contrib/bench/README.md, Session 28).  Each is read once."""

    def __init__(self) -> None:
        self._packed: dict[str, bytes] = {}

    def __setitem__(self, key: str, obj: dict[str, Any]) -> None:
        self._packed[key] = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def __getitem__(self, key: str) -> dict[str, Any]:
        return pickle.loads(self._packed[key])  # type: ignore[no-any-return]

    def __delitem__(self, key: str) -> None:
        del self._packed[key]

    def __contains__(self, key: object) -> bool:
        return key in self._packed

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


@dataclass
class SetOutcome:
    """Per-item results of a batch of writes, with the server's copies of written objects."""

    created: dict[str, str] = field(default_factory=dict)  # creation key -> new id
    updated: set[str] = field(default_factory=set)
    destroyed: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # creation key or id -> reason
    copies: PackedObjects = field(default_factory=PackedObjects)  # id -> server object
    old_state: str | None = None
    new_state: str | None = None
    states_chain: bool = True  # every /set's oldState was the previous one's newState


def collection_of(obj: dict[str, Any], dtype: DataType) -> str | None:
    value = obj.get(dtype.membership)
    if dtype.membership_is_map:
        if isinstance(value, dict):
            ids = sorted(k for k, v in value.items() if v)
            return ids[0] if ids else None
        return None
    return value if isinstance(value, str) else None


class RemoteStore:
    """One data type of one account.  The server's JSCalendar dialect ends here: objects
    leave ``write`` in it and come out of ``_normal`` as RFC 8984, whatever it is."""

    def __init__(self, client: JmapClient, dtype: DataType = CALENDARS):
        self.client = client
        self.dtype = dtype
        self._probed = False  # asked the server which dialect it speaks (once per store)
        # Called with every batch of (normalised) objects as it arrives: a pass starts
        # converting them while the server is still sending (syncd.sync.prepare).
        self.sink: Callable[[list[dict[str, Any]]], None] | None = None
        # Told, before a first download's pages are asked for, how many objects they hold.
        self.expect: Callable[[int], None] | None = None

    @property
    def account(self) -> str:
        return self.client.account_id

    async def fetch(
        self,
        since: str | None,
        pending: Iterable[str] = (),
        known_updated: Mapping[str, str | None] | None = None,
    ) -> RemoteDelta:
        """The delta since ``since`` (one request when nothing much changed)."""
        if known_updated is None:
            known_updated = {}
        if since is None:
            return await self.full_listing(known_updated)
        pending = list(pending)
        delta: RemoteDelta | None = None
        state = since
        while True:
            req = Request()
            cal_id = None
            if delta is None:
                cal_id = req.add(f"{self.dtype.collection}/get", {"accountId": self.account})
            ch = req.add(
                f"{self.dtype.item}/changes",
                {"accountId": self.account, "sinceState": state, "maxChanges": 4096},
            )
            name = f"{self.dtype.item}/changes"
            g_created = req.add(
                f"{self.dtype.item}/get",
                {"accountId": self.account, "#ids": ref(ch, name, "/created")},
            )
            g_updated = req.add(
                f"{self.dtype.item}/get",
                {"accountId": self.account, "#ids": ref(ch, name, "/updated")},
            )
            probe = self._probe_into(req) if delta is None else None
            g_pending = None
            if delta is None and pending:
                g_pending = req.add(
                    f"{self.dtype.item}/get",
                    {
                        "accountId": self.account,
                        "ids": pending[: self.client.limits.max_objects_in_get],
                    },
                )
            res = await self.client.send(req)
            self._probe_result(res, probe)
            if delta is None:
                assert cal_id is not None
                cals = res.get(cal_id, f"{self.dtype.collection}/get")
                delta = RemoteDelta(
                    collections=[self._collection(c) for c in cals.get("list") or []],
                    collection_state=cals.get("state"),
                )
            err = res.error(ch)
            if err is not None:
                if err.get("type") == "cannotCalculateChanges":
                    log.info(
                        "%s/changes: cannotCalculateChanges, listing everything", self.dtype.item
                    )
                    return await self.full_listing(known_updated, collections=delta)
                raise MethodError(name, str(err.get("type")), err.get("description"), err)
            changes = res.get(ch, name)
            for call in (g_created, g_updated) + ((g_pending,) if g_pending else ()):
                got = res.get(call, f"{self.dtype.item}/get")
                normal = [self._normal(obj) for obj in got.get("list") or []]
                for obj in normal:
                    delta.objects[obj["id"]] = obj
                if self.sink is not None and normal:
                    self.sink(normal)
                if call == g_pending:
                    delta.destroyed.update(got.get("notFound") or [])
                else:
                    # Gone again between /changes and /get: as good as destroyed.
                    delta.destroyed.update(got.get("notFound") or [])
            delta.destroyed.update(changes.get("destroyed") or [])
            new_state = changes.get("newState")
            if changes.get("hasMoreChanges") and new_state and new_state != state:
                state = new_state
                continue
            delta.state = new_state
            if new_state == since and not delta.objects and not delta.destroyed:
                # Nothing changed.  A server that was wiped answers an unknown
                # future state with this too; the caller verifies when the
                # session state says otherwise.
                pass
            for oid in list(delta.destroyed):
                delta.objects.pop(oid, None)
            return delta

    async def count(self, collection_ids: list[str]) -> int | None:
        """How many items the server holds in these collections (one small request)."""
        req = Request()
        q = req.add(
            f"{self.dtype.item}/query",
            {
                "accountId": self.account,
                "filter": {self.dtype.in_collections: collection_ids},
                "limit": 0,
                "calculateTotal": True,
            },
        )
        res = await self.client.send(req)
        err = res.error(q)
        if err is not None and err.get("type") in ("unsupportedFilter", "invalidArguments"):
            # The tasks draft leaves Task/query's filter open; a server that names it
            # otherwise gets the safe answer "unknown" (the caller lists everything).
            log.info("%s/query: %s; count unknown", self.dtype.item, err.get("type"))
            return None
        total = res.get(q, f"{self.dtype.item}/query").get("total")
        return total if isinstance(total, int) else None

    async def full_listing(
        self, known_updated: Mapping[str, str | None], collections: RemoteDelta | None = None
    ) -> RemoteDelta:
        """Every id, then full objects only for ids that are new or whose ``updated`` moved.

        ``known_updated`` maps journal remote ids to the ``updated`` last seen; the engine
        stores None there when that value cannot be trusted as a fingerprint (an edit in
        the same second as our read; see engine.trusted_updated), which forces a fetch.
        """
        limit = self.client.limits.max_objects_in_get
        req = Request()
        cal_id = req.add(f"{self.dtype.collection}/get", {"accountId": self.account})
        state_id = req.add(f"{self.dtype.item}/get", {"accountId": self.account, "ids": []})
        listing_id = None
        if not known_updated:  # a first download: every id, and how many, at once
            listing_id = req.add(
                f"{self.dtype.item}/query", {"accountId": self.account, "calculateTotal": True}
            )
        probe = self._probe_into(req)
        res = await self.client.send(req)
        self._probe_result(res, probe)
        whole = None
        if listing_id is not None:
            whole = _whole_listing(res, listing_id, f"{self.dtype.item}/query")
            total = _optional_total(res, listing_id, f"{self.dtype.item}/query")
            if total is not None and self.expect is not None:
                self.expect(total)  # the conversion workers start while the pages come
        cals = res.get(cal_id, f"{self.dtype.collection}/get")
        delta = RemoteDelta(
            collections=[self._collection(c) for c in cals.get("list") or []],
            collection_state=cals.get("state"),
            complete=True,
            state=res.get(state_id, f"{self.dtype.item}/get").get("state"),
        )
        if collections is not None:
            delta.collections = collections.collections
            delta.collection_state = collections.collection_state
        if not known_updated:
            # Nothing known (a first download): every object is wanted whole, so each
            # page of ids comes with its objects, and no light listing is fetched first
            # (at 10,000 events, three requests and 0.5 s before the first object).
            def take(page: list[dict[str, Any]]) -> None:
                normal = [self._normal(obj) for obj in page]
                for obj in normal:
                    delta.objects[obj["id"]] = obj
                if self.sink is not None:
                    self.sink(normal)  # converted while the server prepares the next page

            if whole is not None:
                await self._get_listed(delta, whole, take)
            else:  # the server gave part of the listing only: pages of /query and /get
                await self._list_all(delta, None, take)
            for oid in set(delta.objects) - delta.all_ids:  # read before a listing restarted
                del delta.objects[oid]
            return delta
        light: dict[str, dict[str, Any]] = {}
        await self._list_all(
            delta, self._light, lambda page: light.update((o["id"], o) for o in page)
        )
        light = {oid: obj for oid, obj in light.items() if oid in delta.all_ids}
        wanted = [
            oid
            for oid, obj in light.items()
            if known_updated.get(oid) is None or known_updated[oid] != obj.get("updated")
        ]
        # With a sink, one /get per request: each answer is handed on (to conversion
        # workers) while the server prepares the next.
        step = limit if self.sink is not None else len(wanted)
        for start in range(0, len(wanted), max(step, 1)):
            batch = wanted[start : start + step]
            objs, missing, _ = await self.client.get_objects(self.dtype.item, batch)
            normal = [self._normal(obj) for obj in objs]
            for obj in normal:
                delta.objects[obj["id"]] = obj
            delta.all_ids.difference_update(missing)
            if self.sink is not None:
                self.sink(normal)
        return delta

    async def _get_listed(
        self,
        delta: RemoteDelta,
        ids: list[str],
        on_page: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        """Every object of a listing already read whole, a /get of ``FIRST_PAGE`` ids,
        then of ``PAGE`` (or the server's limit) at a time, each page handed to
        ``on_page`` as it arrives; ``delta.all_ids`` ends up as the listed ids the
        server still had.

        One /query, read in the request that took the state, instead of one per page:
        Cyrus spends about 30 ms on each /query of 10,000 events whatever its page, and
        that is what made small pages dear.  Small pages keep the machine busy from the
        start: the conversion workers begin on the first page while the server makes
        the next, instead of waiting 0.4 s for a page of 4,096.  The pages go over two
        connections (``PAGE_CONNECTIONS``) where the transport can open a second, so
        the server makes one page while this process reads the one before; the order
        in which they come back does not matter.  A listing read in one answer cannot
        move between pages; an object destroyed since comes back in notFound, and one
        created since is in the next pass's /changes (the state was read before the
        query)."""
        limit = self.client.limits.max_objects_in_get
        pages: list[list[str]] = []
        start, size = 0, min(FIRST_PAGE, limit)
        while start < len(ids):
            pages.append(ids[start : start + size])
            start += size
            size = min(PAGE, limit)
        found: set[str] = set()
        unread = iter(pages)

        async def read(client: JmapClient) -> None:
            for batch in unread:  # shared: each page is read once, by whichever is free
                page, _, _ = await client.get_objects(self.dtype.item, batch)
                found.update(obj["id"] for obj in page)
                on_page(page)

        clients = [self.client]
        if len(pages) > 2:
            clients += [c for _ in range(PAGE_CONNECTIONS - 1) if (c := self.client.sibling())]
        if len(clients) == 1:
            await read(self.client)
        else:
            try:
                async with anyio.create_task_group() as tg:
                    for client in clients:
                        tg.start_soon(read, client)
            except BaseExceptionGroup as group:
                raise _first_failure(group) from None
            finally:
                for client in clients[1:]:
                    await client.transport.aclose()
        delta.all_ids = found

    @property
    def _light(self) -> list[str]:
        return ["id", "uid", "updated", self.dtype.membership]

    async def _list_all(
        self,
        delta: RemoteDelta,
        properties: list[str] | None,
        on_page: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        """Every object, a /query page of ids at a time with their /get (``properties``,
        or whole), each page handed to ``on_page`` as it arrives; ``delta.all_ids`` ends
        up as every id the listing found.

        Pages are positions in a result that can move while it is read: an object
        destroyed on the server between two pages shifts the rest up by one, and the
        one that moves across the page boundary would be in neither page, which a
        complete listing reads as deleted on the server (and deletes locally).  So when
        the query's state moves between pages, the listing starts again (pages already
        handed on are handed on again); if it keeps moving, the delta is marked
        incomplete, so that no deletion is inferred from it."""
        limit = self.client.limits.max_objects_in_get
        seen: set[str] = set()
        for attempt in range(LISTING_ATTEMPTS):
            seen = set()
            first_state: object = None
            position = 0
            while True:
                req = Request()
                q = req.add(
                    f"{self.dtype.item}/query",
                    {
                        "accountId": self.account,
                        "position": position,
                        "limit": limit,
                        "calculateTotal": True,
                    },
                )
                get_args: dict[str, Any] = {
                    "accountId": self.account,
                    "#ids": ref(q, f"{self.dtype.item}/query", "/ids"),
                }
                if properties is not None:
                    get_args["properties"] = properties
                g = req.add(f"{self.dtype.item}/get", get_args)
                res = await self.client.send(req)
                query = res.get(q, f"{self.dtype.item}/query")
                state = query.get("queryState")
                if position == 0:
                    first_state = state
                elif state != first_state:
                    break  # moved: read it again
                page = res.get(g, f"{self.dtype.item}/get").get("list") or []
                seen.update(obj["id"] for obj in page)
                on_page(page)
                ids = query.get("ids") or []
                position += len(ids)
                total = query.get("total")
                if not ids or (total is not None and position >= total):
                    delta.all_ids = seen
                    return
            log.info(
                "%s/query: the result moved while it was read (attempt %d); reading it again",
                self.dtype.item,
                attempt + 1,
            )
        delta.complete = False  # what was read stands; nothing is inferred from the rest
        delta.all_ids = seen

    def _normal(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = from_server(obj, self._read_dialect(obj))
        return self.dtype.normalize(obj) if self.dtype.normalize is not None else obj

    # -- the server's JSCalendar dialect (syncd.convert.dialect) --------------------------

    def _known_dialect(self) -> Dialect | None:
        """The account's setting, else (``auto``) what was found out on this connection."""
        if self.client.jscalendar != AUTO:
            return Dialect(self.client.jscalendar)
        found = self.client.jscalendar_found
        return Dialect(found) if found else None

    def _read_dialect(self, obj: dict[str, Any]) -> Dialect:
        """Under ``auto`` every object read is evidence; 2.0 evidence sticks (a 2.0 server
        may still hold objects whose names do not tell)."""
        if self.client.jscalendar != AUTO:
            return Dialect(self.client.jscalendar)
        seen = detect(obj)
        if seen is not None and self.client.jscalendar_found != Dialect.JSCALENDARBIS:
            if self.client.jscalendar_found != seen:
                log.info("the server's %s objects are JSCalendar %s", self.dtype.item, seen.value)
            self.client.jscalendar_found = seen.value
        return seen or self._known_dialect() or Dialect.RFC8984

    def _probe_into(self, req: Request) -> dict[Dialect, str] | None:
        """Under ``auto``, while nothing is found out: ask the server which dialect it
        speaks (see ``PROBE``), in a request the pass makes anyway when it has room, so
        that finding out costs no round trip.  An empty account has no object to tell."""
        if self._probed or self._known_dialect() is not None:
            return None
        if len(req) + len(PROBE) > self.client.limits.max_calls_in_request:
            return None
        self._probed = True
        return {
            dialect: req.add(
                f"{self.dtype.item}/get",
                {"accountId": self.account, "ids": [], "properties": ["id", name]},
            )
            for dialect, name in PROBE.items()
        }

    def _probe_result(self, res: Responses, calls: dict[Dialect, str] | None) -> None:
        if calls is None or self._known_dialect() is not None:
            return
        accepted: dict[Dialect, bool | None] = {}
        for dialect, call in calls.items():
            err = res.error(call)
            refused = err is not None and err.get("type") == "invalidArguments"
            accepted[dialect] = True if err is None else (False if refused else None)
        found = from_probe(accepted)
        log.info(
            "%s: the server speaks JSCalendar %s",
            self.dtype.item,
            found.value if found else "(it does not tell: writing rfc8984 until it does)",
        )
        # undecided counts as rfc8984 (what syncd always wrote); a 2.0 object read later
        # still overrides it (_read_dialect)
        self.client.jscalendar_found = (found or Dialect.RFC8984).value

    async def _write_dialect(self) -> Dialect:
        """What to write in: a 2.0 server could drop an RRULE sent under its 1.0 name
        without a word, so ``auto`` asks before the first write if no read has told."""
        req = Request()
        calls = self._probe_into(req)
        if calls is not None:
            self._probe_result(await self.client.send(req), calls)
        return self._known_dialect() or Dialect.RFC8984

    def _collection(self, raw: dict[str, Any]) -> RemoteCollection:
        rights = raw.get("myRights") or {}
        may_write = bool(rights.get("mayWriteAll", rights.get("mayWrite", True)))
        return RemoteCollection(
            id=str(raw["id"]),
            name=str(raw.get("name") or raw["id"]),
            color=raw.get("color"),
            may_write=may_write,
            raw=raw,
        )

    # -- writes ------------------------------------------------------------------------

    async def create_collection(self, name: str, color: str | None) -> str:
        args: dict[str, Any] = {"name": name}
        if color:
            args["color"] = color
        got = await self.client.call(
            f"{self.dtype.collection}/set", {"accountId": self.account, "create": {"new": args}}
        )
        created = got.get("created") or {}
        if "new" not in created:
            reason = (got.get("notCreated") or {}).get("new")
            raise MethodError(f"{self.dtype.collection}/set", "notCreated", str(reason))
        return str(created["new"]["id"])

    async def update_collection(self, cid: str, patch: dict[str, Any]) -> None:
        got = await self.client.call(
            f"{self.dtype.collection}/set", {"accountId": self.account, "update": {cid: patch}}
        )
        if cid in (got.get("notUpdated") or {}):
            raise MethodError(
                f"{self.dtype.collection}/set", "notUpdated", str(got["notUpdated"][cid])
            )

    async def write(
        self,
        create: Mapping[str, dict[str, Any]],
        update: dict[str, dict[str, Any]],
        destroy: list[str],
    ) -> SetOutcome:
        """Apply writes in requests of bounded size and work (syncd.jmap.packing); read
        back the server's copy of what was written.

        Each ``/set`` is followed in the same request by a ``/get`` of its
        created (by creation-id reference) and updated ids, so the journal can
        record exactly what the server stored without another round trip.  What
        goes out is in the server's JSCalendar dialect, what comes back in RFC 8984.

        ``create`` may be ``PackedObjects``: each object is then unpacked only to be
        measured and again when its request is made, never all of them at once.
        """
        dialect = Dialect.RFC8984
        if create or update:
            dialect = await self._write_dialect()
            update = {
                k: patch_to_server(v, dialect, self.dtype.item_type) for k, v in update.items()
            }
        ops: list[tuple[str, str, Any]] = (
            [("create", k, None) for k in create]  # its object: from ``create`` when sent
            + [("update", k, v) for k, v in update.items()]
            + [("destroy", k, None) for k in destroy]
        )
        sizes = [
            _write_size((op, k, to_server(create[k], dialect) if op == "create" else v))
            for op, k, v in ops
        ]
        out = SetOutcome()
        limits = self.client.limits
        requests = pack(
            [Sized(op, size) for op, size in zip(ops, sizes, strict=True)],
            per_call=min(limits.max_objects_in_set, limits.max_objects_in_get),
            calls_per_request=max(1, limits.max_calls_in_request // 2),
            max_request_bytes=limits.max_size_request,
        )
        prev_new: str | None = None
        for group in requests:
            req = Request()
            pairs = []
            for batch in group:
                args: dict[str, Any] = {"accountId": self.account}
                c = {k: to_server(create[k], dialect) for op, k, _ in batch if op == "create"}
                u = {k: v for op, k, v in batch if op == "update"}
                d = [k for op, k, _ in batch if op == "destroy"]
                if c:
                    args["create"] = c
                if u:
                    args["update"] = u
                if d:
                    args["destroy"] = d
                set_id = req.add(f"{self.dtype.item}/set", args)
                read_ids = [f"#{k}" for k in c] + list(u)
                get_id = (
                    req.add(f"{self.dtype.item}/get", {"accountId": self.account, "ids": read_ids})
                    if read_ids
                    else None
                )
                pairs.append((set_id, get_id))
            res = await self.client.send(req)
            for set_id, get_id in pairs:
                got = res.get(set_id, f"{self.dtype.item}/set")
                if out.old_state is None:
                    out.old_state = got.get("oldState")
                elif prev_new is not None and got.get("oldState") != prev_new:
                    out.states_chain = False
                prev_new = got.get("newState")
                out.new_state = prev_new
                for key, obj in (got.get("created") or {}).items():
                    out.created[key] = str(obj["id"])
                out.updated.update((got.get("updated") or {}).keys())
                out.destroyed.update(got.get("destroyed") or [])
                for bucket in ("notCreated", "notUpdated", "notDestroyed"):
                    for key, err in (got.get(bucket) or {}).items():
                        out.failed[key] = _set_error(err)
                if get_id is not None:
                    err = res.error(get_id)
                    if err is None:
                        for obj in res.get(get_id, f"{self.dtype.item}/get").get("list") or []:
                            out.copies[obj["id"]] = self._normal(obj)
        missing_copies = [
            i for i in list(out.created.values()) + list(out.updated) if i not in out.copies
        ]
        if missing_copies:
            objs, _, _ = await self.client.get_objects(self.dtype.item, missing_copies)
            for obj in objs:
                out.copies[obj["id"]] = self._normal(obj)
        return out

    async def find_by_uids(self, uids: Iterable[str]) -> list[str]:
        """Ids of objects with these UIDs (to settle creates whose answers were lost).

        As many ``/query`` calls per request as the server takes: a first upload of
        10,000 events cut short leaves 10,000 of them to look up, which one request
        each made 10,000 round trips."""
        calls = [
            (f"{self.dtype.item}/query", {"accountId": self.account, "filter": {"uid": uid}})
            for uid in dict.fromkeys(uids)
        ]
        ids: list[str] = []
        for responses in await self.client.send_all(calls):
            for call_id in responses.by_id:
                got = responses.get(call_id, f"{self.dtype.item}/query")
                ids += [str(i) for i in got.get("ids") or []]
        return ids


def _write_size(op: tuple[str, str, Any]) -> int:
    """Bytes of one write in a request's body, as ``JmapClient.send`` encodes it: its
    key and value in the /set, and for a create or update its key again in the ids of
    the /get that reads it back (an update's key is the server's id, of any length)."""
    _, key, value = op
    quoted = len(key) + 3  # "key" and a separator
    if value is None:
        return quoted
    return quoted + 1 + len(json.dumps(value, separators=(",", ":"))) + quoted + 1


def _first_failure(group: BaseExceptionGroup) -> BaseException:
    """What stopped a task group, as the pass would have seen it from one task: the
    first exception that is not the cancellation of the others; if all of them are
    cancellations (the pass itself was cancelled), the first of those, so that it
    stays one."""
    cancelled = anyio.get_cancelled_exc_class()
    leaves = list(_leaves(group))
    return next((exc for exc in leaves if not isinstance(exc, cancelled)), leaves[0])


def _leaves(group: BaseExceptionGroup) -> Iterable[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _whole_listing(res: Responses, call_id: str, name: str) -> list[str] | None:
    """The ids of a /query asked for with no limit, if the answer holds all of them (a
    server may cap a query's page; then, or on an error, None)."""
    try:
        got = res.get(call_id, name)
    except JmapError:
        return None
    ids, total = got.get("ids"), got.get("total")
    if not isinstance(ids, list) or not isinstance(total, int) or got.get("position", 0) != 0:
        return None
    if len(ids) != total or not all(isinstance(i, str) for i in ids):
        return None
    return ids


def _optional_total(res: Responses, call_id: str, name: str) -> int | None:
    """A count asked for only to start work early: an error, or no number, is no count."""
    try:
        total = res.get(call_id, name).get("total")
    except JmapError:
        return None
    return total if isinstance(total, int) else None


def _set_error(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    text = str(err.get("type", "error"))
    if err.get("properties"):
        text += " " + ",".join(map(str, err["properties"]))
    if err.get("description"):
        text += f": {err['description']}"
    return text
