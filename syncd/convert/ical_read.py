"""PURE: the JSCalendar of an ordinary event file, read straight from its lines.

Reading a file through icalendar's components (``ical_in``) costs about 1.1 ms an
event, 85 % of it icalendar splitting content lines character by character and building
a typed object for every property and parameter.  Adopting a vdirsyncer vdir of 10,000
events, or uploading one, reads every file: ten seconds of CPU.  Most files hold one
event with a few properties in their plainest form, and for those ``read_event`` builds
the object directly: the very object ``ics_to_jscal`` makes through components, which
tests/convert/test_read_direct.py checks on generated files, the real-world corpus,
syncd's own files and the benchmark's (and that those take this path).

The mirror of ``ical_direct`` (which writes files the same way).  Anything it does not
know for certain -- a property or parameter it does not read, a parameter value with
quotes that matter, escapes or a list, a custom or unknown zone, a date of another kind
than the start, several components, a task, an override -- gives None, and
``ics_to_jscal`` takes the general path, which also reports errors.  RRULE and EXDATE
values, whose rules are many, are read by icalendar's own value types and converted by
the general path's functions; so is a VTIMEZONE whose lines are not all plain.  The
speed: 0.14-0.17 ms a file against 1.0-1.2 ms (contrib/bench/README.md, Session 20).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from icalendar.cal import Component
from icalendar.prop import vDDDLists, vRecur, vUnknown

from syncd.convert.ical_in import (
    CLASS,
    CONSUMED_PARAMS,
    CUTYPE,
    ICAL_COMPONENT,
    ROLE,
    STATUS_EVENT,
    TRANSP,
    VENDOR_CALENDAR,
    VENDOR_EMPTY,
    VENDOR_PARAMS,
    _local_in,
    _rrule,
    _sub_id,
    _unique,
)
from syncd.convert.ical_out import icalendar_escape
from syncd.convert.values import (
    UTC_NAMES,
    duration_str,
    get_zone,
    local_str,
    parse_duration,
    utc_str,
)
from syncd.convert.windows_zones import iana_name

# A parameter section of the plain kind: NAME=value pairs, no quotes, escapes, lists,
# RFC 6868 carets or percent signs (icalendar rewrites those), no blanks around a
# delimiter (icalendar strips them); a value may hold inner spaces (CN=Eve Johnson).
_VALUE_RUN = r"[^\s\x00-\x1f\x7f\";:,\\^%=]+"
_QUOTED = r'"[^\x00-\x1f\x7f";:,\\^%]+"'  # quoted only for its spaces (CN="Eve Johnson")
_PARAM = re.compile(rf"([A-Za-z0-9-]+)=({_VALUE_RUN}(?: +{_VALUE_RUN})*|{_QUOTED})")
_NAME = re.compile(r"[A-Z0-9-]+")
_DATE = re.compile(r"(\d{4})(\d\d)(\d\d)")
_DATE_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(Z?)")
_OFFSET = re.compile(r"[+-](\d\d)(\d\d)(\d\d)?")
_INT = re.compile(r"\d{1,10}")
_DURATION_TEXT = re.compile(r"[+-]?P(?:\d+W|(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)")
# What ``ical_in._precheck`` (which reports the line of an error) also takes for a line
# break: a value holding one would be refused there.
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_FOLD_AFTER_EMPTY = re.compile(r"\n\n+[ \t]")
_EMPTY_LINES = re.compile(r"\n\n+")
_UNESCAPE = re.compile(r"\\([\\,;:nN])")

# Parameters each property may carry here, all of them consumed by the mapping (an X-
# parameter besides, on the properties of _WITH_X_PARAMS, goes to ``syncd.app:icalParams``).
_DATES = frozenset({"TZID", "VALUE"})
_ALLOWED_PARAMS: dict[str, frozenset[str]] = {
    "UID": frozenset(),
    "SUMMARY": frozenset({"LANGUAGE"}),
    "DESCRIPTION": frozenset(),
    "DTSTART": _DATES,
    "DTEND": _DATES,
    "DURATION": frozenset(),
    "DTSTAMP": frozenset(),
    "CREATED": frozenset(),
    "LAST-MODIFIED": frozenset(),
    "SEQUENCE": frozenset(),
    "PRIORITY": frozenset(),
    "STATUS": frozenset(),
    "CLASS": frozenset(),
    "TRANSP": frozenset(),
    "CATEGORIES": frozenset(),
    "LOCATION": frozenset({"X-JMAP-ID"}),
    "RRULE": frozenset(),
    "EXDATE": _DATES,
    "ORGANIZER": frozenset({"CN", "X-JMAP-ID"}),
    "ATTENDEE": frozenset(
        {
            "CN",
            "EMAIL",
            "ROLE",
            "PARTSTAT",
            "RSVP",
            "CUTYPE",
            "LANGUAGE",
            "SCHEDULE-AGENT",
            "X-JMAP-ID",
        }
    ),
}
# Properties that may carry X- parameters besides, which the general path keeps in
# ``syncd.app:icalParams`` with the property's text: its value as icalendar writes it
# back (a TEXT escaped again, a CAL-ADDRESS as it is, a date as its digits).
_TEXT = {"UID", "SUMMARY", "DESCRIPTION", "LOCATION", "STATUS", "CLASS", "TRANSP"}
_AS_READ = {"ATTENDEE", "ORGANIZER"}
_AS_WRITTEN = {"DTSTART", "DTEND", "DTSTAMP", "CREATED", "LAST-MODIFIED"}
_WITH_X_PARAMS = _TEXT | _AS_READ | _AS_WRITTEN
_REPEATABLE = {"CATEGORIES", "LOCATION", "RRULE", "EXDATE", "ATTENDEE"}
_ALARM_PARAMS: dict[str, frozenset[str]] = {
    "ACTION": frozenset(),
    "TRIGGER": frozenset({"RELATED"}),
    "DESCRIPTION": frozenset(),
    "SUMMARY": frozenset(),
    "X-JMAP-ID": frozenset(),
    "UID": frozenset(),
}
_ALARM_KEPT = ("DESCRIPTION", "SUMMARY", "UID")  # not consumed: kept in iCalComponent

Prop = tuple[dict[str, str], str]  # parameters (names upper case), raw value


class _Unusual(Exception):
    """Something this path does not read: the general path does."""


def read_event(text: str) -> list[dict[str, Any]] | None:
    """``ics_to_jscal(text)`` for a file of one ordinary event; None for any other."""
    try:
        return _read(text)
    except (_Unusual, ValueError, TypeError, KeyError, IndexError, OverflowError):
        return None


def _lines(text: str) -> list[str]:
    """The unfolded content lines; _Unusual where unfolding could differ from
    icalendar's (a bare CR, an empty line inside the file)."""
    if not text.startswith("BEGIN:VCALENDAR") or _OTHER_BREAKS.search(text):
        raise _Unusual("not the plain start, or a line break str.splitlines knows")
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        raise _Unusual("bare CR")
    text = text.rstrip("\n")
    if "\n\n" in text:
        if _FOLD_AFTER_EMPTY.search(text):
            raise _Unusual("a fold after an empty line")
        text = _EMPTY_LINES.sub("\n", text)  # icalendar skips empty lines
    return text.replace("\n ", "").replace("\n\t", "").split("\n")


