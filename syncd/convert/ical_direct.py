"""PURE: the file of an ordinary server event, written straight from its JSCalendar.

Building a file through icalendar's components (``ical_out``) costs about 0.27 ms an
event: of a 10,000-event first download, the largest part of syncd's CPU.  Most events
a server sends use a few properties in their plainest form, and for those ``event_file``
writes each line directly: the very bytes ``jscal_to_ics`` makes through components,
which tests/convert/test_lean.py checks on generated events, the real-world corpus and
the benchmark's events (tests/convert/test_direct.py also checks that this path is the
one they take).

The parts it meets less often and whose rules are intricate (RRULE, EXDATE,
participants, alarms, links) are made by the general path's own functions, on a scratch
component.  Anything else -- a property this module does not know, a value of an
unusual form, a vendor key, a custom or unknown zone, a task, an override that is not
an exclusion -- gives None, and ``jscal_to_ics`` takes the general path.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import date, datetime
from typing import Any

from syncd.convert.canon import MEMBERSHIP, SERVER_SET
from syncd.convert.ical_out import (
    PRODID,
    REV_CLASS,
    REV_STATUS_EVENT,
    REV_TRANSP,
    _add_dt,
    _alarm,
    _content_line,
    _duration_text,
    _generated_zone,
    _LeanEvent,
    _Params,
    _params_text,
    _rrule,
    _serialize_into,
    _span_years,
    _tzid,
    content_line,
    escape_text,
    icalendar_escape,
    link_props,
    participant_props,
)
from syncd.convert.values import get_zone, parse_duration, parse_local, parse_utc

# What icalendar writes first in a VEVENT, in this order; the rest alphabetically.
_CANONICAL = (
    "SUMMARY",
    "DTSTART",
    "DTEND",
    "DURATION",
    "DTSTAMP",
    "UID",
    "RECURRENCE-ID",
    "SEQUENCE",
    "RRULE",
    "RDATE",
    "EXDATE",
)
_RANK = {name: i for i, name in enumerate(_CANONICAL)}

_WRITTEN = {
    "@type",
    "uid",
    "start",
    "timeZone",
    "duration",
    "showWithoutTime",
    "created",
    "updated",
    "sequence",
    "priority",
    "title",
    "description",
    "keywords",
    "locations",
    "status",
    "freeBusyStatus",
    "privacy",
    "alerts",
    "recurrenceRules",
    "recurrenceOverrides",
    "participants",
    "replyTo",
    "links",
    "locale",
}
# Read by the general path; here only when empty (else: the general path).
_EMPTY_ONLY = {
    "relatedTo",
    "virtualLocations",
    "color",
    "excludedRecurrenceRules",
    "timeZones",
}
# Read by neither path: what the server sets, and membership.
_IGNORED = (SERVER_SET | MEMBERSHIP | {"descriptionContentType"}) - _WRITTEN - _EMPTY_ONLY
_KNOWN = _WRITTEN | _EMPTY_ONLY | _IGNORED

_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_LOCAL_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_LOCATION_KEYS = {"@type", "name"}
_ALERT_KEYS = {"@type", "trigger", "action"}
_TRIGGER_KEYS = {"@type", "offset", "relativeTo"}
_CALENDAR_HEAD = ("BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}")


def event_file(obj: dict[str, Any]) -> bytes | None:
    """``jscal_to_ics([obj])``'s bytes for an event of the common kind; None otherwise."""
    try:
        return _event_file(obj)
    except Exception:  # noqa: BLE001 - _Unusual, or a value the general path will report
        return None


class _Unusual(Exception):
    """Something the direct path does not write: the general path does."""


