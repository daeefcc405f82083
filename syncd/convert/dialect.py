"""PURE: the server's JSCalendar dialect, translated at the server boundary only.

Everything in syncd between the iCalendar converters and ``RemoteStore`` speaks RFC 8984
(JSCalendar 1.0).  A server that speaks JSCalendar 2.0 (draft-ietf-calext-jscalendarbis)
names some things differently; rather than teach two dialects to the converters, the
merger and ``canonical``, its objects are translated here on the way out (``to_server``,
``patch_to_server``) and back (``from_server``), so the engine never sees the difference.

What 2.0 cannot hold (a second RRULE, an EXRULE, a language parameter, a replyTo method
other than iMIP, ...) is parked in a vendor property ``syncd.app:rfc8984`` on the object it
belongs to (the draft's "Vendor-Specific Property Extensions" allows one on any object),
so that internal -> 2.0 -> internal is the identity.  A parked value is given back only
while the 2.0 value it was derived from is unchanged on the server: if another client
edited the recurrence rule, our second rule is stale and is dropped, never resurrected.

References "bis-12 A ..." are to draft-ietf-calext-jscalendarbis-12, Appendix A
("Differences from RFC 8984"), whose sections are named, not numbered, here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Dialect(StrEnum):
    """Which JSCalendar a server's calendar objects are written in."""

    RFC8984 = "rfc8984"  # JSCalendar 1.0; Cyrus 3.12 and the internal model
    JSCALENDARBIS = "jscalendarbis"  # JSCalendar 2.0, draft-ietf-calext-jscalendarbis


AUTO = "auto"
SETTINGS = (AUTO, Dialect.RFC8984.value, Dialect.JSCALENDARBIS.value)  # config `jscalendar:`
CARRIER = "syncd.app:rfc8984"  # what 2.0 cannot hold, per object (vendor property)
VERSION = "2.0"  # bis-15+: "version" names the JSCalendar version (as JSContact does)

# ---------------------------------------------------------------------------------------
# rules: one RFC 8984 property <-> its 2.0 form, on one kind of object


@dataclass(frozen=True)
class _Ctx:
    """Participant id <-> calendar address, for properties whose 2.0 values are addresses
    where RFC 8984 had participant ids (bis-12 A "Updated Properties": delegatedTo,
    delegatedFrom)."""

    address: Mapping[str, str] = field(default_factory=dict)  # participant id -> address
    pid: Mapping[str, str] = field(default_factory=dict)  # address -> participant id


_NO_CTX = _Ctx()
Values = dict[str, Any]


@dataclass(frozen=True)
class _Rule:
    """``v1`` (one RFC 8984 property) <-> ``v2`` (its 2.0 properties, none if it has no
    2.0 form).  ``down``/``up`` get and return only those keys; a value ``up(down(x))``
    does not give back is parked."""

    v1: str
    v2: tuple[str, ...]
    down: Callable[[Values, _Ctx], Values]
    up: Callable[[Values, _Ctx], Values]


def _park(name: str) -> _Rule:
    """A property 2.0 has no place for: it always goes into the carrier."""
    return _Rule(name, (), lambda _v, _c: {}, lambda _v, _c: {})


def _same(name: str) -> _Rule:
    """A property both versions name alike; a rule only so that an override can park it
    where 2.0 ignores it (see ``_IGNORED_IN_OVERRIDE``)."""
    return _Rule(name, (name,), lambda v, _c: dict(v), lambda v, _c: dict(v))


def _method(uri: str) -> str:
    """The RFC 8984 sendTo/replyTo method a bare calendar address stands for."""
    return "imip" if uri.lower().startswith("mailto:") else "other"


def _address_of(methods: Any) -> str | None:
    """The one address of a sendTo/replyTo map: iMIP if there is one (it is what an
    iCalendar CAL-ADDRESS is), else the first by method name."""
    if not isinstance(methods, dict) or not methods:
        return None
    if isinstance(methods.get("imip"), str):
        return methods["imip"]
    first = methods[sorted(methods)[0]]
    return first if isinstance(first, str) else None