def _split(line: str) -> tuple[str, dict[str, str], str]:
    colon = line.find(":")
    if colon <= 0:
        raise _Unusual(line)
    head, value = line[:colon], line[colon + 1 :]
    if "\\" in head or head.count('"') % 2:  # an escape, or a colon inside quotes
        raise _Unusual(line)
    name, *params = head.split(";")  # no quoted value holds a ";" (_QUOTED)
    if not _NAME.fullmatch(name):
        raise _Unusual(name)
    parsed: dict[str, str] = {}
    for param in params:
        m = _PARAM.fullmatch(param)
        if m is None:
            raise _Unusual(param)
        # a repeated name: the last value, in the first one's place (icalendar's dict)
        parsed[m[1].upper()] = m[2][1:-1] if m[2][0] == '"' else m[2]
    return name, parsed, value


class _Comp:
    """A VEVENT's or VALARM's properties: those the mapping reads, by name, and the ones
    it keeps as they are (``iCalComponent``: X- properties), in the file's order."""

    __slots__ = ("props", "kept", "alarms")

    def __init__(self) -> None:
        self.props: dict[str, list[Prop]] = {}
        self.kept: list[tuple[str, dict[str, str], str]] = []
        self.alarms: list[_Comp] = []


def _read(text: str) -> list[dict[str, Any]] | None:
    lines = _lines(text)
    if lines[0] != "BEGIN:VCALENDAR" or lines[-1] != "END:VCALENDAR":
        return None
    cal_props: list[list[Any]] = []
    event: _Comp | None = None
    i, end = 1, len(lines) - 1
    while i < end:
        name, params, value = _split(lines[i])
        i += 1
        if name == "BEGIN" and value == "VTIMEZONE":
            i = _skip_known_zone(lines, i, end)
        elif name == "BEGIN" and value == "VEVENT" and event is None:
            event, i = _read_event(lines, i, end)
        elif name in ("VERSION", "PRODID"):
            continue
        elif name in ("CALSCALE", "METHOD") and not params:
            cal_props.append([name, {}, icalendar_escape(_text(value))])
        elif _is_kept(name, params):
            cal_props.append([name, params, value])
        else:
            return None
    if event is None:
        return None
    obj = _event_object(event)
    if cal_props:
        obj[VENDOR_CALENDAR] = {"properties": _grouped(cal_props)}
    return [obj]


