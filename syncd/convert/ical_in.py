"""PURE: iCalendar (RFC 5545) -> JSCalendar (RFC 8984) for VEVENT and VTODO.

One JSCalendar object per UID: the master component plus its RECURRENCE-ID
overrides folded into ``recurrenceOverrides`` as patches.  Properties and
components with no JSCalendar mapping travel in ``iCalComponent`` (the mechanism of
draft-ietf-calext-jscalendar-icalendar), what else the mapping must remember in
``syncd.app:*`` vendor properties, so that the pure round trip loses nothing; neither
goes to the server (``for_upload`` drops them) and both are merged back into the local
file on download.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import date, datetime, timedelta
from typing import Any

import icalendar
from icalendar.prop import vBroken

from syncd.convert.values import (
    UTC_NAMES,
    duration_str,
    get_zone,
    local_str,
    parse_duration,
    utc_str,
    zone_name,
)
from syncd.convert.windows_zones import iana_name
from syncd.convert.zones import custom_id, timezone_object

# What has no JSCalendar mapping: the properties and components of the iCalendar
# component that were not converted, as draft-ietf-calext-jscalendar-icalendar carries
# them (an ICalComponent with jCal properties).  Never uploaded (Cyrus 3.12 rejects it):
# ``for_upload`` drops it, and merge-back restores it locally.
ICAL_COMPONENT = "iCalComponent"
VENDOR_ICAL = ICAL_COMPONENT  # the name this carrier had (kept for importers)
# Parameters of mapped properties that the mapping does not consume: [[NAME, value-text, {params}]]
VENDOR_PARAMS = "syncd.app:icalParams"
# What sits around the items in the file: {"properties": [...], "components": [text, ...]}
VENDOR_CALENDAR = "syncd.app:icalCalendar"
# A VTODO's DURATION (not ESTIMATED-DURATION) became estimatedDuration
VENDOR_TODO_DURATION = "syncd.app:icalTodoDuration"
# Mapped properties present with an empty value (DESCRIPTION:) that the default would drop
VENDOR_EMPTY = "syncd.app:icalEmpty"
# The iCalendar value kind ("date", "utc", "floating") of a recurrence id, RDATE, EXDATE
# or UNTIL that differs from what the master's start implies: JSCalendar keeps them all
# as LocalDateTime in the master's zone, iCalendar files mix kinds (UTC EXDATEs on a
# zoned series, a date-time UNTIL on an all-day series).  In a RecurrenceRule: the kind
# of UNTIL; top level: {"RDATE"|"EXDATE": {recurrence id: kind}, "DTSTART"|"DUE": kind}.
# A kind is date, utc, floating, zoned (the master's zone) or another zone's name.
VENDOR_KIND = "syncd.app:icalKind"
# In an override patch: the kind of its RECURRENCE-ID (as VENDOR_KIND's values).
VENDOR_RID_KIND = "syncd.app:icalRecurrenceIdKind"
# An override patch that came from RDATE;VALUE=PERIOD (an extra instance with its own
# duration), not from an overriding component.
VENDOR_PERIOD = "syncd.app:icalPeriod"
VENDOR_KEYS = (
    VENDOR_ICAL,
    VENDOR_PARAMS,
    VENDOR_CALENDAR,
    VENDOR_TODO_DURATION,
    VENDOR_EMPTY,
    VENDOR_KIND,
    VENDOR_RID_KIND,
    VENDOR_PERIOD,
)

STATUS_EVENT = {"CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled"}
STATUS_TASK = {
    "NEEDS-ACTION": "needs-action",
    "IN-PROCESS": "in-process",
    "COMPLETED": "completed",
    "CANCELLED": "cancelled",
}
CLASS = {"PUBLIC": "public", "PRIVATE": "private", "CONFIDENTIAL": "secret"}
TRANSP = {"OPAQUE": "busy", "TRANSPARENT": "free"}
ROLE = {
    "CHAIR": {"attendee": True, "chair": True},
    "REQ-PARTICIPANT": {"attendee": True},
    "OPT-PARTICIPANT": {"attendee": True, "optional": True},
    "NON-PARTICIPANT": {"informational": True},
}
CUTYPE = {"INDIVIDUAL": "individual", "GROUP": "group", "RESOURCE": "resource", "ROOM": "location"}
FREQ = {
    f: f.lower() for f in ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
}
BY_NUMBERS = {
    "BYMONTHDAY": "byMonthDay",
    "BYYEARDAY": "byYearDay",
    "BYWEEKNO": "byWeekNo",
    "BYHOUR": "byHour",
    "BYMINUTE": "byMinute",
    "BYSECOND": "bySecond",
    "BYSETPOS": "bySetPosition",
}
NDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")

# Properties the mapping handles; everything else is kept in ICAL_COMPONENT.
MAPPED = {
    "UID",
    "SUMMARY",
    "DESCRIPTION",
    "DTSTART",
    "DTEND",
    "DURATION",
    "DUE",
    "RRULE",
    "EXRULE",
    "RDATE",
    "EXDATE",
    "RECURRENCE-ID",
    "STATUS",
    "CLASS",
    "TRANSP",
    "PRIORITY",
    "SEQUENCE",
    "CATEGORIES",
    "LOCATION",
    "URL",
    "ATTACH",
    "COLOR",
    "CREATED",
    "LAST-MODIFIED",
    "DTSTAMP",
    "ATTENDEE",
    "ORGANIZER",
    "RELATED-TO",
    "PERCENT-COMPLETE",
    "COMPLETED",
    "CONFERENCE",
    "ESTIMATED-DURATION",
    "GEO",
    "X-JMAP-ID",
}


_DATES = {"TZID", "VALUE"}
CONSUMED_PARAMS: dict[str, set[str]] = {
    "DTSTART": _DATES,
    "DTEND": _DATES,
    "DUE": _DATES,
    "RECURRENCE-ID": _DATES,
    "EXDATE": _DATES,
    "RDATE": _DATES,
    "COMPLETED": _DATES,
    "CREATED": _DATES,
    "LAST-MODIFIED": _DATES,
    "DTSTAMP": _DATES,
    "ATTENDEE": {
        "CN",
        "EMAIL",
        "ROLE",
        "PARTSTAT",
        "RSVP",
        "CUTYPE",
        "DELEGATED-TO",
        "DELEGATED-FROM",
        "MEMBER",
        "SENT-BY",
        "LANGUAGE",
        "SCHEDULE-AGENT",
        "SCHEDULE-STATUS",
        "X-JMAP-ID",
    },
    "ORGANIZER": {"CN", "X-JMAP-ID"},
    "CONFERENCE": {"VALUE", "LABEL", "FEATURE", "X-JMAP-ID"},
    "ATTACH": {"FMTTYPE", "X-JMAP-ID", "VALUE"},
    "URL": {"X-JMAP-ID", "VALUE"},
    "LOCATION": {"X-JMAP-ID"},
    "GEO": {"X-JMAP-ID"},
    "RELATED-TO": {"RELTYPE"},
    "SUMMARY": {"LANGUAGE"},
    "TRIGGER": {"RELATED", "VALUE"},
}
# Mapped properties that may appear once; a second one is kept as unmapped text.
SINGLE = {
    "UID",
    "SUMMARY",
    "DESCRIPTION",
    "DTSTART",
    "DTEND",
    "DURATION",
    "DUE",
    "RECURRENCE-ID",
    "STATUS",
    "CLASS",
    "TRANSP",
    "PRIORITY",
    "SEQUENCE",
    "COLOR",
    "CREATED",
    "LAST-MODIFIED",
    "DTSTAMP",
    "ORGANIZER",
    "PERCENT-COMPLETE",
    "COMPLETED",
    "ESTIMATED-DURATION",
    "GEO",
}
_DATE_PROPS = {"DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "COMPLETED", "CREATED", "LAST-MODIFIED"}
_UTC_PROPS = {"COMPLETED", "CREATED", "LAST-MODIFIED", "ACKNOWLEDGED"}  # floating or a date: text
_INT_PROPS = {"PRIORITY": (0, 9), "SEQUENCE": (0, 2**31 - 1), "PERCENT-COMPLETE": (0, 100)}


def param_value(value: Any) -> Any:
    """A parameter value as JSON: a string, or a list of strings."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def prop_text(value: Any) -> str:
    """A value's iCalendar text (some icalendar types, e.g. vGeo, return str, not bytes)."""
    if hasattr(value, "to_ical"):
        try:
            text = value.to_ical()
        except Exception:  # noqa: BLE001 - a value icalendar cannot write back: its str
            return str(value)
        return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return str(value)