def _to_address(v1: str, v2: str) -> _Rule:
    """sendTo/replyTo (a map of method -> URI) <-> one calendar address; only the
    {"imip": mailto} and {"other": uri} shapes come back unchanged."""

    def down(v: Values, _c: _Ctx) -> Values:
        addr = _address_of(v[v1])
        return {v2: addr} if addr is not None else {}

    def up(v: Values, _c: _Ctx) -> Values:
        addr = v.get(v2)
        return {v1: {_method(addr): addr}} if isinstance(addr, str) else {}

    return _Rule(v1, (v2,), down, up)


def _first_rule() -> _Rule:
    """recurrenceRules (a list) <-> recurrenceRule (one rule): bis-12 A "Obsolete
    Properties" (recurrenceRules) and "New Properties" (recurrenceRule).  More than one
    rule cannot be expressed (RFC 5545 3.8.5.3: RRULE SHOULD NOT occur more than once);
    the list is parked whole, so a stale second rule is recognised by its first."""

    def down(v: Values, _c: _Ctx) -> Values:
        rules = v["recurrenceRules"]
        return {"recurrenceRule": rules[0]} if isinstance(rules, list) and rules else {}

    def up(v: Values, _c: _Ctx) -> Values:
        return {"recurrenceRules": [v["recurrenceRule"]]} if "recurrenceRule" in v else {}

    return _Rule("recurrenceRules", ("recurrenceRule",), down, up)


def _is_end_zone(loc: Any) -> bool:
    """An RFC 8984 Location that only says where (which zone) the event ends."""
    if not isinstance(loc, dict):
        return False
    rest = {k: v for k, v in loc.items() if k != "@type"}
    return (
        loc.get("@type", "Location") == "Location"
        and set(rest) == {"relativeTo", "timeZone"}
        and rest["relativeTo"] == "end"
        and isinstance(rest["timeZone"], str)
    )


END_LOCATION = "end"  # the id an end zone gets as an RFC 8984 Location


def _end_zone_rule() -> _Rule:
    """An end-zone Location <-> Event.endTimeZone: bis-12 A "Obsolete Properties"
    (Location.relativeTo, Location.timeZone) and "New Properties" (Event.endTimeZone).
    Under any other id than ``END_LOCATION`` the whole map is parked (ids are the
    writer's; ``canonical`` does not compare them, the round trip does)."""

    def down(v: Values, _c: _Ctx) -> Values:
        locs = v["locations"]
        if not isinstance(locs, dict):
            return {"locations": locs}
        ends = sorted(k for k, loc in locs.items() if _is_end_zone(loc))
        if not ends:
            return {"locations": locs}
        rest = {k: loc for k, loc in locs.items() if k != ends[0]}
        out: Values = {"endTimeZone": locs[ends[0]]["timeZone"]}
        if rest:
            out["locations"] = rest
        return out

    def up(v: Values, _c: _Ctx) -> Values:
        locs = dict(v["locations"]) if isinstance(v.get("locations"), dict) else None
        zone = v.get("endTimeZone")
        if isinstance(zone, str):
            locs = locs or {}
            key = END_LOCATION
            while key in locs:
                key += "_"
            locs[key] = {"@type": "Location", "relativeTo": "end", "timeZone": zone}
        elif "locations" in v and locs is None:
            return {"locations": v["locations"]}
        return {"locations": locs} if locs is not None else {}

    return _Rule("locations", ("locations", "endTimeZone"), down, up)


_LEVELS = ("chair", "optional", "informational")


def _roles_rule() -> _Rule:
    """Participant.roles: 2.0 drops "attendee" (any participant with a calendar address is
    an ATTENDEE) and "contact", and adds "required" for REQ-PARTICIPANT (bis-12 A "Updated
    Properties": Participant.roles)."""

    def down(v: Values, _c: _Ctx) -> Values:
        roles = v["roles"]
        if not isinstance(roles, dict):
            return {"roles": roles}
        on = {r for r, yes in roles.items() if yes is True}
        out = on - {"attendee", "contact"}
        if "attendee" in on and not on & set(_LEVELS):
            out.add("required")
        return {"roles": {r: True for r in sorted(out)}} if out else {}

    def up(v: Values, _c: _Ctx) -> Values:
        if "roles" not in v:
            return {}
        roles = v["roles"]
        if not isinstance(roles, dict):
            return {"roles": roles}
        on = {r for r, yes in roles.items() if yes is True}
        out = on - {"required"}
        if on & {"required", "chair", "optional"}:
            out.add("attendee")
        return {"roles": {r: True for r in sorted(out)}} if out else {}

    return _Rule("roles", ("roles",), down, up)