def _event_file(obj: dict[str, Any]) -> bytes | None:
    if obj.get("@type") != "Event" or not _KNOWN.issuperset(obj):
        return None
    for key in _EMPTY_ONLY:
        if obj.get(key):
            return None
    props: dict[str, list[str]] = {}
    zone_name = obj.get("timeZone")
    all_day = obj.get("showWithoutTime", False)
    uid, start = obj.get("uid"), obj.get("start")
    if type(all_day) is not bool or type(uid) is not str or not start:
        return None
    tzid = _zone_tzid(zone_name, all_day)

    props["UID"] = [content_line("UID", icalendar_escape(uid))]
    stamp = obj.get("updated") or obj.get("created")
    props["DTSTAMP"] = [content_line("DTSTAMP", _utc(stamp) if stamp else "19700101T000000Z")]
    begin = _local(start)
    props["DTSTART"] = [_date_line("DTSTART", begin, tzid, all_day)]
    duration = obj.get("duration")
    if duration is not None and type(duration) is not str:
        return None
    length = _duration(duration or ("P1D" if all_day else "PT0S"))
    if length.microseconds:
        return None
    if length or all_day or "duration" in obj:  # an explicit zero length is a DTEND
        props["DTEND"] = [_date_line("DTEND", begin + length, tzid, all_day)]
    title = obj.get("title")
    if title is not None:
        locale = obj.get("locale")
        language = _params_text(_Params(LANGUAGE=_str(locale))) if locale else ""
        props["SUMMARY"] = [content_line("SUMMARY", escape_text(_str(title)), language)]
    if obj.get("description"):
        props["DESCRIPTION"] = [content_line("DESCRIPTION", escape_text(_str(obj["description"])))]
    if obj.get("created"):
        props["CREATED"] = [content_line("CREATED", _utc(obj["created"]))]
    if obj.get("updated"):
        props["LAST-MODIFIED"] = [content_line("LAST-MODIFIED", _utc(obj["updated"]))]
    if obj.get("sequence"):
        props["SEQUENCE"] = [content_line("SEQUENCE", str(_int(obj["sequence"])))]
    if obj.get("status"):
        status = REV_STATUS_EVENT.get(obj["status"]) or str(obj["status"]).upper()
        props["STATUS"] = [content_line("STATUS", icalendar_escape(status))]
    if obj.get("privacy"):
        privacy = REV_CLASS.get(obj["privacy"]) or str(obj["privacy"]).upper()
        props["CLASS"] = [content_line("CLASS", icalendar_escape(privacy))]
    if obj.get("freeBusyStatus"):
        transp = REV_TRANSP.get(obj["freeBusyStatus"], "OPAQUE")
        props["TRANSP"] = [content_line("TRANSP", icalendar_escape(transp))]
    priority = obj.get("priority")
    if priority is not None and priority != 0:
        props["PRIORITY"] = [content_line("PRIORITY", str(_int(priority)))]
    keywords = [_str(k) for k, on in sorted((obj.get("keywords") or {}).items()) if on]
    if keywords:
        props["CATEGORIES"] = [
            content_line("CATEGORIES", ",".join(map(icalendar_escape, keywords)))
        ]
    locations = []
    for lid, loc in sorted((obj.get("locations") or {}).items()):
        if type(loc) is not dict or not _LOCATION_KEYS.issuperset(loc):
            return None  # coordinates (GEO) and the rest: the general path
        if loc.get("name") is not None:
            text = escape_text(_str(loc["name"]))
            locations.append(content_line("LOCATION", text, _jmap_id(_str(lid))))
    if locations:
        props["LOCATION"] = locations

    rules = obj.get("recurrenceRules")
    scratch = _scratch_lines(obj, zone_name, all_day)
    if scratch is None:
        return None
    lines, alarms = scratch
    for name, values in lines.items():
        props[name] = values

    out = list(_CALENDAR_HEAD)
    if tzid is not None and tzid != "UTC":
        if rules or obj.get("recurrenceOverrides"):
            first, last = _span_years(obj, None, None)
        else:  # _span_years of a single instance: the years around its start
            first = date(max(begin.year - 1, 1), 1, 1)
            last = date(min(begin.year + 2, 9998), 1, 1)
        try:
            out += _zone_lines(tzid, first or date(1970, 1, 1), last or date(2038, 1, 1))
        except Exception:  # noqa: BLE001 - the general path writes the file without it
            return None
    out.append("BEGIN:VEVENT")
    for name in sorted(props, key=_order):
        out += props[name]
    out += alarms
    out.append("END:VEVENT")
    out.append("END:VCALENDAR")
    return ("\r\n".join(filter(None, out)) + "\r\n").encode("utf-8")