def prop_params(value: Any, skip: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        str(k).upper(): param_value(v)
        for k, v in (getattr(value, "params", None) or {}).items()
        if str(k).upper() not in skip
    }


def _usable(name: str, prop: Any) -> bool:
    """Can the mapping read this property? (icalendar 7 keeps unparsable values as vBroken.)"""
    if isinstance(prop, vBroken):
        return False
    try:
        if name in _UTC_PROPS:
            value = prop.dt
            return (
                isinstance(value, datetime)
                and value.tzinfo is not None
                and value.utcoffset() == timedelta(0)
            )
        if name in _DATE_PROPS:
            value = prop.dt
            if not isinstance(value, date):
                return False
            if isinstance(value, datetime) and value.tzinfo is not None:
                value.utcoffset()
            return True
        if name in ("DURATION", "ESTIMATED-DURATION"):
            return isinstance(duration_of(prop), timedelta)
        if name in _INT_PROPS:
            low, high = _INT_PROPS[name]
            return low <= int(prop) <= high
        if name in ("EXDATE", "RDATE"):
            return all(isinstance(i.dt, date | tuple) for i in prop.dts)
        if name in ("RRULE", "EXRULE"):
            if not prop.get("FREQ"):
                return False
            _rrule(prop, None, False)
            return True
        if name == "CATEGORIES":
            return bool(getattr(prop, "cats", None))
        if name == "GEO":
            lat, lon = prop_text(prop).split(";")
            return -90 <= float(lat) <= 90 and -180 <= float(lon) <= 180
        if name == "ATTACH":
            return str(prop.params.get("VALUE", "")).upper() != "BINARY" and "ENCODING" not in {
                str(k).upper() for k in prop.params
            }
    except Exception:  # noqa: BLE001 - anything the mapping would trip on stays text
        return False
    return True


def duration_of(prop: Any) -> timedelta | None:
    """A DURATION-valued property's value; icalendar does not type ESTIMATED-DURATION
    (RFC 9253 is newer than its tables), so its text is parsed here."""
    value = getattr(prop, "dt", None)
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(prop_text(prop))
    except ValueError:
        return None