def _skip_known_zone(lines: list[str], i: int, end: int) -> int:
    """Past a VTIMEZONE the general path drops (a zone it resolves by name), once sure
    icalendar reads it without error, as the general path makes it do."""
    first = i - 1
    tzid = None
    plain = True  # every line one ``_plain_zone_line`` vouches for
    while i < end:
        name, params, value = _split(lines[i])
        i += 1
        if name == "TZID" and tzid is None and not params:
            tzid = _text(value)
        elif name == "END" and value == "VTIMEZONE":
            if not tzid or get_zone(iana_name(tzid) or tzid) is None:
                raise _Unusual(tzid)  # a custom zone keeps its definition: the general path
            plain = plain and iana_name(tzid) == tzid  # no definition icalendar would build
            if not plain and not _zone_reads("\r\n".join(lines[first:i])):
                raise _Unusual(tzid)
            return i
        else:
            plain = plain and _plain_zone_line(name, params, value)
    raise _Unusual("VTIMEZONE not closed")


def _plain_zone_line(name: str, params: dict[str, str], value: str) -> bool:
    """A line of a VTIMEZONE that icalendar certainly reads (each file from Cyrus has its
    own zone, cut to the event's dates: reading each with icalendar cost 0.35 ms)."""
    if name in ("BEGIN", "END"):
        return value in ("STANDARD", "DAYLIGHT")
    if name.startswith("X-") or (name == "TZNAME" and not params):
        return True
    if params:
        return False
    if name in ("TZOFFSETFROM", "TZOFFSETTO"):
        m = _OFFSET.fullmatch(value)
        return m is not None and int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0) < 86400
    if name in ("DTSTART", "TZUNTIL", "LAST-MODIFIED"):
        m = _DATE_TIME.fullmatch(value)
        if m is None:
            return False
        y, mo, d, h, mi, sec = (int(part) for part in m.groups()[:6])
        try:
            datetime(y, mo, d, h, mi, sec)
        except ValueError:
            return False
        return True
    if name == "RRULE":
        return _rule_reads(value)
    return False


@functools.lru_cache(maxsize=256)
def _rule_reads(value: str) -> bool:
    try:
        vRecur.from_ical(value)
    except Exception:  # noqa: BLE001 - as _zone_reads
        return False
    return "\\" not in value