def _delegation_rule(name: str) -> _Rule:
    """delegatedTo/delegatedFrom: participant ids in RFC 8984, calendar addresses in 2.0
    (bis-12 A "Updated Properties": Participant.delegatedFrom, .delegatedTo).  A key that
    names no participant is already an address (the iCalendar converter keeps those)."""

    def down(v: Values, c: _Ctx) -> Values:
        ids = v[name]
        if not isinstance(ids, dict):
            return {name: ids}
        return {name: {c.address.get(k, k): on for k, on in ids.items()}}

    def up(v: Values, c: _Ctx) -> Values:
        if name not in v:
            return {}
        addrs = v[name]
        if not isinstance(addrs, dict):
            return {name: addrs}
        return {name: {c.pid.get(k, k): on for k, on in addrs.items()}}

    return _Rule(name, (name,), down, up)


def _display_rule() -> _Rule:
    """Link.display: one purpose (String) in RFC 8984, a set (String[Boolean]) in 2.0
    (bis-12 A "Updated Properties": Link.display)."""

    def down(v: Values, _c: _Ctx) -> Values:
        value = v["display"]
        return {"display": {value: True}} if isinstance(value, str) else {"display": value}

    def up(v: Values, _c: _Ctx) -> Values:
        if "display" not in v:
            return {}
        value = v["display"]
        if isinstance(value, dict):
            on = sorted(k for k, yes in value.items() if yes is True)
            return {"display": on[0]} if on else {}  # more than one: the first (lossy)
        return {"display": value}

    return _Rule("display", ("display",), down, up)


# Event and Task.  Parked, bis-12 A "Obsolete Properties": excludedRecurrenceRules,
# timeZones, Task.progressUpdated; "Reserved Properties" (for scheduling extensions and
# localization): requestStatus, sentBy (of the Event/Task; Participant.sentBy stays),
# localizations.  Not touched: useDefaultAlerts (reserved *for JMAP Calendars*, which
# still defines it; server-set for ``canonical`` anyway).
_TOP = (
    _first_rule(),
    _to_address("replyTo", "organizerCalendarAddress"),  # A "Reserved"/"New Properties"
    _end_zone_rule(),
    _same("privacy"),
    _same("relatedTo"),
    *(
        _park(n)
        for n in (
            "excludedRecurrenceRules",
            "timeZones",
            "progressUpdated",
            "requestStatus",
            "sentBy",
            "localizations",
        )
    ),
)
# Participant.  calendarAddress replaces sendTo (A "New Properties"); parked: language,
# locationId, progressUpdated (A "Obsolete Properties"), invitedBy, participationComment,
# scheduleAgent, scheduleForceSend, scheduleStatus (A "Reserved Properties", scheduling
# extensions).  scheduleSequence and scheduleUpdated are reserved for JMAP Calendars,
# which defines them: sent as they are.
_PARTICIPANT = (
    _to_address("sendTo", "calendarAddress"),
    _roles_rule(),
    _delegation_rule("delegatedTo"),
    _delegation_rule("delegatedFrom"),
    *(
        _park(n)
        for n in (
            "language",
            "locationId",
            "progressUpdated",
            "invitedBy",
            "participationComment",
            "scheduleAgent",
            "scheduleForceSend",
            "scheduleStatus",
        )
    ),
)
# Location.relativeTo/timeZone obsolete, Location.description and
# VirtualLocation.description reserved for future RFCs, Link.cid obsolete (A).
_RULES: dict[str, tuple[_Rule, ...]] = {
    "Event": _TOP,
    "Task": _TOP,
    "Participant": _PARTICIPANT,
    "Location": tuple(_park(n) for n in ("description", "relativeTo", "timeZone")),
    "VirtualLocation": (_park("description"),),
    "Link": (_display_rule(), _park("cid")),
}
# Maps of typed objects inside each type (their values get that type's rules).
_ITEMS = {
    "participants": "Participant",
    "locations": "Location",
    "virtualLocations": "VirtualLocation",
    "links": "Link",
}
_CHILDREN: dict[str, dict[str, str]] = {
    "Event": _ITEMS,
    "Task": _ITEMS,
    "Participant": {"links": "Link"},
    "Location": {"links": "Link"},
}
# bis-12 "recurrenceOverrides": a pointer starting with one of these MUST be ignored.
# What an RFC 8984 override says there is parked as well (a server may drop it).
_IGNORED_IN_OVERRIDE: dict[str, frozenset[str]] = {
    "Event": frozenset(
        {
            "@type",
            "method",
            "organizerCalendarAddress",
            "privacy",
            "prodId",
            "recurrenceId",
            "recurrenceIdTimeZone",
            "recurrenceOverrides",
            "recurrenceRule",
            "relatedTo",
            "uid",
        }
    ),
    "Participant": frozenset({"calendarAddress"}),
}
_IGNORED_IN_OVERRIDE["Task"] = _IGNORED_IN_OVERRIDE["Event"]  # the same list for both
_NOTHING: frozenset[str] = frozenset()