def _scratch_lines(
    obj: dict[str, Any], zone_name: str | None, all_day: bool
) -> tuple[dict[str, list[str]], list[str]] | None:
    """RRULE, EXDATE, ORGANIZER/ATTENDEE and VALARM lines, made by the general path's own
    functions (their rules are many; they are in a minority of events)."""
    rules = obj.get("recurrenceRules") or []
    overrides = obj.get("recurrenceOverrides") or {}
    alerts = obj.get("alerts") or {}
    links = link_props(obj)
    if not (rules or overrides or alerts or links or obj.get("participants") or obj.get("replyTo")):
        return {}, []
    comp = _LeanEvent()  # EXDATE, URL, ATTACH: made as the general path makes them
    rrules = [_rrule_line(json.dumps(rule, sort_keys=True), zone_name, all_day) for rule in rules]
    for name, href, params in links:
        comp.add(name, href, parameters=params)
    for key in sorted(overrides):
        if overrides[key] != {"excluded": True}:
            return None  # an instance that differs, an RDATE: the general path
        _add_dt(comp, "EXDATE", key, zone_name, all_day, None)
    people = participant_props(obj)
    plain = all(
        type(address) is str
        and "\r" not in address
        and "\n" not in address
        and all(type(v) is str for v in params.values())
        for _, address, params in people
    )
    if not plain:  # lists of delegates and the like: icalendar's types, on the scratch
        for name, address, params in people:
            comp.add(name, address, parameters=params or None)
    lines = {
        name: [_content_line(name, v) for v in (values if isinstance(values, list) else [values])]
        for name, values in comp.items()
    }
    if rrules:
        lines["RRULE"] = rrules
    if plain:
        for name, address, params in people:
            ptext = _params_text(_Params(params)) if params else ""
            lines.setdefault(name, []).append(content_line(name, address, ptext))
    alarm_lines: list[str] = []
    for aid, alert in sorted(alerts.items()):
        direct = _offset_alarm(aid, alert, obj)
        if direct is not None:
            alarm_lines += direct
            continue
        alarm = _alarm(aid, alert, obj, lean=True)
        if alarm is not None:
            _serialize_into(alarm, alarm_lines)
    return lines, alarm_lines


@functools.lru_cache(maxsize=256)
def _zone_lines(tzid: str, first: date, last: date) -> tuple[str, ...]:
    """The VTIMEZONE's lines for these years (most events of a calendar share a few)."""
    lines: list[str] = []
    _serialize_into(_generated_zone(tzid, first, last), lines)
    return tuple(lines)


@functools.lru_cache(maxsize=512)
def _rrule_line(rule: str, zone_name: str | None, all_day: bool) -> str:
    """A rule's RRULE line, as the general path writes it (through icalendar's types, a
    sixth of the direct path's time for the fifth of events that recur), once per rule:
    series repeat the same few rules.  ``rule`` is its JSON, keys sorted."""
    comp = _LeanEvent()
    comp.add("RRULE", _rrule(json.loads(rule), zone_name, all_day))
    return _content_line("RRULE", comp["RRULE"])