def sanitize(comp: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """A copy of ``comp`` with only what the mapping can read, and the rest (kept as text)."""
    clean = type(comp)()
    clean.name = comp.name
    leftovers: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for name, value in comp.property_items(recursive=False, sorted=False):
        if name in ("BEGIN", "END"):
            continue
        if name not in MAPPED:
            leftovers.append((name, value))
            continue
        if (name in SINGLE and name in seen) or not _usable(name, value):
            leftovers.append((name, value))
            continue
        seen.add(name)
        clean.add(name, value, encode=False)
    if comp.name == "VEVENT":
        # An end needs a start to mean anything, and DTEND and DURATION together are
        # invalid: what the mapping cannot use that way stays text (DTEND wins, as readers
        # such as icalendar's own end property prefer it).
        unusable = ("DTEND", "DURATION") if "DTSTART" not in clean else ()
        if "DTEND" in clean and "DURATION" in clean:
            unusable = ("DURATION",)
        for name in unusable:
            if name in clean:
                leftovers.append((name, clean.pop(name)))
    clean.subcomponents = comp.subcomponents
    return clean, leftovers


class ConversionError(ValueError):
    """Input that cannot be read as iCalendar; ``line`` points at the problem when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.message = message
        self.line = line


_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+(;[^\r\n]*)?:")


def _precheck(text: str) -> None:
    """Find the first line that is not a content line, so errors can name it."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.upper().startswith("BEGIN:VCALENDAR"):
        raise ConversionError("does not start with BEGIN:VCALENDAR", 1)
    logical: list[tuple[int, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and logical:
            logical[-1] = (logical[-1][0], logical[-1][1] + raw[1:])
        elif raw.strip():
            logical.append((lineno, raw))
    for lineno, line in logical:
        if not _CONTENT_LINE.match(line):
            raise ConversionError(f"not an iCalendar content line: {line[:60]!r}", lineno)


def ics_to_jscal(data: bytes | str) -> list[dict[str, Any]]:
    if isinstance(data, bytes):
        if b"\x00" in data:
            raise ConversionError("binary data (NUL bytes), not iCalendar", None)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConversionError("not UTF-8 text", line) from None
    else:
        text = data
    direct = _read_direct(text)
    if direct is not None:
        return direct
    _precheck(text)
    try:
        cal = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # icalendar raises ValueError and friends
        raise ConversionError(f"not valid iCalendar: {exc}") from None
    groups: dict[str, list[tuple[Any, list]]] = {}
    order: list[str] = []
    cal_props = [
        [name, prop_params(value), prop_text(value)]
        for name, value in cal.property_items(recursive=False, sorted=False)
        if name not in ("BEGIN", "END", "PRODID", "VERSION")
    ]
    cal_comps: list[str] = []
    custom: dict[str, dict[str, Any]] = {}  # TZID -> TimeZone, for zones nobody can resolve
    for comp in cal.subcomponents:
        if comp.name == "VTIMEZONE":
            tzid = str(comp.get("TZID") or "")
            if get_zone(iana_name(tzid) or tzid) is None:
                cal_comps.append(prop_text(comp))  # a custom zone keeps its definition
                with contextlib.suppress(Exception):  # an unreadable one stays text only
                    custom[tzid] = timezone_object(comp, lambda r: _rrule(r, None, False))
            continue
        if comp.name not in ("VEVENT", "VTODO"):
            cal_comps.append(prop_text(comp))  # VJOURNAL, VFREEBUSY, X- components
            continue
        clean, leftovers = sanitize(comp)
        uid = str(comp.get("UID") or "").strip() or derived_uid(comp)
        if uid not in groups:
            groups[uid] = []
            order.append(uid)
        groups[uid].append((clean, leftovers))
    if not groups:
        raise ConversionError("holds no VEVENT or VTODO")
    objs = []
    for uid in order:
        obj, extra = _group_to_object(uid, groups[uid])
        if custom:
            attach_custom_zones(obj, custom)
        objs.append(obj)
        cal_comps.extend(extra)
    if cal_props or cal_comps:
        wrapper: dict[str, Any] = {}
        if cal_props:
            wrapper["properties"] = cal_props
        if cal_comps:
            wrapper["components"] = cal_comps
        for obj in objs:
            obj[VENDOR_CALENDAR] = wrapper
    return objs


def _read_direct(text: str) -> list[dict[str, Any]] | None:
    from syncd.convert.ical_read import read_event  # it builds on this module

    return read_event(text)


def attach_custom_zones(obj: dict[str, Any], custom: dict[str, dict[str, Any]]) -> None:
    """Name custom zones by their JSCalendar id (``/TZID``) and define them in ``timeZones``.

    Only zones the object uses (its own, its recurrence id's, its overrides') are added.
    """
    used: dict[str, dict[str, Any]] = {}

    def rename(holder: dict[str, Any], key: str) -> None:
        zone = holder.get(key)
        if isinstance(zone, str) and zone in custom:
            holder[key] = custom_id(zone)
            used[custom_id(zone)] = custom[zone]

    rename(obj, "timeZone")
    rename(obj, "recurrenceIdTimeZone")
    for patch in (obj.get("recurrenceOverrides") or {}).values():
        if isinstance(patch, dict):
            rename(patch, "timeZone")
    if used:
        obj["timeZones"] = dict(sorted(used.items()))


def derived_uid(comp: icalendar.cal.Component) -> str:
    """A stable UID for an item that has none: a hash of its content (minus volatile stamps)."""
    lines = [
        line
        for line in comp.to_ical().decode("utf-8", "replace").splitlines()
        if not line.startswith(("DTSTAMP", "LAST-MODIFIED", "SEQUENCE"))
    ]
    return "syncd-" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def _group_to_object(uid: str, comps: list[tuple[Any, list]]) -> tuple[dict[str, Any], list[str]]:
    """The object, and the text of components it cannot hold (a second master, a duplicate)."""
    extra: list[str] = []
    masters = [c for c in comps if "RECURRENCE-ID" not in c[0]]
    overrides = [c for c in comps if "RECURRENCE-ID" in c[0]]
    if masters:
        obj = component_to_object(*masters[0], uid)
        extra.extend(prop_text(_rebuild(*m)) for m in masters[1:])
    else:
        # An override without its master (an invitation to one instance): keep the
        # instance as the object itself, marked with its recurrenceId.
        base, leftovers = overrides[0]
        obj = component_to_object(base, leftovers, uid)
        rid_prop = base["RECURRENCE-ID"]
        rid_zone = _zone_of(rid_prop)
        obj["recurrenceId"] = _local_in(rid_prop.dt, get_zone(obj.get("timeZone")))
        if rid_zone != obj.get("timeZone"):
            obj["recurrenceId"] = local_str(rid_prop.dt)
            obj["recurrenceIdTimeZone"] = rid_zone
        overrides = overrides[1:]
    zone = get_zone(obj.get("timeZone"))
    for ov, leftovers in overrides:
        key = _local_in(ov["RECURRENCE-ID"].dt, zone)
        if key in (obj.get("recurrenceOverrides") or {}) and (
            obj["recurrenceOverrides"][key] != {} or "recurrenceId" in obj
        ):
            extra.append(prop_text(_rebuild(ov, leftovers)))  # a second override of one instance
            continue
        full = component_to_object(ov, leftovers, uid)
        patch = _diff(obj, full)
        if "recurrenceId" in obj or not patch:
            # An override equal to its master still is an override, not an RDATE ({}).
            patch.setdefault("start", full.get("start", key))
        rid = ov["RECURRENCE-ID"]
        kind = value_kind(rid.dt, obj.get("timeZone"), _zone_of(rid))
        if kind != default_kind(obj):
            patch[VENDOR_RID_KIND] = kind
        obj.setdefault("recurrenceOverrides", {})[key] = patch
    return obj, extra


def _rebuild(clean: Any, leftovers: list) -> Any:
    comp = type(clean)()
    comp.name = clean.name
    for name, value in clean.property_items(recursive=False, sorted=False):
        if name not in ("BEGIN", "END"):
            comp.add(name, value, encode=False)
    for name, value in leftovers:
        comp.add(name, value, encode=False)
    comp.subcomponents = clean.subcomponents
    return comp


IGNORED_IN_PATCH = {
    "uid",
    "@type",
    "recurrenceRules",
    "excludedRecurrenceRules",
    "recurrenceOverrides",
}


def _diff(master: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, value in instance.items():
        if key in IGNORED_IN_PATCH:
            continue
        if ":" in key or key == ICAL_COMPONENT or master.get(key) != value:
            # vendor data and unconverted iCalendar are never inherited
            patch[key] = value
    for key in master:
        if (
            key not in instance
            and key not in IGNORED_IN_PATCH
            and key != "timeZones"
            and key != ICAL_COMPONENT
            and ":" not in key
        ):
            patch[key] = None
    return patch


def value_kind(value: Any, master_zone: str | None = None, own: str | None = None) -> str:
    """The kind of an iCalendar date or date-time: date, utc, floating or zoned; for a
    value zoned in another (known) zone than the master's, that zone's name (Outlook
    writes all-day series whose RECURRENCE-IDs are midnight in a named zone)."""
    if not isinstance(value, datetime):
        return "date"
    if value.tzinfo is None:
        return "floating"
    name = own or zone_name(value)  # ``own``: the zone its TZID names, when known
    if name == "Etc/UTC":
        return "utc"
    name = iana_name(name or "") or name
    if name and name != master_zone and get_zone(name) is not None:
        return name
    return "zoned"


def default_kind(obj: dict[str, Any]) -> str:
    """The kind the writer gives a recurrence id of ``obj`` when nothing says otherwise."""
    if obj.get("showWithoutTime"):
        return "date"
    zone = obj.get("timeZone")
    if zone is None:
        return "floating"
    return "utc" if zone == "Etc/UTC" else "zoned"


def _local_in(value: date | datetime, zone: Any) -> str:
    """A recurrence id / exdate as LocalDateTime in the master's zone."""
    if isinstance(value, datetime) and value.tzinfo is not None and zone is not None:
        value = value.astimezone(zone)
    return local_str(value)


def _tzid(prop: Any) -> str | None:
    """The zone a property's TZID parameter names (IANA, via CLDR for Windows names)."""
    tzid = prop.params.get("TZID")
    if not tzid:
        return None
    return "Etc/UTC" if str(tzid) in UTC_NAMES else iana_name(str(tzid)) or str(tzid)


def _zone_of(prop: Any) -> str | None:
    dt = prop.dt
    if not isinstance(dt, datetime) or dt.tzinfo is None:
        return None
    tzid = prop.params.get("TZID")
    if tzid:
        tzid = str(tzid)
        if tzid in UTC_NAMES:
            return "Etc/UTC"
        return iana_name(tzid) or tzid
    return zone_name(dt)


def _sub_id(prefix: str, *parts: object) -> str:
    return prefix + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:10]


def _unique(ids: dict[str, Any], wanted: str) -> str:
    candidate, n = wanted, 1
    while candidate in ids:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def component_to_object(
    comp: icalendar.cal.Component, leftovers: list[tuple[str, Any]], uid: str
) -> dict[str, Any]:
    """One (sanitized) component; ``leftovers`` are the properties kept as text."""
    is_task = comp.name == "VTODO"
    obj: dict[str, Any] = {"@type": "Task" if is_task else "Event", "uid": uid}
    if "SUMMARY" in comp:
        obj["title"] = str(comp["SUMMARY"])
        if comp["SUMMARY"].params.get("LANGUAGE"):
            obj["locale"] = str(comp["SUMMARY"].params["LANGUAGE"])
    if "DESCRIPTION" in comp:
        obj["description"] = str(comp["DESCRIPTION"])
        if not obj["description"]:
            obj[VENDOR_EMPTY] = ["DESCRIPTION"]

    start_prop = comp.get("DTSTART")
    zone_name_: str | None = None
    if start_prop is not None:
        start = start_prop.dt
        zone_name_ = _zone_of(start_prop)
        obj["start"] = local_str(start)
        if zone_name_:
            obj["timeZone"] = zone_name_
        if not isinstance(start, datetime):
            obj["showWithoutTime"] = True
        end_prop = comp.get("DTEND") if not is_task else None
        if "DURATION" in comp and not is_task:
            obj["duration"] = duration_str(comp["DURATION"].dt)
        elif end_prop is not None:
            obj["duration"] = duration_str(_span(start, end_prop.dt))
        elif not isinstance(start, datetime) and not is_task:
            obj["duration"] = "P1D"
    if is_task:
        due = comp.get("DUE")
        if due is not None:
            dzone = _zone_of(due)
            if zone_name_ is None and dzone:
                obj["timeZone"] = zone_name_ = dzone
            obj["due"] = _local_in(due.dt, get_zone(zone_name_)) if dzone else local_str(due.dt)
            if not isinstance(due.dt, datetime):
                obj["showWithoutTime"] = True
        if "DURATION" in comp and "ESTIMATED-DURATION" not in comp:
            obj["estimatedDuration"] = duration_str(comp["DURATION"].dt)
            obj[VENDOR_TODO_DURATION] = True
        elif "DURATION" in comp:
            leftovers.append(("DURATION", comp["DURATION"]))
        if "ESTIMATED-DURATION" in comp:
            obj["estimatedDuration"] = duration_str(duration_of(comp["ESTIMATED-DURATION"]))
        if "PERCENT-COMPLETE" in comp:
            obj["percentComplete"] = int(comp["PERCENT-COMPLETE"])
        if "STATUS" in comp:
            obj["progress"] = STATUS_TASK.get(
                str(comp["STATUS"]).upper(), str(comp["STATUS"]).lower()
            )
        if "COMPLETED" in comp and "STATUS" not in comp:
            obj["progress"] = "completed"  # done, says COMPLETED (todoman reads it so)
        if "COMPLETED" in comp and obj.get("progress") == "completed":
            obj["progressUpdated"] = utc_str(comp["COMPLETED"].dt)
        elif "COMPLETED" in comp:  # completed once, reopened since: no JSCalendar place
            leftovers.append(("COMPLETED", comp["COMPLETED"]))
    elif "STATUS" in comp:
        obj["status"] = STATUS_EVENT.get(str(comp["STATUS"]).upper(), str(comp["STATUS"]).lower())

    zone = get_zone(zone_name_)
    rules = [
        _rrule(r, zone, obj.get("showWithoutTime", False)) for r in _as_list(comp.get("RRULE"))
    ]
    if rules:
        obj["recurrenceRules"] = rules
    exrules = [
        _rrule(r, zone, obj.get("showWithoutTime", False)) for r in _as_list(comp.get("EXRULE"))
    ]
    if exrules:
        obj["excludedRecurrenceRules"] = exrules
    overrides: dict[str, Any] = {}
    kinds: dict[str, Any] = {}  # {"RDATE"|"EXDATE": {id: kind}, "DTSTART"|"DUE": kind}
    expected = default_kind(obj)
    for prop in _as_list(comp.get("RDATE")):
        for item in prop.dts:
            value = item.dt
            if isinstance(value, tuple):  # PERIOD: an extra instance with its own duration
                key = _local_in(value[0], zone)
                end = value[1]
                dur = end if isinstance(end, timedelta) else end - value[0]
                overrides[key] = {"duration": duration_str(dur), VENDOR_PERIOD: True}
                value = value[0]
            else:
                key = _local_in(value, zone)
                overrides[key] = {}
            kind = value_kind(value, zone_name_, _tzid(prop))
            if kind != expected:
                kinds.setdefault("RDATE", {})[key] = kind
    for prop in _as_list(comp.get("EXDATE")):
        for item in prop.dts:
            key = _local_in(item.dt, zone)
            overrides[key] = {"excluded": True}
            kind = value_kind(item.dt, zone_name_, _tzid(prop))
            if kind != expected:
                kinds.setdefault("EXDATE", {})[key] = kind
    if overrides:
        obj["recurrenceOverrides"] = overrides
    # a task's start and due, an event's end can be of another kind than the start
    # (a date start with a timed due, a UTC end for a zoned start)
    for name in ("DTSTART", "DUE") if is_task else ("DTEND",):
        prop = comp.get(name)
        if prop is not None:
            kind = value_kind(prop.dt, obj.get("timeZone"), _tzid(prop))
            if kind != expected:
                kinds[name] = kind
    if kinds:
        obj[VENDOR_KIND] = kinds

    if "CLASS" in comp:
        obj["privacy"] = CLASS.get(str(comp["CLASS"]).upper(), str(comp["CLASS"]).lower())
    if "TRANSP" in comp:
        obj["freeBusyStatus"] = TRANSP.get(str(comp["TRANSP"]).upper(), "busy")
    if "PRIORITY" in comp:
        obj["priority"] = int(comp["PRIORITY"])
    if "SEQUENCE" in comp:
        obj["sequence"] = int(comp["SEQUENCE"])
    if "COLOR" in comp:
        obj["color"] = str(comp["COLOR"])
    if "CREATED" in comp:
        obj["created"] = utc_str(_aware(comp["CREATED"].dt))
    if "LAST-MODIFIED" in comp:
        obj["updated"] = utc_str(_aware(comp["LAST-MODIFIED"].dt))

    keywords: dict[str, bool] = {}
    for prop in _as_list(comp.get("CATEGORIES")):
        for cat in getattr(prop, "cats", None) or [str(prop)]:
            keywords[str(cat)] = True
    if keywords:
        obj["keywords"] = keywords

    locations: dict[str, Any] = {}
    for prop in _as_list(comp.get("LOCATION")):
        loc: dict[str, Any] = {"@type": "Location", "name": str(prop)}
        lid = str(prop.params.get("X-JMAP-ID") or _sub_id("l", str(prop)))
        locations[_unique(locations, lid)] = loc
    geo = comp.get("GEO")
    if geo is not None:
        # RFC 8984 coordinates are a geo: URI; the numbers keep their text
        lat, lon = prop_text(geo).split(";")
        coordinates = f"geo:{lat},{lon}"
        if len(locations) == 1:
            next(iter(locations.values()))["coordinates"] = coordinates
        else:
            gid = str(geo.params.get("X-JMAP-ID") or _sub_id("g", coordinates))
            locations[_unique(locations, gid)] = {"@type": "Location", "coordinates": coordinates}
    if locations:
        obj["locations"] = locations

    vlocs: dict[str, Any] = {}
    for prop in _as_list(comp.get("CONFERENCE")):
        vl: dict[str, Any] = {"@type": "VirtualLocation", "uri": str(prop)}
        if prop.params.get("LABEL"):
            vl["name"] = str(prop.params["LABEL"])
        if prop.params.get("FEATURE"):
            features = prop.params["FEATURE"]
            values = features if isinstance(features, list) else str(features).split(",")
            vl["features"] = {str(f).strip().lower(): True for f in values if str(f).strip()}
        vid = str(prop.params.get("X-JMAP-ID") or _sub_id("v", str(prop)))
        vlocs[_unique(vlocs, vid)] = vl
    if vlocs:
        obj["virtualLocations"] = vlocs

    links: dict[str, Any] = {}
    for prop in _as_list(comp.get("URL")):
        lid = str(prop.params.get("X-JMAP-ID") or _sub_id("u", str(prop)))
        links[_unique(links, lid)] = {"@type": "Link", "href": str(prop), "rel": "describedby"}
    for prop in _as_list(comp.get("ATTACH")):
        link: dict[str, Any] = {"@type": "Link", "href": str(prop)}
        if prop.params.get("FMTTYPE"):
            link["contentType"] = str(prop.params["FMTTYPE"])
        lid = str(prop.params.get("X-JMAP-ID") or _sub_id("k", str(prop)))
        links[_unique(links, lid)] = link
    if links:
        obj["links"] = links

    related: dict[str, Any] = {}
    for prop in _as_list(comp.get("RELATED-TO")):
        rel = str(prop.params.get("RELTYPE", "PARENT")).lower()
        related.setdefault(str(prop), {"@type": "Relation", "relation": {}})["relation"][rel] = True
    if related:
        obj["relatedTo"] = related

    participants = _participants(comp)
    if participants:
        obj["participants"] = participants
    organizer = comp.get("ORGANIZER")
    if organizer is not None:
        obj["replyTo"] = {"imip": str(organizer)}

    alerts: dict[str, Any] = {}
    for alarm in comp.subcomponents:
        if alarm.name != "VALARM":
            leftovers.append(("", alarm))  # another subcomponent: kept as text
            continue
        alert = _alert(alarm)
        if alert is None:
            leftovers.append(("", alarm))
            continue
        aid = str(alarm.get("X-JMAP-ID") or alarm.get("UID") or _sub_id("a", sorted(alert.items())))
        alerts[_unique(alerts, aid)] = alert
    if alerts:
        obj["alerts"] = alerts

    props = [(name, value) for name, value in leftovers if name]
    subs = [value for name, value in leftovers if not name]
    if props or subs:
        obj[ICAL_COMPONENT] = ical_component(comp.name, props, subs)
    keep: dict[str, set[str]] = {}
    organizer = comp.get("ORGANIZER")
    if organizer is not None and organizer.params.get("CN"):
        names = {
            p.get("name") for p in participants.values() if (p.get("roles") or {}).get("owner")
        }
        if str(organizer.params["CN"]) not in names:
            keep["ORGANIZER"] = {"CN"}  # the attendee of the same address has another name
    params = unconsumed_params(comp, keep)
    if params:
        obj[VENDOR_PARAMS] = params
    return obj


def unconsumed_params(
    comp: icalendar.cal.Component, keep: dict[str, set[str]] | None = None
) -> list[list[Any]]:
    """Parameters of mapped properties that the mapping leaves behind (X-, LANGUAGE, ...).

    ``keep`` names parameters the mapping usually consumes but could not carry this time.
    """
    out: list[list[Any]] = []
    for name, value in comp.property_items(recursive=False, sorted=False):
        if name in ("BEGIN", "END") or name not in MAPPED:
            continue
        consumed = CONSUMED_PARAMS.get(name, {"VALUE"}) - (keep or {}).get(name, set())
        params = prop_params(value, consumed)
        if params:
            out.append([name, prop_text(value), params])
    return out


def unmapped_properties(comp: icalendar.cal.Component) -> list[list[Any]]:
    """Properties with no mapping, as [NAME, {params}, text] (kept for merge-back)."""
    return [
        [name, prop_params(value), prop_text(value)]
        for name, value in comp.property_items(recursive=False, sorted=False)
        if name not in ("BEGIN", "END") and name not in MAPPED
    ]


def _aware(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)


def _span(start: date | datetime, end: date | datetime) -> timedelta:
    if isinstance(start, datetime) and isinstance(end, datetime):
        if (start.tzinfo is None) != (end.tzinfo is None):
            end = end.replace(tzinfo=start.tzinfo)
        if start.tzinfo is not None and end.tzinfo is not None and start.tzinfo == end.tzinfo:
            # Same zone: wall-clock difference, so a DST change does not shift the end.
            return end.replace(tzinfo=None) - start.replace(tzinfo=None)
        return end - start
    s = start.date() if isinstance(start, datetime) else start
    e = end.date() if isinstance(end, datetime) else end
    return e - s


def _enum(value: Any) -> str:
    """icalendar 7 gives some RRULE parts as enums (vSkip.FORWARD): their text."""
    return str(getattr(value, "value", value))


def _rrule(rule: Any, zone: Any, all_day: bool) -> dict[str, Any]:
    r: dict[str, Any] = {"@type": "RecurrenceRule"}
    first = lambda key: rule.get(key)[0] if rule.get(key) else None  # noqa: E731
    freq = _enum(first("FREQ"))
    r["frequency"] = FREQ.get(freq.upper(), freq.lower())
    if first("INTERVAL") and int(first("INTERVAL")) != 1:
        r["interval"] = int(first("INTERVAL"))
    if first("RSCALE"):
        r["rscale"] = _enum(first("RSCALE")).lower()
    if first("SKIP"):
        r["skip"] = _enum(first("SKIP")).lower()
    if first("WKST"):
        r["firstDayOfWeek"] = _enum(first("WKST")).lower()
    if rule.get("BYDAY"):
        days = []
        for spec in rule["BYDAY"]:
            m = NDAY.match(str(spec).upper())
            if not m:
                continue
            nday: dict[str, Any] = {"@type": "NDay", "day": m.group(2).lower()}
            if m.group(1):
                nday["nthOfPeriod"] = int(m.group(1))
            days.append(nday)
        r["byDay"] = days
    if rule.get("BYMONTH"):
        r["byMonth"] = [str(m) for m in rule["BYMONTH"]]
    for ical_key, js_key in BY_NUMBERS.items():
        if rule.get(ical_key):
            r[js_key] = [int(v) for v in rule[ical_key]]
    if first("COUNT") is not None:
        r["count"] = int(first("COUNT"))
    until = first("UNTIL")
    if until is not None:
        r["until"] = _local_in(until, zone)
        expected = "date" if all_day else ("utc" if zone is not None else "floating")
        if value_kind(until) in ("date", "utc", "floating") and value_kind(until) != expected:
            r[VENDOR_KIND] = value_kind(until)
    return r


def _participants(comp: icalendar.cal.Component) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_address: dict[str, str] = {}
    for prop in _as_list(comp.get("ATTENDEE")):
        addr = str(prop)
        p: dict[str, Any] = {"@type": "Participant", "sendTo": {"imip": addr}}
        params = prop.params
        if params.get("CN"):
            p["name"] = str(params["CN"])
        if params.get("EMAIL"):
            p["email"] = str(params["EMAIL"])
        elif addr.lower().startswith("mailto:"):
            p["email"] = addr[7:]
        p["roles"] = dict(
            ROLE.get(str(params.get("ROLE", "REQ-PARTICIPANT")).upper(), {"attendee": True})
        )
        if params.get("PARTSTAT"):
            p["participationStatus"] = str(params["PARTSTAT"]).lower()
        if str(params.get("RSVP", "")).upper() == "TRUE":
            p["expectReply"] = True
        if params.get("CUTYPE"):
            p["kind"] = CUTYPE.get(str(params["CUTYPE"]).upper(), str(params["CUTYPE"]).lower())
        if params.get("SENT-BY"):
            sent_by = str(params["SENT-BY"]).strip('"')
            p["sentBy"] = sent_by[7:] if sent_by.lower().startswith("mailto:") else sent_by
        if params.get("LANGUAGE"):
            p["language"] = str(params["LANGUAGE"])
        if params.get("SCHEDULE-AGENT"):
            p["scheduleAgent"] = str(params["SCHEDULE-AGENT"]).lower()
        if params.get("SCHEDULE-STATUS"):
            status = params["SCHEDULE-STATUS"]
            values = status if isinstance(status, list) else str(status).split(",")
            p["scheduleStatus"] = [str(v).strip('"') for v in values]
        for param, key in (
            ("DELEGATED-TO", "delegatedTo"),
            ("DELEGATED-FROM", "delegatedFrom"),
            ("MEMBER", "memberOf"),
        ):
            if params.get(param):
                values = (
                    params[param]
                    if isinstance(params[param], list)
                    else str(params[param]).split(",")
                )
                p[key] = {str(v).strip().strip('"'): True for v in values}
        pid = str(params.get("X-JMAP-ID") or _sub_id("p", addr.lower()))
        pid = _unique(out, pid)
        out[pid] = p
        by_address[addr.lower()] = pid
    organizer = comp.get("ORGANIZER")
    if organizer is not None:
        addr = str(organizer)
        pid = by_address.get(addr.lower())
        if pid is None:
            p = {"@type": "Participant", "sendTo": {"imip": addr}, "roles": {"owner": True}}
            if organizer.params.get("CN"):
                p["name"] = str(organizer.params["CN"])
            if addr.lower().startswith("mailto:"):
                p["email"] = addr[7:]
            pid = _unique(out, str(organizer.params.get("X-JMAP-ID") or _sub_id("p", addr.lower())))
            out[pid] = p
        else:
            out[pid]["roles"]["owner"] = True
            if organizer.params.get("CN") and "name" not in out[pid]:
                out[pid]["name"] = str(organizer.params["CN"])
    # delegation values are addresses in iCalendar and participant ids in JSCalendar
    for p in out.values():
        for key in ("delegatedTo", "delegatedFrom"):
            if key in p:
                p[key] = {by_address.get(a.lower(), a): True for a in p[key]}
    return out


def _alert(alarm: icalendar.cal.Component) -> dict[str, Any] | None:
    trigger = alarm.get("TRIGGER")
    if trigger is None or isinstance(trigger, (list, vBroken)):
        return None
    try:
        value = trigger.dt
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(value, timedelta | date):
        return None
    alert: dict[str, Any] = {"@type": "Alert"}
    if isinstance(value, timedelta):
        t: dict[str, Any] = {"@type": "OffsetTrigger", "offset": duration_str(value)}
        if str(trigger.params.get("RELATED", "START")).upper() == "END":
            t["relativeTo"] = "end"
        alert["trigger"] = t
    else:
        alert["trigger"] = {"@type": "AbsoluteTrigger", "when": utc_str(_aware(value))}
    action = str(alarm.get("ACTION", "DISPLAY")).upper()
    if action == "EMAIL":
        alert["action"] = "email"
    consumed = {"TRIGGER", "X-JMAP-ID"}
    if action in ("DISPLAY", "EMAIL"):
        consumed.add("ACTION")
    ack = alarm.get("ACKNOWLEDGED")
    if ack is not None and _usable("ACKNOWLEDGED", ack):
        alert["acknowledged"] = utc_str(_aware(ack.dt))
        consumed.add("ACKNOWLEDGED")
    props = [
        (name, value)
        for name, value in alarm.property_items(recursive=False, sorted=False)
        if name not in ("BEGIN", "END") and name not in consumed
    ]
    trigger_params = prop_params(trigger, CONSUMED_PARAMS["TRIGGER"])
    converted = None
    if trigger_params:  # parameters of the property that became ``trigger``
        converted = {
            "trigger": {
                "@type": "ICalProperty",
                "name": "trigger",
                "parameters": {k.lower(): v for k, v in trigger_params.items()},
            }
        }
    if props or alarm.subcomponents or converted:
        alert[ICAL_COMPONENT] = ical_component("VALARM", props, alarm.subcomponents, converted)
    return alert


def jcal_property(name: str, value: Any) -> list[Any]:
    """A property as jCal (RFC 7265): name and parameters in lower case, and its value
    as the iCalendar text, typed "unknown" so that it goes back out byte for byte."""
    params = {k.lower(): v for k, v in prop_params(value).items()}
    return [name.lower(), params, "unknown", prop_text(value)]


def jcal_component(comp: Any) -> list[Any]:
    """A whole component as jCal: [name, [properties], [components]]."""
    props = [
        jcal_property(name, value)
        for name, value in comp.property_items(recursive=False, sorted=False)
        if name not in ("BEGIN", "END")
    ]
    return [str(comp.name).lower(), props, [jcal_component(sub) for sub in comp.subcomponents]]


def ical_component(
    name: str,
    props: list[tuple[str, Any]],
    subs: list[Any],
    converted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What JSCalendar has no place for, by draft-ietf-calext-jscalendar-icalendar's own
    means: an ICalComponent with the properties and components that were not converted
    (and the parameters of converted ones)."""
    out: dict[str, Any] = {"@type": "ICalComponent", "name": name.lower()}
    if props:
        out["properties"] = [jcal_property(n, v) for n, v in props]
    if subs:
        out["components"] = [jcal_component(sub) for sub in subs]
    if converted:
        out["convertedProperties"] = converted
    return out