def _without(values: Values, keys: frozenset[str]) -> Values:
    return {k: v for k, v in values.items() if k not in keys}


# ---------------------------------------------------------------------------------------
# objects


def _props_down(
    obj: Values, rules: tuple[_Rule, ...], ctx: _Ctx, ignored: frozenset[str]
) -> Values:
    """One object's own properties, RFC 8984 -> 2.0, parking what does not come back."""
    names = {r.v1 for r in rules}
    out = {k: v for k, v in obj.items() if k not in names}
    parked: Values = {}
    for rule in rules:
        if rule.v1 not in obj:
            continue
        old = {rule.v1: obj[rule.v1]}
        new = rule.down(old, ctx)
        if rule.up(new, ctx) != old or set(new) & ignored:
            parked.update(old)
        out.update(new)
    ruled = names | set().union(*(r.v2 for r in rules))
    for key in (set(out) & ignored) - ruled:
        parked[key] = out[key]  # no rule, but 2.0 ignores it here: keep it too
    if parked:
        out[CARRIER] = parked
    return out


def _props_up(obj: Values, rules: tuple[_Rule, ...], ctx: _Ctx, ignored: frozenset[str]) -> Values:
    """One object's own properties, 2.0 -> RFC 8984; a parked value wins while what it
    was translated to is still there (ignored pointers count as still there)."""
    carried = obj.get(CARRIER)
    parked: Values = carried if isinstance(carried, dict) else {}
    v2_names = set().union(*(r.v2 for r in rules))
    out = {k: v for k, v in obj.items() if k not in v2_names and k != CARRIER}
    for rule in rules:
        new = {k: obj[k] for k in rule.v2 if k in obj}
        if rule.v1 in parked:
            held = {rule.v1: parked[rule.v1]}
            if _without(rule.down(held, ctx), ignored) == _without(new, ignored):
                out.update(held)
                continue
        if new:
            out.update(rule.up(new, ctx))
    for key in set(parked) - {r.v1 for r in rules}:
        out[key] = parked[key]
    return out


def _ctx_v1(parts: Any) -> _Ctx:
    if not isinstance(parts, dict):
        return _NO_CTX
    address = {
        pid: a
        for pid, p in parts.items()
        if isinstance(p, dict) and (a := _address_of(p.get("sendTo")))
    }
    return _Ctx(address, {a: pid for pid, a in sorted(address.items(), reverse=True)})


def _ctx_v2(parts: Any) -> _Ctx:
    if not isinstance(parts, dict):
        return _NO_CTX
    address = {
        pid: p["calendarAddress"]
        for pid, p in parts.items()
        if isinstance(p, dict) and isinstance(p.get("calendarAddress"), str)
    }
    return _Ctx(address, {a: pid for pid, a in sorted(address.items(), reverse=True)})