@functools.lru_cache(maxsize=64)
def _zone_reads(block: str) -> bool:
    """Whether icalendar reads this VTIMEZONE (an offset of 99 hours, a broken RRULE:
    the general path refuses the file).  Files share their zones: read once each."""
    try:
        Component.from_ical(block)
    except Exception:  # noqa: BLE001 - whatever icalendar raises, the file is the general path's
        return False
    return True


def _is_kept(name: str, params: dict[str, str]) -> bool:
    """An X- property the general path keeps verbatim (icalendar's vUnknown: its text is
    the raw value, whatever its escapes)."""
    return name.startswith("X-") and "VALUE" not in params and _unknown_type(name)


@functools.lru_cache(maxsize=512)
def _unknown_type(name: str) -> bool:
    return Component.types_factory.for_property(name, None) is vUnknown


def _read_event(lines: list[str], i: int, end: int) -> tuple[_Comp, int]:
    event = _Comp()
    alarm: _Comp | None = None
    while i < end:
        name, params, value = _split(lines[i])
        i += 1
        if alarm is not None:
            if name == "END" and value == "VALARM":
                event.alarms.append(alarm)
                alarm = None
            elif name in _ALARM_PARAMS and _ALARM_PARAMS[name].issuperset(params):
                if name in alarm.props:
                    raise _Unusual(name)
                alarm.props[name] = [(params, value)]
                if name in _ALARM_KEPT:
                    alarm.kept.append((name, params, value))
            elif _is_kept(name, params):
                alarm.kept.append((name, params, value))
            else:
                raise _Unusual(name)
        elif name == "BEGIN" and value == "VALARM":
            alarm = _Comp()
        elif name == "END" and value == "VEVENT":
            return event, i
        elif name in _ALLOWED_PARAMS and _params_read(name, params):
            if name in event.props and name not in _REPEATABLE:
                raise _Unusual(name)  # a second one stays text in the general path
            event.props.setdefault(name, []).append((params, value))
        elif name != "X-JMAP-ID" and _is_kept(name, params):
            event.kept.append((name, params, value))
        else:
            raise _Unusual(name)
    raise _Unusual("VEVENT not closed")


def _params_read(name: str, params: dict[str, str]) -> bool:
    allowed = _ALLOWED_PARAMS[name]
    if name in _WITH_X_PARAMS:
        return all(key in allowed or key.startswith("X-") for key in params)
    return allowed.issuperset(params)


def _vendor_params(props: dict[str, list[Prop]], organizer_cn: bool) -> list[list[Any]]:
    """``ical_in.unconsumed_params``: each property's parameters the mapping did not
    take, by property name in the order the names first appear (icalendar's own)."""
    out: list[list[Any]] = []
    for name, values in props.items():
        consumed = CONSUMED_PARAMS.get(name, {"VALUE"})
        if name == "ORGANIZER" and organizer_cn:
            consumed = consumed - {"CN"}
        for params, raw in values:
            left = {k: v for k, v in params.items() if k not in consumed}
            if left:
                text = icalendar_escape(_text(raw)) if name in _TEXT else raw
                out.append([name, _text(raw) if name in _AS_READ else text, left])
    return out


def _grouped(props: list[Any]) -> list[Any]:
    """Properties (name first) as icalendar lists a component's: those of one name
    together, where the name first appears (its values are one list in a dict)."""
    first: dict[str, int] = {}
    for i, prop in enumerate(props):
        first.setdefault(prop[0], i)
    return sorted(props, key=lambda prop: first[prop[0]])


def _jcal(kept: list[tuple[str, dict[str, str], str]]) -> list[list[Any]]:
    """``ical_in.jcal_property`` of each kept property: a text (vText) escaped again,
    an X- property's raw value as it is."""
    return [
        [
            name.lower(),
            {k.lower(): v for k, v in params.items()},
            "unknown",
            raw if name.startswith("X-") else icalendar_escape(_text(raw)),
        ]
        for name, params, raw in _grouped(kept)
    ]


