"""An in-memory JMAP Calendars (and Tasks) server, for engine tests and fault injection.

It implements the parts of RFC 8620 and the JMAP Calendars draft that syncd
uses -- /get, /set, /changes, /query, result references, creation-id
references, limits -- the way Cyrus 3.12 behaves where that matters (one
state counter per account, cannotCalculateChanges after a calendar destroy,
``updated`` set on every write).  With ``tasks_enabled`` it also offers
draft-ietf-jmap-tasks (capability ``urn:ietf:params:jmap:tasks``): TaskList and
Task with /get, /set, /changes, /query (filter ``inTaskLists``), TaskList/set's
``onDestroyRemoveTasks`` and the ``taskListHasTask`` error, and the defaults a
server returns (``sortOrder``, ``isDraft``).  It is off by default: Cyrus 3.12 has
no JMAP Tasks, and the calendar tests expect a server without them.  ``FakeTransport`` plugs it into the client
in-process; ``tests/support/httpserver.py`` can put it behind real HTTP.  ``jscalendar``
picks the JSCalendar its objects are in: "rfc8984" (1.0, as Cyrus 3.12) or
"jscalendarbis" (2.0), which refuses 1.0-only names on /set and keeps vendor properties.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from syncd.jmap.transport import HttpResponse, TrafficCounter

USING_CORE = "urn:ietf:params:jmap:core"
USING_CAL = "urn:ietf:params:jmap:calendars"
USING_TASKS = "urn:ietf:params:jmap:tasks"


# Property names only one JSCalendar version has: /set refuses the other version's (a 2.0
# server), /get refuses them in ``properties`` (RFC 8620 5.1: invalidArguments).
ONLY_IN = {
    "rfc8984": {"recurrenceRules", "excludedRecurrenceRules", "replyTo"},
    "jscalendarbis": {"recurrenceRule", "organizerCalendarAddress", "endTimeZone"},
}


class MethodFailure(Exception):
    def __init__(self, type_: str, description: str = ""):
        super().__init__(type_)
        self.type = type_
        self.description = description


@dataclass
class FakeJmapServer:
    account_id: str = "a1"
    username: str = "alice"
    password: str = "secret"
    max_objects_in_get: int = 4096
    max_objects_in_set: int = 4096
    max_calls_in_request: int = 50
    # A request body bigger than this is refused, as RFC 8620 3.6.1 says a server may.
    max_size_request: int = 10_000_000
    query_limit: int | None = None  # a /query answers at most this many ids, whatever asked
    # A /query that asks for a count (limit 0) or for every id (no limit) answers
    # invalidArguments, as a server that insists on pages might.
    refuse_counts: bool = False
    state: int = 1
    calendars: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str, str, str]] = field(default_factory=list)  # (state, type, id, change)
    calendar_destroyed_at: int = 0
    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    frozen_clock: bool = False  # everything happens within one second
    event_source: bool = True  # False: a server without push (the daemon polls)
    refuse: dict[str, str] = field(default_factory=dict)  # uid -> SetError type for /set
    next_id: int = 1
    requests: list[list[str]] = field(default_factory=list)  # method names per request
    request_args: list[list[tuple[str, dict]]] = field(default_factory=list)  # calls per request
    hooks: list[Callable[[dict[str, Any]], HttpResponse | None]] = field(default_factory=list)
    tasks_enabled: bool = False  # offer urn:ietf:params:jmap:tasks (TaskList, Task)
    task_lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsupported_filters: set[str] = field(default_factory=set)  # /query answers unsupportedFilter
    jscalendar: str = "rfc8984"  # or "jscalendarbis": JSCalendar 2.0 objects

    def __post_init__(self) -> None:
        if not self.calendars:
            self.calendars["Default"] = {
                "id": "Default",
                "name": "personal",
                "color": None,
                "myRights": {"mayWriteAll": True},
            }
        if self.tasks_enabled:
            self.enable_tasks()

    def enable_tasks(self) -> None:
        """Offer JMAP Tasks, with one default task list ("Tasks", role inbox)."""
        self.tasks_enabled = True
        if not self.task_lists:
            self.task_lists["Tasks"] = {
                "id": "Tasks",
                "role": "inbox",
                "name": "tasks",
                "color": None,
                "sortOrder": 0,
                "isSubscribed": True,
                "myRights": {"mayWriteAll": True},
            }

    # -- direct manipulation (what "another client" does) ------------------------------

    def tick(self) -> str:
        self.state += 1
        if not self.frozen_clock:
            self.clock += timedelta(seconds=1)
        return str(self.state)

    def http_date(self) -> str:
        """The Date header: a second passes per request, as far as ``updated`` can tell."""
        if not self.frozen_clock:
            self.clock += timedelta(seconds=1)
        return format_datetime(self.clock, usegmt=True)

    def now(self) -> str:
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def put_event(self, obj: dict[str, Any], calendar: str = "Default") -> str:
        obj = copy.deepcopy(obj)
        existing = next((e for e in self.events.values() if e["uid"] == obj["uid"]), None)
        eid = existing["id"] if existing else self._new_id("E")
        obj["id"] = eid
        obj["calendarIds"] = {calendar: True}
        self.tick()
        obj["updated"] = self.now()
        self.events[eid] = obj
        self.log.append((self.state, "CalendarEvent", eid, "updated" if existing else "created"))
        return eid

    def delete_event(self, eid: str) -> None:
        del self.events[eid]
        self.tick()
        self.log.append((self.state, "CalendarEvent", eid, "destroyed"))

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        return next((e for e in self.events.values() if e["uid"] == uid), None)

    def put_task(self, obj: dict[str, Any], task_list: str = "Tasks") -> str:
        """Create or replace a task by UID, as another client would."""
        obj = copy.deepcopy(obj)
        obj.setdefault("@type", "Task")
        existing = self.task_by_uid(obj["uid"])
        tid = existing["id"] if existing else self._new_id("T")
        obj["id"] = tid
        obj["taskListId"] = task_list
        obj.setdefault("sortOrder", 0)
        obj.setdefault("isDraft", False)
        self.tick()
        obj["updated"] = self.now()
        self.tasks[tid] = obj
        self.log.append((self.state, "Task", tid, "updated" if existing else "created"))
        return tid

    def delete_task(self, tid: str) -> None:
        del self.tasks[tid]
        self.tick()
        self.log.append((self.state, "Task", tid, "destroyed"))

    def task_by_uid(self, uid: str) -> dict[str, Any] | None:
        return next((t for t in self.tasks.values() if t["uid"] == uid), None)

    def _task_problem(self, obj: dict[str, Any], creating: bool) -> dict[str, Any] | None:
        """A SetError for a Task the draft does not allow, else None."""
        if not obj.get("uid"):
            return {"type": "invalidProperties", "properties": ["uid"]}
        if obj.get("@type", "Task") != "Task":
            return {"type": "invalidProperties", "properties": ["@type"]}
        if creating and self.task_by_uid(obj["uid"]) is not None:
            return {
                "type": "invalidProperties",
                "properties": ["uid"],
                "description": "uid already exists",
            }
        if obj.get("taskListId") not in self.task_lists:
            return {"type": "invalidProperties", "properties": ["taskListId"]}
        if obj.get("workflowStatus") is not None and obj.get("progress") is not None:
            return {"type": "invalidProperties", "properties": ["workflowStatus", "progress"]}
        return None

    def _other_version(self, obj: dict[str, Any]) -> list[str]:
        """Names a 2.0 server does not know (participants' sendTo included); none for 1.0."""
        if self.jscalendar != "jscalendarbis":
            return []
        bad = sorted(set(obj) & ONLY_IN["rfc8984"])
        for pid, p in (obj.get("participants") or {}).items():
            if isinstance(p, dict) and "sendTo" in p:
                bad.append(f"participants/{pid}/sendTo")
        return bad

    def put_task_list(self, lid: str, name: str, color: str | None = None) -> str:
        existing = lid in self.task_lists
        self.task_lists[lid] = {
            "id": lid,
            "role": None,
            "name": name,
            "color": color,
            "sortOrder": 0,
            "isSubscribed": True,
            "myRights": {"mayWriteAll": True},
        }
        self.tick()
        self.log.append((self.state, "TaskList", lid, "updated" if existing else "created"))
        return lid

    def _new_id(self, prefix: str) -> str:
        self.next_id += 1
        return f"{prefix}{self.next_id}"

    # -- the protocol ------------------------------------------------------------------

    def session(self) -> dict[str, Any]:
        return {
            "capabilities": {
                USING_CORE: {
                    "maxSizeUpload": 0,
                    "maxConcurrentUpload": 1,
                    "maxSizeRequest": self.max_size_request,
                    "maxConcurrentRequests": 4,
                    "maxCallsInRequest": self.max_calls_in_request,
                    "maxObjectsInGet": self.max_objects_in_get,
                    "maxObjectsInSet": self.max_objects_in_set,
                    "collationAlgorithms": [],
                },
                USING_CAL: {},
                **({USING_TASKS: {}} if self.tasks_enabled else {}),
            },
            "accounts": {
                self.account_id: {
                    "name": self.username,
                    "isPersonal": True,
                    "isReadOnly": False,
                    "accountCapabilities": {
                        USING_CAL: {},
                        **({USING_TASKS: {}} if self.tasks_enabled else {}),
                    },
                }
            },
            "primaryAccounts": {
                USING_CAL: self.account_id,
                USING_CORE: self.account_id,
                **({USING_TASKS: self.account_id} if self.tasks_enabled else {}),
            },
            "username": self.username,
            "apiUrl": "/jmap/api/",
            "eventSourceUrl": (
                "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}"
                if self.event_source
                else None
            ),
            "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
            "uploadUrl": "/jmap/upload/{accountId}/",
            "state": str(self.state),
        }

    def handle(self, body: Mapping[str, Any]) -> dict[str, Any]:
        calls = body.get("methodCalls") or []
        if len(calls) > self.max_calls_in_request:
            raise MethodFailure("limit", "maxCallsInRequest")
        self.requests.append([c[0] for c in calls])
        self.request_args.append([(c[0], c[1]) for c in calls])
        responses: list[list[Any]] = []
        created_ids: dict[str, str] = {}
        for name, args, call_id in calls:
            try:
                args = self._resolve(args, responses)
                result = self._dispatch(name, args, created_ids)
                responses.append([name, result, call_id])
            except MethodFailure as exc:
                responses.append(
                    ["error", {"type": exc.type, "description": exc.description}, call_id]
                )
        return {"methodResponses": responses, "sessionState": str(self.state)}

    def _resolve(self, args: dict[str, Any], responses: list[list[Any]]) -> dict[str, Any]:
        out = {}
        for key, value in args.items():
            if key.startswith("#"):
                src = next(
                    (r for r in responses if r[2] == value["resultOf"] and r[0] == value["name"]),
                    None,
                )
                if src is None:
                    raise MethodFailure("invalidResultReference")
                out[key[1:]] = _pointer(src[1], value["path"])
            else:
                out[key] = value
        return out

    def _dispatch(
        self, name: str, args: dict[str, Any], created_ids: dict[str, str]
    ) -> dict[str, Any]:
        if args.get("accountId") != self.account_id:
            raise MethodFailure("accountNotFound")
        type_, method = name.split("/")
        stores = {"Calendar": self.calendars, "CalendarEvent": self.events}
        if self.tasks_enabled:
            stores.update({"TaskList": self.task_lists, "Task": self.tasks})
        store = stores.get(type_)
        if store is None:
            raise MethodFailure("unknownMethod")
        if method == "get":
            ids = args.get("ids")
            if ids is None:
                ids = list(store)
            ids = [
                created_ids.get(i[1:], i) if isinstance(i, str) and i.startswith("#") else i
                for i in ids
            ]
            if len(ids) > self.max_objects_in_get:
                raise MethodFailure("requestTooLarge")
            props = args.get("properties")
            other = "rfc8984" if self.jscalendar == "jscalendarbis" else "jscalendarbis"
            if type_ in ("CalendarEvent", "Task") and set(props or ()) & ONLY_IN[other]:
                raise MethodFailure("invalidArguments", "unknown property")
            found = []
            for i in ids:
                if i in store:
                    obj = copy.deepcopy(store[i])
                    if props is not None:
                        obj = {k: v for k, v in obj.items() if k in props or k == "id"}
                    found.append(obj)
            return {
                "accountId": self.account_id,
                "state": str(self.state),
                "list": found,
                "notFound": [i for i in ids if i not in store],
            }
        if method == "changes":
            return self._changes(type_, args)
        if method == "query":
            ids = sorted(store)
            flt = args.get("filter") or {}
            if set(flt) & self.unsupported_filters:
                raise MethodFailure("unsupportedFilter")
            if "uid" in flt:
                ids = [i for i in ids if store[i].get("uid") == flt["uid"]]
            if "inCalendars" in flt:
                wanted = set(flt["inCalendars"])
                ids = [i for i in ids if wanted & set(store[i].get("calendarIds") or {})]
            if "inTaskLists" in flt:
                wanted = set(flt["inTaskLists"])
                ids = [i for i in ids if store[i].get("taskListId") in wanted]
            pos = int(args.get("position") or 0)
            limit = args.get("limit")
            if self.refuse_counts and (limit == 0 or limit is None):
                raise MethodFailure("invalidArguments")
            if self.query_limit is not None:
                limit = self.query_limit if limit is None else min(limit, self.query_limit)
            page = ids[pos : pos + limit] if limit is not None else ids[pos:]
            return {
                "accountId": self.account_id,
                "queryState": str(self.state),
                "ids": page,
                "position": pos,
                "total": len(ids),
                "canCalculateChanges": False,
            }
        if method == "set":
            return self._set(type_, store, args, created_ids)
        raise MethodFailure("unknownMethod")

    def _changes(self, type_: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            since = int(args["sinceState"])
        except (KeyError, ValueError):
            raise MethodFailure("cannotCalculateChanges") from None
        if type_ == "CalendarEvent" and since < self.calendar_destroyed_at:
            raise MethodFailure("cannotCalculateChanges")
        if since > self.state:  # Cyrus: a state from the future is "no changes"
            return {
                "accountId": self.account_id,
                "oldState": str(since),
                "newState": str(self.state),
                "hasMoreChanges": False,
                "created": [],
                "updated": [],
                "destroyed": [],
            }
        max_changes = int(args.get("maxChanges") or 10**9)
        entries = [e for e in self.log if e[1] == type_ and e[0] > since]
        more = False
        new_state = self.state
        if len(entries) > max_changes:
            entries = entries[:max_changes]
            more = True
            new_state = entries[-1][0]
        created: dict[str, None] = {}
        updated: dict[str, None] = {}
        destroyed: dict[str, None] = {}
        for _, _, oid, kind in entries:
            if kind == "created":
                created[oid] = None
            elif kind == "updated":
                if oid not in created:
                    updated[oid] = None
            else:
                if oid in created:
                    del created[oid]
                else:
                    updated.pop(oid, None)
                    destroyed[oid] = None
        return {
            "accountId": self.account_id,
            "oldState": str(since),
            "newState": str(new_state),
            "hasMoreChanges": more,
            "created": list(created),
            "updated": list(updated),
            "destroyed": list(destroyed),
        }

    def _set(
        self,
        type_: str,
        store: dict[str, dict[str, Any]],
        args: dict[str, Any],
        created_ids: dict[str, str],
    ) -> dict[str, Any]:
        n = (
            len(args.get("create") or {})
            + len(args.get("update") or {})
            + len(args.get("destroy") or [])
        )
        if n > self.max_objects_in_set:
            raise MethodFailure("requestTooLarge")
        old = str(self.state)
        if "ifInState" in args and args["ifInState"] != old:
            raise MethodFailure("stateMismatch")
        out: dict[str, Any] = {"accountId": self.account_id, "oldState": old}
        created, not_created, updated, not_updated, destroyed, not_destroyed = (
            {},
            {},
            {},
            {},
            [],
            {},
        )
        for key, obj in (args.get("create") or {}).items():
            obj = copy.deepcopy(obj)
            bad = [k for k in obj if ":" in k and self.jscalendar != "jscalendarbis"]
            bad += self._other_version(obj) if type_ in ("CalendarEvent", "Task") else []
            if bad:
                not_created[key] = {"type": "invalidProperties", "properties": bad}
                continue
            if obj.get("uid") in self.refuse:
                not_created[key] = {"type": self.refuse[obj["uid"]]}
                continue
            if type_ == "Task":
                problem = self._task_problem(obj, creating=True)
                if problem is not None:
                    not_created[key] = problem
                    continue
                obj.setdefault("sortOrder", 0)
                obj.setdefault("isDraft", False)
            if type_ == "CalendarEvent":
                if not obj.get("uid"):
                    not_created[key] = {"type": "invalidProperties", "properties": ["uid"]}
                    continue
                if self.by_uid(obj["uid"]) is not None:
                    not_created[key] = {
                        "type": "invalidProperties",
                        "properties": ["uid"],
                        "description": "uid already exists",
                    }
                    continue
                cal = next(iter(obj.get("calendarIds") or {}), None)
                if cal not in self.calendars:
                    not_created[key] = {"type": "invalidProperties", "properties": ["calendarIds"]}
                    continue
            prefix = {"CalendarEvent": "E", "Task": "T", "TaskList": "L"}.get(type_, "C")
            oid = self._new_id(prefix)
            obj["id"] = oid
            self.tick()
            if type_ in ("CalendarEvent", "Task"):
                obj["updated"] = self.now()
            else:
                obj.setdefault("myRights", {"mayWriteAll": True})
            store[oid] = obj
            self.log.append((self.state, type_, oid, "created"))
            created[key] = {"id": oid}
            created_ids[key] = oid
        for oid, patch in (args.get("update") or {}).items():
            if oid not in store:
                not_updated[oid] = {"type": "notFound"}
                continue
            if store[oid].get("uid") in self.refuse:
                not_updated[oid] = {"type": self.refuse[store[oid]["uid"]]}
                continue
            obj = copy.deepcopy(store[oid])
            for path, value in patch.items():
                if path.startswith("calendarIds/"):
                    not_updated[oid] = {"type": "invalidPatch"}
                    break
                parts = path.split("/")
                target = obj
                for p in parts[:-1]:
                    target = target.setdefault(p, {})
                if value is None:
                    target.pop(parts[-1], None)
                else:
                    target[parts[-1]] = copy.deepcopy(value)
            else:
                bad = self._other_version(obj) if type_ in ("CalendarEvent", "Task") else []
                if bad:
                    not_updated[oid] = {"type": "invalidProperties", "properties": bad}
                    continue
                if type_ == "Task":
                    problem = self._task_problem(obj, creating=False)
                    if problem is not None:
                        not_updated[oid] = problem
                        continue
                self.tick()
                if type_ in ("CalendarEvent", "Task"):
                    obj["updated"] = self.now()
                store[oid] = obj
                self.log.append((self.state, type_, oid, "updated"))
                updated[oid] = None
        for oid in args.get("destroy") or []:
            if oid not in store:
                not_destroyed[oid] = {"type": "notFound"}
                continue
            if type_ == "TaskList":
                members = [t for t, o in self.tasks.items() if o.get("taskListId") == oid]
                if members and not args.get("onDestroyRemoveTasks"):
                    not_destroyed[oid] = {"type": "taskListHasTask"}
                    continue
                for tid in members:
                    del self.tasks[tid]
                    self.tick()
                    self.log.append((self.state, "Task", tid, "destroyed"))
            del store[oid]
            self.tick()
            self.log.append((self.state, type_, oid, "destroyed"))
            destroyed.append(oid)
            if type_ == "Calendar":
                self.calendar_destroyed_at = self.state
                for eid in [
                    e for e, o in self.events.items() if oid in (o.get("calendarIds") or {})
                ]:
                    del self.events[eid]
                    self.log.append((self.state, "CalendarEvent", eid, "destroyed"))
        out.update(
            newState=str(self.state),
            created=created or None,
            updated=updated or None,
            destroyed=destroyed or None,
            notCreated=not_created or None,
            notUpdated=not_updated or None,
            notDestroyed=not_destroyed or None,
        )
        return out


def _pointer(obj: Any, path: str) -> Any:
    """RFC 8620 3.7 JSON pointer with the ``*`` extension over arrays."""
    parts = [p for p in path.split("/")[1:]]

    def walk(value: Any, rest: list[str]) -> Any:
        if not rest:
            return value
        head, tail = rest[0], rest[1:]
        if head == "*" and isinstance(value, list):
            out = []
            for item in value:
                got = walk(item, tail)
                out.extend(got if isinstance(got, list) else [got])
            return out
        if isinstance(value, dict):
            if head not in value:
                raise MethodFailure("invalidResultReference")
            return walk(value[head], tail)
        if isinstance(value, list):
            return walk(value[int(head)], tail)
        raise MethodFailure("invalidResultReference")

    return walk(obj, parts)


@dataclass
class FakeTransport:
    """Serves a FakeJmapServer in-process, with Basic auth and request counting."""

    server: FakeJmapServer
    base: str = "https://jmap.test"
    counter: TrafficCounter = field(default_factory=TrafficCounter)
    closed: bool = False

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse:
        import base64

        self.counter.requests += 1
        expected = (
            "Basic "
            + base64.b64encode(f"{self.server.username}:{self.server.password}".encode()).decode()
        )
        if headers.get("Authorization") != expected:
            return HttpResponse(401, {}, b"", url)
        path = url[len(self.base) :] if url.startswith(self.base) else url
        if method == "GET" and path in ("/.well-known/jmap", "/jmap/session"):
            return HttpResponse(
                200,
                {"content-type": "application/json", "date": self.server.http_date()},
                json.dumps(self.server.session()).encode(),
                self.base + "/jmap/session",
            )
        if method == "POST" and path == "/jmap/api/":
            if len(body or b"") > self.server.max_size_request:
                problem = {"type": "urn:ietf:params:jmap:error:limit", "limit": "maxSizeRequest"}
                return HttpResponse(400, {}, json.dumps(problem).encode(), url)
            request = json.loads(body or b"{}")
            for hook in self.server.hooks:
                answer = hook(request)
                if answer is not None:
                    return answer
            try:
                data = self.server.handle(request)
            except MethodFailure as exc:
                return HttpResponse(
                    400,
                    {},
                    json.dumps({"type": f"urn:ietf:params:jmap:error:{exc.type}"}).encode(),
                    url,
                )
            return HttpResponse(
                200,
                {"content-type": "application/json", "date": self.server.http_date()},
                json.dumps(data).encode(),
                url,
            )
        return HttpResponse(404, {}, b"", url)

    async def aclose(self) -> None:
        self.closed = True