def _object_down(obj: Values, type_: str, ctx: _Ctx, ignored: frozenset[str] = _NOTHING) -> Values:
    out = _props_down(obj, _RULES.get(type_, ()), ctx, ignored)
    for key, child in _CHILDREN.get(type_, {}).items():
        if isinstance(out.get(key), dict):
            inner = _ctx_v1(out[key]) if key == "participants" else ctx
            if key == "participants" and not inner.address:
                inner = ctx  # an override's participants: the master's addresses
            out[key] = {
                k: _object_down(v, child, inner) if isinstance(v, dict) else v
                for k, v in out[key].items()
            }
    if isinstance(out.get("recurrenceOverrides"), dict):
        master = _ctx_v1(obj.get("participants"))
        out["recurrenceOverrides"] = {
            rid: _patch_down(p, type_, master, override=True) if isinstance(p, dict) else p
            for rid, p in out["recurrenceOverrides"].items()
        }
    return out


def _object_up(obj: Values, type_: str, ctx: _Ctx, ignored: frozenset[str] = _NOTHING) -> Values:
    out = dict(obj)
    for key, child in _CHILDREN.get(type_, {}).items():
        if isinstance(out.get(key), dict):
            inner = _ctx_v2(out[key]) if key == "participants" else ctx
            if key == "participants" and not inner.address:
                inner = ctx
            out[key] = {
                k: _object_up(v, child, inner) if isinstance(v, dict) else v
                for k, v in out[key].items()
            }
    if isinstance(out.get("recurrenceOverrides"), dict):
        master = _ctx_v2(obj.get("participants"))
        out["recurrenceOverrides"] = {
            rid: _patch_up(p, type_, master, override=True) if isinstance(p, dict) else p
            for rid, p in out["recurrenceOverrides"].items()
        }
    return _props_up(out, _RULES.get(type_, ()), ctx, ignored)


# ---------------------------------------------------------------------------------------
# patches (recurrence overrides, /set updates): pointers are grouped by the object they
# point into, and each group is translated as a partial object of that type


def _locate(pointer: str, type_: str) -> tuple[bool, str, str] | None:
    """(whole, prefix, type): a whole typed object (``participants/p1``) or a property of
    one (prefix ``participants/p1/``, or empty for the top); None for a pointer into
    something untyped (``alerts/a1/trigger/offset``), which no rule touches."""
    segs = pointer.split("/")
    prefix = ""
    i = 0
    while i < len(segs) - 1:
        child = _CHILDREN.get(type_, {}).get(segs[i])
        if child is None:
            return None
        if i + 2 == len(segs):
            return (True, pointer, child)
        prefix += f"{segs[i]}/{segs[i + 1]}/"
        type_ = child
        i += 2
    return (False, prefix, type_)


def _translate_patch(
    patch: Values, type_: str, ctx: _Ctx, override: bool, going_down: bool
) -> Values:
    move = _object_down if going_down else _object_up
    out: Values = {}
    groups: dict[tuple[str, str], Values] = {}
    for pointer, value in patch.items():
        where = _locate(pointer, type_)
        if where is None:
            out[pointer] = value
        elif where[0]:
            out[pointer] = move(value, where[2], ctx) if isinstance(value, dict) else value
        else:
            prefix, owner = where[1], where[2]
            groups.setdefault((prefix, owner), {})[pointer[len(prefix) :]] = value
    for (prefix, owner), props in groups.items():
        ignored = _IGNORED_IN_OVERRIDE.get(owner, _NOTHING) if override else _NOTHING
        present = {k: v for k, v in props.items() if v is not None}
        for key, value in move(present, owner, ctx, ignored).items():
            out[prefix + key] = value
        for key in (k for k, v in props.items() if v is None):
            for gone in _removed(key, owner, going_down, set(props)):
                out.setdefault(prefix + gone, None)
        if going_down:  # a 2.0 property its source no longer makes: removed, not left over
            for rule in _RULES.get(owner, ()):
                if props.get(rule.v1) is not None:
                    for name in rule.v2:
                        out.setdefault(prefix + name, None)
    return out


def _removed(key: str, owner: str, going_down: bool, keys: set[str]) -> list[str]:
    """The names a removed property has in the other dialect."""
    if key == CARRIER:
        return []
    for rule in _RULES.get(owner, ()):
        if going_down and key == rule.v1:
            return list(rule.v2)
        if not going_down and key in rule.v2:
            # endTimeZone alone says nothing of the other locations: only a source named
            # alike, or one all of whose 2.0 properties the patch sets, is removed
            return [rule.v1] if key == rule.v1 or set(rule.v2) <= keys else []
    return [key]