def _offset_alarm(aid: Any, alert: Any, obj: dict[str, Any]) -> list[str] | None:
    """The VALARM ``_alarm`` makes for a plain alert relative to the start or end; None
    for any other (an absolute time, an acknowledgement, kept iCalendar)."""
    if type(alert) is not dict or not _ALERT_KEYS.issuperset(alert):
        return None
    trigger = alert.get("trigger")
    if (
        type(trigger) is not dict
        or trigger.get("@type") != "OffsetTrigger"
        or not _TRIGGER_KEYS.issuperset(trigger)
    ):
        return None
    offset = _offset_text(_str(trigger.get("offset") or "PT0S"))
    related = "RELATED=END" if trigger.get("relativeTo") == "end" else ""
    title = obj.get("title")
    if alert.get("action") == "email":
        head = [
            content_line("ACTION", "EMAIL"),
            content_line(
                "DESCRIPTION", escape_text(_str(obj.get("description") or title or "Reminder"))
            ),
            content_line("SUMMARY", escape_text(_str(title or ""))),
        ]
    else:
        head = [
            content_line("ACTION", "DISPLAY"),
            content_line("DESCRIPTION", escape_text(_str(title or "Reminder"))),
        ]
    return [
        "BEGIN:VALARM",
        *head,
        content_line("TRIGGER", offset, related),
        content_line("X-JMAP-ID", icalendar_escape(_str(aid))),
        "END:VALARM",
    ]


@functools.lru_cache(maxsize=128)  # the names of a VEVENT's properties: a few dozen
def _order(name: str) -> tuple[int, str]:
    return (_RANK.get(name, len(_RANK)), name)


@functools.lru_cache(maxsize=256)
def _zone_tzid(zone_name: Any, all_day: bool) -> str | None:
    """The TZID of the item's dates: None when floating or all-day, "UTC" for a zone
    icalendar writes as UTC (a Z, no TZID); _Unusual for a zone the direct path does not
    write (custom, unknown, not a name)."""
    if zone_name is None or all_day:
        if zone_name is not None and (type(zone_name) is not str or get_zone(zone_name) is None):
            raise _Unusual(zone_name)
        return None
    if type(zone_name) is not str:
        raise _Unusual(zone_name)
    zone = get_zone(zone_name)
    tzid = _tzid(zone) if zone is not None else None
    if tzid is None:
        raise _Unusual(zone_name)
    return tzid


@functools.lru_cache(maxsize=256)
def _tzid_params(tzid: str) -> str:
    return _params_text(_Params(TZID=tzid))


@functools.lru_cache(maxsize=256)
def _jmap_id(key: str) -> str:
    return _params_text(_Params({"X-JMAP-ID": key}))


# Durations repeat (an hour, a quarter of an hour before): read and written once each.
_duration = functools.lru_cache(maxsize=256)(parse_duration)


@functools.lru_cache(maxsize=256)
def _offset_text(offset: str) -> str:
    return _duration_text(parse_duration(offset))


def _date_line(name: str, value: datetime, tzid: str | None, all_day: bool) -> str:
    if all_day:
        return content_line(name, f"{value.year:04}{value.month:02}{value.day:02}", "VALUE=DATE")
    text = _digits(value)
    if tzid is None:
        return content_line(name, text)
    if tzid == "UTC":
        return content_line(name, text + "Z")
    return content_line(name, text, _tzid_params(tzid))


def _digits(value: datetime) -> str:
    if value.microsecond or value.tzinfo is not None:
        return (
            f"{value.year:04}{value.month:02}{value.day:02}"
            f"T{value.hour:02}{value.minute:02}{value.second:02}"
        )
    # "2026-12-07T15:07:04" less its separators: twice as fast as formatting each field.
    return value.isoformat().replace("-", "").replace(":", "")


def _utc(text: Any) -> str:
    if type(text) is not str:
        raise _Unusual(text)
    return _utc_text(text)


@functools.lru_cache(maxsize=1024)
def _utc_text(text: str) -> str:
    """The iCalendar form of a UTCDateTime: its own digits, once it is known to be a real
    time (three per event, often the same one: a sixth of the direct path's time went to
    parsing and formatting them again)."""
    if not _UTC_TEXT.fullmatch(text):
        raise _Unusual(text)
    parse_utc(text)  # ValueError for a date that does not exist: the general path
    return f"{text[0:4]}{text[5:7]}{text[8:10]}T{text[11:13]}{text[14:16]}{text[17:19]}Z"


def _local(text: Any) -> datetime:
    if type(text) is not str or not _LOCAL_TEXT.fullmatch(text):
        raise _Unusual(text)
    return parse_local(text)


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _Unusual(value)
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _Unusual(value)
    return value


__all__ = ["event_file"]