def _text(raw: str) -> str:
    """A value as icalendar's parser gives it (its backslash escapes undone)."""
    if "\\" not in raw:
        return raw
    return _UNESCAPE.sub(lambda m: "\n" if m[1] in "nN" else m[1], raw)


def _one(props: dict[str, list[Prop]], name: str) -> Prop | None:
    got = props.get(name)
    return got[0] if got else None


class _When:
    """A DTSTART/DTEND/EXDATE's form: its value, and the kind it must share with the start."""

    __slots__ = ("value", "kind", "zone")

    def __init__(self, prop: Prop, utc_only: bool = False) -> None:
        params, raw = prop
        kind = params.get("VALUE", "").upper()
        tzid = params.get("TZID")
        if kind not in ("", "DATE", "DATE-TIME"):
            raise _Unusual(kind)
        m = _DATE_TIME.fullmatch(raw)
        if m is not None and kind != "DATE":
            y, mo, d, h, mi, s, z = m.groups()
            if z and tzid:
                raise _Unusual(raw)
            self.value: date = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
            self.zone = "Etc/UTC" if z else _zone(tzid) if tzid else None
            self.kind = "utc" if z else "zoned" if tzid else "floating"
        elif kind == "DATE" and not tzid and (d8 := _DATE.fullmatch(raw)) is not None:
            self.value = date(int(d8[1]), int(d8[2]), int(d8[3]))
            self.zone, self.kind = None, "date"
        else:
            raise _Unusual(raw)
        if utc_only and self.kind != "utc":
            raise _Unusual(raw)


def _zone(tzid: str) -> str:
    """The timeZone a TZID names; _Unusual unless it is plainly an IANA zone."""
    if tzid in UTC_NAMES or iana_name(tzid) != tzid or get_zone(tzid) is None:
        raise _Unusual(tzid)
    return tzid


def _utc(prop: Prop) -> str:
    value = _When(prop, utc_only=True).value
    assert isinstance(value, datetime)  # utc_only: a date-time
    return utc_str(value.replace(tzinfo=UTC))


def _int(prop: Prop, high: int) -> int:
    if not _INT.fullmatch(prop[1]) or int(prop[1]) > high:
        raise _Unusual(prop[1])
    return int(prop[1])


def _duration(raw: str) -> timedelta:
    if not _DURATION_TEXT.fullmatch(raw) or raw.endswith(("P", "T")):
        raise _Unusual(raw)
    return parse_duration(raw)