def _patch_down(patch: Values, type_: str, ctx: _Ctx, override: bool) -> Values:
    return _translate_patch(patch, type_, ctx, override, going_down=True)


def _patch_up(patch: Values, type_: str, ctx: _Ctx, override: bool) -> Values:
    return _translate_patch(patch, type_, ctx, override, going_down=False)


# ---------------------------------------------------------------------------------------
# the boundary


def to_server(obj: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """A whole object (``for_upload``'s output) in the server's dialect, for /set create."""
    if dialect is not Dialect.JSCALENDARBIS:
        return dict(obj)
    type_ = str(obj.get("@type") or "Event")
    out = _object_down(dict(obj), type_, _ctx_v1(obj.get("participants")))
    out["version"] = VERSION
    return out


def patch_to_server(
    patch: Mapping[str, Any], dialect: Dialect, type_: str = "Event"
) -> dict[str, Any]:
    """A /set update PatchObject in the server's dialect.

    The engine's patches replace every top-level property and null what went away, so
    each group of pointers is a whole object for the rules; a carrier the object no longer
    needs is removed, or the next read would give back a stale parked value."""
    if dialect is not Dialect.JSCALENDARBIS:
        return dict(patch)
    parts = patch.get("participants")
    out = _patch_down(dict(patch), type_, _ctx_v1(parts), override=False)
    out.setdefault(CARRIER, None)
    out["version"] = VERSION
    return out


def from_server(obj: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """A server object in the internal (RFC 8984) form.

    Tolerant: an object that already uses RFC 8984 names passes unchanged, so a server
    that mixes them (or a guess of ``auto``) costs nothing."""
    if dialect is not Dialect.JSCALENDARBIS:
        return dict(obj)
    type_ = str(obj.get("@type") or "Event")
    out = _object_up(dict(obj), type_, _ctx_v2(obj.get("participants")))
    if out.get("version") == VERSION:
        del out["version"]
    return out


# ---------------------------------------------------------------------------------------
# choosing the dialect


_V2_MARKS = ("recurrenceRule", "organizerCalendarAddress", "endTimeZone", CARRIER)
_V1_MARKS = ("recurrenceRules", "excludedRecurrenceRules", "replyTo")


def detect(obj: Mapping[str, Any]) -> Dialect | None:
    """The dialect a server object is written in, when its names say so unambiguously.

    The JMAP Calendars draft has no capability naming the JSCalendar version (up to
    draft-ietf-jmap-calendars-33, whose account capability holds only limits and
    mayCreateCalendar), so under ``auto`` the server's own objects are the evidence."""
    parts = obj.get("participants")
    values = [p for p in parts.values() if isinstance(p, dict)] if isinstance(parts, dict) else []
    v2 = (
        obj.get("version") == VERSION
        or any(k in obj for k in _V2_MARKS)
        or any("calendarAddress" in p for p in values)
    )
    v1 = any(k in obj for k in _V1_MARKS) or any("sendTo" in p for p in values)
    if v2 and not v1:
        return Dialect.JSCALENDARBIS
    if v1 and not v2:
        return Dialect.RFC8984
    return None


# Foo/get with ``properties`` naming a property the server does not know MUST fail with
# invalidArguments (RFC 8620 5.1): asking for each dialect's name of the recurrence rule
# tells them apart on an account that has no object yet to look at.
PROBE = {Dialect.JSCALENDARBIS: "recurrenceRule", Dialect.RFC8984: "recurrenceRules"}


def from_probe(accepted: Mapping[Dialect, bool | None]) -> Dialect | None:
    """The dialect whose name the server accepted while refusing the other's; None when
    the answers do not tell (both accepted, both refused, or another error: None)."""
    bis, v1 = accepted.get(Dialect.JSCALENDARBIS), accepted.get(Dialect.RFC8984)
    if bis is True and v1 is False:
        return Dialect.JSCALENDARBIS
    if v1 is True and bis is False:
        return Dialect.RFC8984
    return None
