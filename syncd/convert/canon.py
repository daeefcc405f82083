"""PURE: what goes to the server, and the comparable form of an object.

``for_upload`` drops what a server will not accept on /set (Cyrus 3.12
rejects vendor-prefixed top-level properties with invalidProperties) and what
is server-set.  ``canonical`` drops server-volatile fields and properties at
their RFC 8984 default values, so that "absent" and "default" compare equal
and a pass never sees a change that is only conversion or server noise.
"""

from __future__ import annotations

import copy
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


def is_vendor(key: str) -> bool:
    return ":" in key


def for_upload(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in obj.items() if not is_vendor(k) and k not in SERVER_SET}
    for key in ("recurrenceOverrides",):
        if isinstance(out.get(key), dict):
            out[key] = {
                rid: {k: v for k, v in (patch or {}).items() if not is_vendor(k.split("/")[0])}
                for rid, patch in out[key].items()
            }
    return out


def canonical(obj: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: v
        for k, v in obj.items()
        if not is_vendor(k) and k not in SERVER_SET and k not in MEMBERSHIP
    }
    return _strip(out, obj.get("@type", "Event"))


def _strip(value: Any, type_: str | None) -> Any:
    if isinstance(value, dict):
        t = value.get("@type", type_)
        defaults = DEFAULTS.get(t or "", {})
        out = {}
        for k, v in value.items():
            if is_vendor(k):
                continue
            if k in defaults and defaults[k] == v:
                continue
            child_type = _child_type(k)
            v2 = _strip(v, child_type)
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


def _child_type(key: str) -> str | None:
    return {
        "recurrenceRules": "RecurrenceRule",
        "excludedRecurrenceRules": "RecurrenceRule",
        "trigger": "OffsetTrigger",
    }.get(key)
