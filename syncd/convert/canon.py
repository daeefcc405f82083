"""PURE: what goes to the server, and the comparable form of an object.

``for_upload`` drops what a server will not accept on /set (Cyrus 3.12
rejects vendor-prefixed top-level properties with invalidProperties) and what
is server-set.  ``canonical`` drops server-volatile fields and properties at
their RFC 8984 default values, so that "absent" and "default" compare equal
and a pass never sees a change that is only conversion or server noise.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

SERVER_SET = {
    "id",
    "blobId",
    "isDraft",
    "isOrigin",
    "utcStart",
    "utcEnd",
    "baseEventId",
    "mayInviteSelf",
    "mayInviteOthers",
    "hideAttendees",
    "useDefaultAlerts",
    "prodId",
    "method",
    "created",
    "updated",
    "x-href",
    "debugBlobId",
}
MEMBERSHIP = {"calendarIds", "taskListId"}
# Unconverted iCalendar (draft-ietf-calext-jscalendar-icalendar): for the local file only.
CARRIERS = {"iCalComponent"}

# RFC 8984 defaults, by the @type of the object they sit in.
DEFAULTS: dict[str, dict[str, Any]] = {
    "Event": {
        "showWithoutTime": False,
        "duration": "PT0S",
        "sequence": 0,
        "priority": 0,
        "privacy": "public",
        "freeBusyStatus": "busy",
        "status": "confirmed",
        "descriptionContentType": "text/plain",
        "title": "",
        "description": "",
        "excluded": False,
        "timeZone": None,
    },
    "Task": {
        "showWithoutTime": False,
        "sequence": 0,
        "priority": 0,
        "privacy": "public",
        "freeBusyStatus": "busy",
        "descriptionContentType": "text/plain",
        "title": "",
        "description": "",
        "excluded": False,
        "timeZone": None,
    },
    "RecurrenceRule": {
        "interval": 1,
        "rscale": "gregorian",
        "skip": "omit",
        "firstDayOfWeek": "mo",
    },
    "OffsetTrigger": {"relativeTo": "start"},
    "Alert": {"action": "display"},
    "Participant": {
        "participationStatus": "needs-action",
        "expectReply": False,
        "scheduleAgent": "server",
        "scheduleForceSend": False,
        "scheduleSequence": 0,
        "kind": "individual",
    },
    "Location": {},
    "Link": {},
    "VirtualLocation": {},
    "Relation": {},
}


_VENDOR = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+:")


def is_vendor(key: str) -> bool:
    """A vendor-specific property name (RFC 8984 3.3: a domain name, a colon, a name).

    Only property names are ever tested: map keys (recurrence ids such as
    2024-03-01T09:00:00, relatedTo UIDs such as urn:uuid:..., keywords) are data.
    """
    return bool(_VENDOR.match(key))


def _last(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _without_vendor(value: Any, is_map: bool = False) -> Any:
    """A deep copy without vendor properties at any depth (patch paths included).

    Hot on a big download (it sees every value of every object): names without a colon
    cannot be vendor names, and immutable leaves are taken as they are."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not is_map:
                if ":" in k:
                    head, _, rest = k.partition("/")
                    if is_vendor(head) or head in CARRIERS:
                        continue
                    if rest and any(is_vendor(seg) for seg in rest.split("/")):
                        continue
                elif k.partition("/")[0] in CARRIERS:
                    continue
            if v is None or type(v) in _LEAVES:
                out[k] = v
            else:
                child_is_map = not is_map and (
                    k in _MAP_KEYS or ("/" in k and _last(k) in _MAP_KEYS)
                )
                out[k] = _without_vendor(v, is_map=child_is_map)
        return out
    if isinstance(value, list):
        return [_without_vendor(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value  # immutable: nothing to copy (deepcopy of every leaf was slow)
    return copy.deepcopy(value)


_LEAVES = frozenset({str, int, float, bool})


def for_upload(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in SERVER_SET}
    if out.get("timeZones"):
        from syncd.convert.zonematch import for_server  # icalendar: only when needed

        out = for_server(out)
    return _without_vendor(out)


def canon_text(canon: dict[str, Any]) -> str:
    """The one JSON form of a canonical object: hashed for comparisons, kept as the base."""
    return json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def comparable_of(text: str) -> str:
    """The hash two sides compare: equal for objects that mean the same."""
    return hashlib.sha256(text.encode()).hexdigest()


def canonical(obj: dict[str, Any]) -> dict[str, Any]:
    """The comparable form: no vendor, server-set or default values, and sub-object ids
    derived from content, since a server and a file name the same alert differently."""
    out = {
        k: v for k, v in _without_vendor(obj).items() if k not in SERVER_SET and k not in MEMBERSHIP
    }
    return content_ids(_strip(out, obj.get("@type", "Event")))


# Id maps whose keys are names chosen by whoever wrote the object, and the properties of
# their values that refer to ids of (another) map.
ID_MAPS = ("locations", "virtualLocations", "links", "alerts", "participants")
_REFS = {"delegatedTo": "participants", "delegatedFrom": "participants"}
_REF_ONE = {"invitedBy": "participants", "locationId": "locations"}


def _content_id(value: Any) -> str:
    body = value
    if isinstance(value, dict):
        body = {k: v for k, v in value.items() if k not in _REFS and k not in _REF_ONE}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())
    return "c" + digest.hexdigest()[:16]


def _renamed(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A map keyed by content ids, and old id -> new id."""
    ids: dict[str, str] = {}
    out: dict[str, Any] = {}
    content = {key: _content_id(item) for key, item in value.items()}  # a hash each, once
    for key in sorted(value, key=lambda k: (content[k], k)):
        new = base = content[key]
        n = 1
        while new in out:
            n += 1
            new = f"{base}-{n}"
        ids[key] = new
        out[new] = value[key]
    return out, ids


def _rewrite_refs(value: Any, maps: dict[str, dict[str, str]]) -> Any:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for key, target in _REFS.items():
        if isinstance(out.get(key), dict):
            out[key] = {maps.get(target, {}).get(k, k): v for k, v in out[key].items()}
    for key, target in _REF_ONE.items():
        if isinstance(out.get(key), str):
            out[key] = maps.get(target, {}).get(out[key], out[key])
    return out


def content_ids(obj: dict[str, Any], master: dict[str, dict[str, str]] | None = None) -> Any:
    """``obj`` with the keys of its id maps derived from their values (references follow).

    In an override patch (``master`` given: the master's old -> new ids), a path such as
    ``participants/p1/participationStatus`` is renamed through the master's ids.
    """
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    maps: dict[str, dict[str, str]] = {k: dict(v) for k, v in (master or {}).items()}
    for name in ID_MAPS:
        if isinstance(out.get(name), dict):
            out[name], maps[name] = _renamed(out[name])
    for name in ID_MAPS:
        if isinstance(out.get(name), dict):
            out[name] = {k: _rewrite_refs(v, maps) for k, v in out[name].items()}
    if master is not None:  # patch paths
        for path in [p for p in out if "/" in p]:
            head, ident, *rest = path.split("/")
            if head in ID_MAPS:
                new_id = maps.get(head, {}).get(ident)
                if new_id is None and not rest:
                    new_id = _content_id(out[path])
                value = out.pop(path)
                out["/".join([head, new_id or ident, *rest])] = value
    overrides = out.get("recurrenceOverrides")
    if isinstance(overrides, dict) and master is None:
        out["recurrenceOverrides"] = {
            key: content_ids(patch, maps) if isinstance(patch, dict) else patch
            for key, patch in overrides.items()
        }
    return out


def _derived_email(value: dict[str, Any]) -> bool:
    """A Participant's email that only repeats its iMIP address (readers derive one)."""
    email = value.get("email")
    imip = str((value.get("sendTo") or {}).get("imip") or "")
    return isinstance(email, str) and imip.lower() == f"mailto:{email}".lower()


def _strip(value: Any, type_: str | None, is_map: bool = False) -> Any:
    if isinstance(value, dict) and is_map:
        # map keys are data: only the values (objects) lose their defaults
        return {k: _strip(v, _map_value_type(type_)) for k, v in value.items()}
    if isinstance(value, dict):
        t = value.get("@type", type_)
        defaults = DEFAULTS.get(t or "", {})
        out = {}
        for k, v in value.items():
            if k in _DURATIONS and isinstance(v, str):
                v = _normal_duration(v)
            if k in defaults and defaults[k] == v:
                continue
            if k == "email" and t == "Participant" and _derived_email(value):
                continue
            if type(v) in _LEAVES:
                out[k] = v
                continue
            child_type = _child_type(k)
            v2 = _strip(v, child_type or k, is_map=k in _MAP_KEYS)
            if v2 in ({}, [], None) and k not in ("excluded",):
                if k == "recurrenceOverrides" or child_type is None and v2 is None:
                    continue
                if v2 == {} and k in _MAPS:
                    continue
            out[k] = v2
        return out
    if isinstance(value, list):
        return [_strip(v, type_) for v in value]
    return value


# Durations have many spellings of one value (PT60M, PT1H, PT3600S, and PT24H for P1D
# once read back from iCalendar, whose reader holds them as time spans): a server may
# store another than the file's, and that is no change.
_DURATIONS = frozenset({"duration", "offset", "estimatedDuration"})


def _normal_duration(text: str) -> str:
    if "." in text:
        return text  # fractions of a second: compared as they are
    from syncd.convert.values import duration_str, parse_duration

    try:
        return duration_str(parse_duration(text))
    except ValueError:
        return text  # not a duration: compared as it is


_MAPS = {
    "alerts",
    "participants",
    "locations",
    "virtualLocations",
    "links",
    "keywords",
    "categories",
    "relatedTo",
    "replyTo",
    "localizations",
    "timeZones",
    "roles",
    "sendTo",
    "features",
    "relation",
    "delegatedTo",
    "delegatedFrom",
    "memberOf",
}


_MAP_KEYS = _MAPS | {"recurrenceOverrides"}
_MAP_VALUE_TYPES = {
    "alerts": "Alert",
    "participants": "Participant",
    "locations": "Location",
    "links": "Link",
    "virtualLocations": "VirtualLocation",
    "relatedTo": "Relation",
}


def _map_value_type(key: str | None) -> str | None:
    return _MAP_VALUE_TYPES.get(key or "")


_CHILD_TYPES = {
    "recurrenceRules": "RecurrenceRule",
    "excludedRecurrenceRules": "RecurrenceRule",
    "trigger": "OffsetTrigger",
}


def _child_type(key: str) -> str | None:
    return _CHILD_TYPES.get(key)