def _event_object(event: _Comp) -> dict[str, Any]:
    """``component_to_object`` for a VEVENT of the plain kind, key for key in its order."""
    props = event.props
    uid_prop = _one(props, "UID")
    start_prop = _one(props, "DTSTART")
    if uid_prop is None or start_prop is None or not _text(uid_prop[1]).strip():
        raise _Unusual("no UID or DTSTART")
    if "DTEND" in props and "DURATION" in props:
        raise _Unusual("DTEND and DURATION")
    if _one(props, "DTSTAMP") is not None:
        _When(props["DTSTAMP"][0])  # read (and dropped) by the general path only if valid
    obj: dict[str, Any] = {"@type": "Event", "uid": _text(uid_prop[1]).strip()}
    summary = _one(props, "SUMMARY")
    if summary is not None:
        obj["title"] = _text(summary[1])
        if summary[0].get("LANGUAGE"):
            obj["locale"] = summary[0]["LANGUAGE"]
    description = _one(props, "DESCRIPTION")
    if description is not None:
        obj["description"] = _text(description[1])
        if not obj["description"]:
            obj[VENDOR_EMPTY] = ["DESCRIPTION"]

    start = _When(start_prop)
    all_day = start.kind == "date"
    obj["start"] = local_str(start.value)
    if start.zone:
        obj["timeZone"] = start.zone
    if all_day:
        obj["showWithoutTime"] = True
    end_prop = _one(props, "DTEND")
    duration = _one(props, "DURATION")
    if duration is not None:
        obj["duration"] = duration_str(_duration(duration[1]))
    elif end_prop is not None:
        end = _When(end_prop)
        if (end.kind, end.zone) != (start.kind, start.zone):
            raise _Unusual("an end of another kind")  # syncd.app:icalKind: the general path
        obj["duration"] = duration_str(end.value - start.value)  # type: ignore[operator]
    elif all_day:
        obj["duration"] = "P1D"
    status = _one(props, "STATUS")
    if status is not None:
        text = _text(status[1])
        obj["status"] = STATUS_EVENT.get(text.upper(), text.lower())

    zone = get_zone(start.zone)
    rules = [_recurrence_rule(raw, zone, all_day) for _, raw in props.get("RRULE", ())]
    if rules:
        obj["recurrenceRules"] = rules
    overrides: dict[str, Any] = {}
    for params, raw in props.get("EXDATE", ()):
        for one in raw.split(","):
            form = _When((params, one))
            if (form.kind, form.zone) != (start.kind, start.zone):
                raise _Unusual("an exclusion of another kind")  # syncd.app:icalKind
        tzid = params.get("TZID")
        dates = vDDDLists.from_ical(raw, tzid) if tzid else vDDDLists.from_ical(raw)
        for value in dates:
            overrides[_local_in(value, zone)] = {"excluded": True}
    if overrides:
        obj["recurrenceOverrides"] = overrides

    for name, key, table in (("CLASS", "privacy", CLASS), ("TRANSP", "freeBusyStatus", TRANSP)):
        prop = _one(props, name)
        if prop is not None:
            text = _text(prop[1])
            default = "busy" if name == "TRANSP" else text.lower()
            obj[key] = table.get(text.upper(), default)
    for name, key, high in (("PRIORITY", "priority", 9), ("SEQUENCE", "sequence", 2**31 - 1)):
        prop = _one(props, name)
        if prop is not None:
            obj[key] = _int(prop, high)
    for name, key in (("CREATED", "created"), ("LAST-MODIFIED", "updated")):
        prop = _one(props, name)
        if prop is not None:
            obj[key] = _utc(prop)

    keywords: dict[str, bool] = {}
    for _, raw in props.get("CATEGORIES", ()):
        parts = raw.split(",")
        if "\\" in raw or not all(parts):
            raise _Unusual(raw)
        keywords.update(dict.fromkeys(parts, True))
    if keywords:
        obj["keywords"] = keywords
    locations: dict[str, Any] = {}
    for params, raw in props.get("LOCATION", ()):
        name = _text(raw)
        lid = params.get("X-JMAP-ID") or _sub_id("l", name)
        locations[_unique(locations, lid)] = {"@type": "Location", "name": name}
    if locations:
        obj["locations"] = locations

    participants = _participants(props)
    if participants:
        obj["participants"] = participants
    organizer = _one(props, "ORGANIZER")
    organizer_cn = False
    if organizer is not None:
        obj["replyTo"] = {"imip": _text(organizer[1])}
        cn = organizer[0].get("CN")
        names = {p.get("name") for p in participants.values() if p["roles"].get("owner")}
        organizer_cn = bool(cn) and cn not in names  # kept: an attendee has another name

    alerts: dict[str, Any] = {}
    for alarm in event.alarms:
        alert, aid = _alert(alarm)
        alerts[_unique(alerts, aid)] = alert
    if alerts:
        obj["alerts"] = alerts
    if event.kept:
        obj[ICAL_COMPONENT] = {
            "@type": "ICalComponent",
            "name": "vevent",
            "properties": _jcal(event.kept),
        }
    left = _vendor_params(props, organizer_cn)
    if left:
        obj[VENDOR_PARAMS] = left
    return obj


def _recurrence_rule(raw: str, zone: Any, all_day: bool) -> dict[str, Any]:
    rule = vRecur.from_ical(_text(raw))
    if not rule.get("FREQ"):
        raise _Unusual(raw)
    _rrule(rule, None, False)  # as the general path tries it before it reads it
    return _rrule(rule, zone, all_day)


def _participants(props: dict[str, list[Prop]]) -> dict[str, Any]:
    """``ical_in._participants`` for attendees with plain parameters."""
    out: dict[str, Any] = {}
    by_address: dict[str, str] = {}
    for params, raw in props.get("ATTENDEE", ()):
        addr = _text(raw)
        p: dict[str, Any] = {"@type": "Participant", "sendTo": {"imip": addr}}
        if params.get("CN"):
            p["name"] = params["CN"]
        if params.get("EMAIL"):
            p["email"] = params["EMAIL"]
        elif addr.lower().startswith("mailto:"):
            p["email"] = addr[7:]
        p["roles"] = dict(
            ROLE.get(params.get("ROLE", "REQ-PARTICIPANT").upper(), {"attendee": True})
        )
        if params.get("PARTSTAT"):
            p["participationStatus"] = params["PARTSTAT"].lower()
        if params.get("RSVP", "").upper() == "TRUE":
            p["expectReply"] = True
        if params.get("CUTYPE"):
            p["kind"] = CUTYPE.get(params["CUTYPE"].upper(), params["CUTYPE"].lower())
        if params.get("LANGUAGE"):
            p["language"] = params["LANGUAGE"]
        if params.get("SCHEDULE-AGENT"):
            p["scheduleAgent"] = params["SCHEDULE-AGENT"].lower()
        pid = _unique(out, params.get("X-JMAP-ID") or _sub_id("p", addr.lower()))
        out[pid] = p
        by_address[addr.lower()] = pid
    organizer = _one(props, "ORGANIZER")
    if organizer is not None:
        params, raw = organizer
        addr = _text(raw)
        pid = by_address.get(addr.lower())  # type: ignore[assignment]
        if pid is None:
            p = {"@type": "Participant", "sendTo": {"imip": addr}, "roles": {"owner": True}}
            if params.get("CN"):
                p["name"] = params["CN"]
            if addr.lower().startswith("mailto:"):
                p["email"] = addr[7:]
            pid = _unique(out, params.get("X-JMAP-ID") or _sub_id("p", addr.lower()))
            out[pid] = p
        else:
            out[pid]["roles"]["owner"] = True
            if params.get("CN") and "name" not in out[pid]:
                out[pid]["name"] = params["CN"]
    return out


def _alert(comp: _Comp) -> tuple[dict[str, Any], str]:
    """``ical_in._alert`` for an alarm relative to the start or end, and its id."""
    alarm = comp.props
    trigger = _one(alarm, "TRIGGER")
    if trigger is None:
        raise _Unusual("no TRIGGER")
    params, raw = trigger
    t: dict[str, Any] = {"@type": "OffsetTrigger", "offset": duration_str(_duration(raw))}
    related = params.get("RELATED", "START").upper()
    if related not in ("START", "END"):
        raise _Unusual(related)  # kept as a parameter of the trigger
    if related == "END":
        t["relativeTo"] = "end"
    alert: dict[str, Any] = {"@type": "Alert", "trigger": t}
    action = _one(alarm, "ACTION")
    action_text = _text(action[1]).upper() if action is not None else "DISPLAY"
    if action_text not in ("DISPLAY", "EMAIL"):
        raise _Unusual(action_text)  # kept in iCalComponent: the general path
    if action_text == "EMAIL":
        alert["action"] = "email"
    if comp.kept:
        alert[ICAL_COMPONENT] = {
            "@type": "ICalComponent",
            "name": "valarm",
            "properties": _jcal(comp.kept),
        }
    own = [  # an X- property is icalendar's vUnknown: its raw text, escapes and all
        raw if name.startswith("X-") else _text(raw)
        for name in ("X-JMAP-ID", "UID")
        if name in alarm
        for _, raw in alarm[name]
    ]
    aid = next((text for text in own if text), None) or _sub_id("a", sorted(alert.items()))
    return alert, aid


__all__ = ["read_event"]
