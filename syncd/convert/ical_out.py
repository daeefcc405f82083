"""PURE: JSCalendar (RFC 8984) -> iCalendar (RFC 5545), deterministic.

The same objects always give the same bytes (DTSTAMP comes from ``updated``,
never from the clock), so the daemon can compare what it would write with
what is on disk.  ``previous`` is the last local version of the file: what
JSCalendar cannot carry (X- properties, X- parameters, unknown properties,
DTEND-vs-DURATION, custom VTIMEZONEs) is merged back from it.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
from icalendar import Calendar
from icalendar.cal import Component
from icalendar.parser import Parameters
from icalendar.parser.parameter import QUOTABLE, rfc_6868_escape
from icalendar.parser.parameter import RFC_6868_ESCAPE_REGEX as _RFC6868_SPECIAL
from icalendar.prop import (
    vCalAddress,
    vCategory,
    vDDDTypes,
    vDuration,
    vInline,
    vInt,
    vText,
    vUnknown,
)
from icalendar.timezone import TZP
from icalendar.timezone.tzid import tzid_from_tzinfo

from syncd.convert.ical_in import (
    CLASS,
    CUTYPE,
    ICAL_COMPONENT,
    MAPPED,
    STATUS_EVENT,
    STATUS_TASK,
    TRANSP,
    VENDOR_CALENDAR,
    VENDOR_EMPTY,
    VENDOR_KIND,
    VENDOR_PARAMS,
    VENDOR_PERIOD,
    VENDOR_RID_KIND,
    VENDOR_TODO_DURATION,
    prop_text,
)
from syncd.convert.values import (
    UTC_NAMES,
    get_zone,
    local_str,
    parse_duration,
    parse_local,
    parse_utc,
)
from syncd.convert.zonegen import vtimezone_over
from syncd.convert.zones import tzid_of, vtimezone

PRODID = "-//syncd//EN"
EPOCH_STAMP = datetime(1970, 1, 1, tzinfo=UTC)

_REV = lambda table: {v: k for k, v in table.items()}  # noqa: E731
REV_STATUS_EVENT = _REV(STATUS_EVENT)
REV_STATUS_TASK = _REV(STATUS_TASK)
REV_CLASS = _REV(CLASS)
REV_TRANSP = _REV(TRANSP)
REV_CUTYPE = _REV(CUTYPE)

# Patch keys that describe the series, not an instance.
SERIES_ONLY = {
    "recurrenceRules",
    "excludedRecurrenceRules",
    "recurrenceOverrides",
    "uid",
    "@type",
    "recurrenceId",
    "recurrenceIdTimeZone",
}


def jscal_to_ics(
    objs: list[dict[str, Any]], previous: bytes | None = None, *, lean: bool = True
) -> bytes:
    """The file for ``objs``; ``previous``: the file it replaces, whose extras come back.

    ``lean=False`` builds every property with icalendar's own types: the reference the
    lean path (``_Line``, used when there is no previous file) is tested against.  The
    lean path writes a common event directly (syncd.convert.ical_direct).
    """
    if lean and previous is not None and len(objs) == 1:
        over = _over_own_rendering(objs[0], previous)
        if over is not None:
            return over
    lean = lean and previous is None
    if lean and len(objs) == 1:
        direct = _direct_event_file(objs[0])
        if direct is not None:
            return direct
    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    prev_cal = _parse_calendar(previous)
    prev = _items_by_key(prev_cal)
    if prev_cal is not None:
        objs = [_restore_custom_zones(obj, prev_cal) for obj in objs]
    first: date | None = None
    last: date | None = None
    others = _calendar_extras(cal, objs)
    for obj in objs:
        for comp in object_to_components(obj, lean=lean):
            if prev:
                key = _comp_key(comp)
                if key in prev:
                    merge_back(comp, prev[key])
            cal.add_component(comp)
        first, last = _span_years(obj, first, last)
    cal.subcomponents.extend(others)  # after the items, where the file had them
    if prev_cal is not None and not any(obj.get(VENDOR_CALENDAR) for obj in objs):
        others_back = merge_calendar_back(cal, prev_cal)
        cal.subcomponents.extend(others_back)
    defined = {
        tzid_of(key, obj.get("timeZones")): tz
        for obj in objs
        for key, tz in sorted((obj.get("timeZones") or {}).items())
        if isinstance(tz, dict)
    }
    _add_timezones(cal, prev_cal, first, last, defined)
    return serialize(cal)


def _over_own_rendering(obj: dict[str, Any], previous: bytes) -> bytes | None:
    """The file for ``obj`` over ``previous`` when ``previous`` holds nothing the merge
    would bring back: what the general path gives in that case, 0.3 ms instead of 2 ms
    (a server change is mostly written over a file syncd wrote).  None: merge.

    Such a file is one the direct writer makes, byte for byte, from what the direct
    reader reads in it (so it has no line of its own: no X- property, no parameter the
    mapping drops, no alarm text but the generated one), whose VTIMEZONEs and calendar
    lines are the new file's too (the merge keeps a file's zones)."""
    from syncd.convert.ical_direct import event_file
    from syncd.convert.ical_read import read_event

    new = event_file(obj)
    if new is None:
        return None
    try:
        text = previous.decode()
    except UnicodeDecodeError:
        return None
    read = read_event(text)
    if not read or len(read) != 1:
        return None
    old = {k: v for k, v in read[0].items() if ":" not in k and k != ICAL_COMPONENT}
    if old.get("alerts"):
        texts = _alarm_texts(str(old.get("title") or ""), str(old.get("description") or ""))
        alerts = {aid: _without_generated(alert, texts) for aid, alert in old["alerts"].items()}
        if any(alert is None for alert in alerts.values()):
            return None  # an alarm with lines of its own
        old["alerts"] = alerts
    if event_file(old) != previous or _head(previous) != _head(new):
        return None
    return new


def _without_generated(alert: Any, texts: dict[tuple[str, str], str]) -> dict[str, Any] | None:
    """The alert as read, less the alarm texts written for its event (which the reader
    keeps as the alarm's own lines); None if it has any line of its own."""
    if not isinstance(alert, dict):
        return None
    ical = alert.get(ICAL_COMPONENT)
    if ical is None:
        return alert
    if not isinstance(ical, dict) or set(ical) - {"@type", "name", "properties"}:
        return None
    action = "EMAIL" if alert.get("action") == "email" else "DISPLAY"
    for prop in ical.get("properties") or []:
        if not isinstance(prop, list) or len(prop) != 4 or prop[1]:
            return None
        if texts.get((action, str(prop[0]).upper())) != prop[3]:
            return None
    return {k: v for k, v in alert.items() if k != ICAL_COMPONENT}


def _head(data: bytes) -> bytes:
    """A file's calendar lines and VTIMEZONEs: all before its first item."""
    at = data.find(b"BEGIN:VEVENT")
    return data if at < 0 else data[:at]


def _direct_event_file(obj: dict[str, Any]) -> bytes | None:
    from syncd.convert.ical_direct import event_file  # it builds on this module

    return event_file(obj)


def serialize(cal: Component) -> bytes:
    """Byte-for-byte what ``cal.to_ical()`` gives, about three times faster.

    icalendar folds every line character by character; almost no line needs folding, and
    a pass that writes 10,000 files spends most of its time here.  Generated VTIMEZONEs
    are shared between files and serialised once (see ``_generated_zone``).
    """
    lines: list[str] = []
    _serialize_into(cal, lines)
    return ("\r\n".join(line for line in lines if line) + "\r\n").encode("utf-8")


def _serialize_into(comp: Component, lines: list[str]) -> None:
    cached = getattr(comp, "_syncd_lines", None)
    if cached is not None:
        lines.extend(cached)
        return
    lines.append(f"BEGIN:{comp.name}")
    for name in comp.sorted_keys():
        values = comp[name]
        for value in values if isinstance(values, list) else (values,):
            lines.append(_content_line(name, value))
    for sub in comp.subcomponents:
        _serialize_into(sub, lines)
    lines.append(f"END:{comp.name}")


def _content_line(name: str, value: Any) -> str:
    if type(value) is _Line:
        text, params = value.text, value._params
    else:
        text = value.to_ical() if hasattr(value, "to_ical") else vText(value).to_ical()
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        params = getattr(value, "params", None)
    return content_line(name, text, _params_text(params) if params else "")


def content_line(name: str, text: str, ptext: str = "") -> str:
    """One property's line, folded: its name, its parameters' text, its value's text."""
    line = f"{name};{ptext}:{text}" if ptext else f"{name}:{text}"
    if len(line) > 74 or (not line.isascii() and len(line.encode("utf-8")) > 74):
        return fold(line)
    return line


def _params_text(params: Parameters | _Params) -> str:
    """``params.to_ical()``, byte for byte, by icalendar's own rules (sorted names, TZID=UTC
    left out, RFC 6868 escapes, quotes where needed) without its per-call overhead."""
    out = []
    for key, value in sorted(params.items()):
        if type(value) is not str:  # lists and typed values: icalendar's general path
            ptext = params.to_ical()
            return ptext.decode("utf-8") if isinstance(ptext, bytes) else ptext
        text = _param_text(key, value)
        if text:
            out.append(text)
    return ";".join(out)


@functools.lru_cache(maxsize=2048)
def _param_text(key: str, value: str) -> str:
    """One parameter's ``NAME=value`` ("" for TZID=UTC, which icalendar leaves out).
    Parameters repeat from line to line and event to event (a zone, a participation
    status, the same people): a big download's attendees spent a tenth of the direct
    path's time quoting the same values again."""
    if key == "TZID" and value == "UTC":
        return ""
    upper = key.upper()
    quote_also = Parameters.quote_also.get(upper)  # looked for in the unescaped value
    always = upper in Parameters.always_quoted or bool(
        quote_also and any(c in value for c in quote_also)
    )
    if _RFC6868_SPECIAL.search(value):
        value = rfc_6868_escape(value)
    value = value.replace('"', "'")
    if always or QUOTABLE.search(value):
        value = f'"{value}"'
    return f"{upper}={value}"


def missing_tzids(cal: Component) -> set[str]:
    """``Calendar.get_missing_tzids`` without icalendar's full property walk (a tenth of
    converting a big download went there)."""
    used: set[str] = set()
    have: set[str] = set()
    stack = [cal]
    while stack:
        comp = stack.pop()
        if comp.name == "VTIMEZONE":
            if "TZID" in comp:
                have.add(str(comp["TZID"]))
            continue
        for values in comp.values():
            for value in values if isinstance(values, list) else (values,):
                params = value._params if type(value) is _Line else getattr(value, "params", None)
                if params and params.get("TZID"):
                    used.add(params["TZID"])
        stack.extend(comp.subcomponents)
    return used - have - {"UTC"}


def fold(line: str) -> str:
    """icalendar's folding (74 octets a line, no line ending in a backslash or caret that
    escapes the next character), by slices instead of character by character.  Our own
    (icalendar's is the private ``icalendar.parser.string._foldline`` since 7.2, and
    13 times slower on a line that is not ASCII); tests/convert/test_serialize.py holds
    the two to the same output."""
    if not line.isascii():
        return _fold_utf8(line)
    chunks = []
    start = 0
    while len(line) - start > 74:
        end = start + 74
        if line[end - 1] in "\\^":
            end -= 1
        chunks.append(line[start:end])
        start = end
    chunks.append(line[start:])
    return "\r\n ".join(chunks)


def _fold_utf8(line: str) -> str:
    """``fold`` of a line that is not ASCII: 74 octets of UTF-8 a line, a character
    never split (a line ends before the lead byte of the one that does not fit)."""
    data = line.encode("utf-8")
    chunks = []
    start = 0
    while len(data) - start > 74:
        end = start + 74
        while data[end] & 0xC0 == 0x80:  # a continuation byte: back to its lead byte
            end -= 1
        if data[end - 1] in b"\\^" and end - 1 > start:
            end -= 1
        chunks.append(data[start:end])
        start = end
    chunks.append(data[start:])
    return b"\r\n ".join(chunks).decode("utf-8")


def icalendar_escape(text: str) -> str:
    """TEXT as icalendar's vText escapes it (its private ``_escape_char``): a literal
    backslash-N read as a line break first, then RFC 5545 3.3.11.  The direct writer
    (syncd.convert.ical_direct) must write what icalendar would; ``Text``/``escape_text``
    is what syncd writes where the two differ on purpose."""
    return (
        text.replace(r"\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", r"\;")
        .replace(",", r"\,")
        .replace("\r\n", r"\n")
        .replace("\n", r"\n")
        .replace("\r", r"\n")
    )


def _calendar_extras(cal: Calendar, objs: list[dict[str, Any]]) -> list[Component]:
    """What surrounded the items in the file: calendar properties and kept VTIMEZONEs
    (added to ``cal``), and the other components (returned, to follow the items)."""
    seen_props: set[str] = set()
    seen_comps: set[str] = set()
    zones, others = [], []
    for obj in objs:
        extras = obj.get(VENDOR_CALENDAR) or {}
        for name, params, text in extras.get("properties") or []:
            key = f"{name}\x00{params}\x00{text}"
            if key in seen_props:
                continue
            seen_props.add(key)
            cal.add(name, _raw(text, params), encode=False)
        for text in extras.get("components") or []:
            if text in seen_comps:
                continue
            seen_comps.add(text)
            try:
                comp = Component.from_ical(text)
            except Exception:  # noqa: BLE001 - it came from a file icalendar read
                continue
            (zones if comp.name == "VTIMEZONE" else others).append(comp)
    cal.subcomponents[0:0] = zones
    return others


# Rough length of one period of each frequency, in days, to bound a COUNT-limited series.
_PERIOD_DAYS = {"yearly": 366, "monthly": 31, "weekly": 7, "daily": 1}
_OPEN_ENDED_YEARS = 30  # an endless series: zones defined this far past its start


def _item_dates(obj: dict[str, Any]) -> list[date]:
    """Every date an item names: start, due, until, recurrence ids and overridden starts."""
    texts = [obj.get("start"), obj.get("due"), obj.get("recurrenceId")]
    texts += [rule.get("until") for rule in obj.get("recurrenceRules") or []]
    for key, patch in (obj.get("recurrenceOverrides") or {}).items():
        texts.append(key)
        if isinstance(patch, dict):
            texts += [patch.get("start"), patch.get("due")]
    out = []
    for text in texts:
        if isinstance(text, str):
            with contextlib.suppress(ValueError):
                out.append(parse_local(text).date())
    return out


def _series_end(obj: dict[str, Any], start: date) -> date:
    """The last day a series can reach: UNTIL, COUNT periods, or open-ended."""
    end = start
    for rule in obj.get("recurrenceRules") or []:
        if rule.get("until"):
            continue  # in _item_dates
        count = rule.get("count")
        if not count:
            return date(min(start.year + _OPEN_ENDED_YEARS, 9998), 1, 1)
        days = _PERIOD_DAYS.get(str(rule.get("frequency")), 1)
        span = timedelta(days=days * int(rule.get("interval") or 1) * int(count))
        end = max(end, start + min(span, timedelta(days=365 * _OPEN_ENDED_YEARS)))
    return end


def _span_years(
    obj: dict[str, Any], first: date | None, last: date | None
) -> tuple[date | None, date | None]:
    """The years VTIMEZONEs must cover: the item's whole span, not cut at its last
    instance or its first year (whole years, so generated zones are shared and cached)."""
    dates = _item_dates(obj)
    if not dates:
        return first, last
    low, high = min(dates), max(dates)
    start = obj.get("start") or obj.get("due")
    with contextlib.suppress(ValueError, TypeError):
        high = max(high, _series_end(obj, parse_local(start).date()))
    begin = date(max(low.year - 1, 1), 1, 1)
    end = date(min(high.year + 2, 9998), 1, 1)
    first = begin if first is None else min(first, begin)
    last = end if last is None else max(last, end)
    return first, last


def _restore_custom_zones(obj: dict[str, Any], prev_cal: Component) -> dict[str, Any]:
    """The file's own custom zone comes back where the server has its IANA stand-in.

    A zone no database knows goes up under the name of an IANA zone that keeps the same
    time (``zonematch``); when the server's version comes down, the file keeps writing
    its own TZID and definition instead of switching names under the user.
    """
    from syncd.convert.windows_zones import iana_name
    from syncd.convert.zonematch import item_year, rename_zones, stand_in_for

    renamed: dict[str, str] = {}
    for tz in prev_cal.walk("VTIMEZONE"):
        tzid = str(tz.get("TZID") or "")
        if not tzid or iana_name(tzid) is not None:
            continue
        stand_in = stand_in_for(tz.to_ical(), item_year(obj))
        if stand_in is not None:
            renamed[stand_in] = f"/{tzid}"
    return rename_zones(obj, renamed) if renamed else obj


def _add_timezones(
    cal: Calendar,
    previous: Component | None,
    first: date | None,
    last: date | None,
    defined: dict[str, dict[str, Any]] | None = None,
) -> None:
    """A zone the file already defined keeps its definition; others are generated.

    Keeping the old VTIMEZONE means a file comes back as it went in (a compact RRULE-based
    zone written by Thunderbird stays that way) and a custom zone never gets lost.
    """
    missing = missing_tzids(cal)
    if not missing:
        return
    known_custom: dict[str, Component] = {}
    if previous is not None:  # the previous file, parsed once by the caller
        for tz in previous.walk("VTIMEZONE"):
            known_custom[str(tz.get("TZID"))] = tz
    zones = []
    first = first or date(1970, 1, 1)
    last = last or date(2038, 1, 1)
    for tzid in sorted(missing):
        if tzid in known_custom and not _outgrown(known_custom[tzid], first, last):
            zones.append(known_custom[tzid])
            continue
        if tzid in (defined or {}):  # a custom zone the object defines (timeZones)
            with contextlib.suppress(Exception):
                zones.append(vtimezone(defined[tzid], lambda r: _rrule(r, None, False)))
                continue
        if get_zone(tzid) is not None:
            try:
                zones.append(_generated_zone(tzid, first, last))
                continue
            except Exception:  # noqa: BLE001 - the TZID stays, readers resolve it by name
                pass
    cal.subcomponents[0:0] = zones


_SPAN_COMMENT = re.compile(
    r"This timezone only works from (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d)\."
)


def _outgrown(zone: Component, first: date, last: date) -> bool:
    """Is ``zone`` one generated for a span (syncd's, icalendar's: its COMMENT names the
    span) that the item's dates have left?  Kept, by RFC 5545's rules its last onset
    would go on for ever (a summer date in winter time) for a reader that goes by the
    file's definition rather than the zone's name; one of a known name is made again
    for the new span.
    A zone without that comment (a client's own, compact or custom) is kept as it is."""
    if get_zone(str(zone.get("TZID"))) is None:
        return False
    comments = zone.get("COMMENT")
    for comment in comments if isinstance(comments, list) else [comments]:
        m = _SPAN_COMMENT.fullmatch(str(comment or ""))
        if m is None:
            continue
        try:
            since, until = date.fromisoformat(m[1]), date.fromisoformat(m[2])
        except ValueError:
            return False
        return not (since <= first and last <= until)
    return False


# icalendar's own provider is process-wide, and another library can switch it (khal's
# import calls ``icalendar.use_pytz()``, which moved the STANDARD onsets of a generated
# Europe/London an hour): the zones syncd writes come from zoneinfo, whoever else loaded.
_ZONEINFO = TZP("zoneinfo")


@functools.lru_cache(maxsize=256)
def _generated_zone(tzid: str, first: date, last: date) -> Component:
    """Generating a VTIMEZONE from zoneinfo costs 0.3-3 ms (syncd.convert.zonegen); a
    pass writing 10,000 files uses about fifty (zone, span) pairs.  The component is
    shared read-only between calendars (``to_ical`` does not change it)."""
    tz = _ZONEINFO.timezone(tzid)
    if tz is None:
        raise ValueError(f"unknown time zone {tzid}")
    zone = vtimezone_over(tz, tzid, first, last)
    lines: list[str] = []
    _serialize_into(zone, lines)
    zone._syncd_lines = tuple(lines)  # type: ignore[attr-defined]
    return zone


def _parse_calendar(previous: bytes | None) -> Component | None:
    if not previous:
        return None
    with contextlib.suppress(Exception):
        fast = _parse_sharing_zones(previous)
        if fast is not None:
            return fast
    try:
        return Calendar.from_ical(previous)
    except Exception:  # noqa: BLE001 - nothing to merge back from a broken file
        return None


_ZONE_BLOCK = re.compile(rb"^BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?\n", re.S | re.M)
_FIRST_ITEM = re.compile(rb"^BEGIN:(?!VCALENDAR|VTIMEZONE|STANDARD|DAYLIGHT)", re.M)
_HELD = b"X-SYNCD-HELD-ZONE"


def _parse_sharing_zones(previous: bytes) -> Calendar | None:
    """``Calendar.from_ical``, with each VTIMEZONE parsed once per process.

    Merging a server change back into its file parses the old file, and in a file syncd
    wrote 40 % of the lines are the VTIMEZONE that every file of that zone repeats.  The
    zones are cut out, parsed through a cache (read-only from then on, as the generated
    ones of ``_generated_zone`` are), and put back where they were.  Only for files whose
    zones all come before their items, so that icalendar meets each zone before the
    dates that name it, as in a whole parse; None otherwise (the caller parses it all).
    """
    held: list[bytes] = []

    def hold(match: re.Match[bytes]) -> bytes:
        held.append(match.group(0))
        eol = b"\r\n" if match.group(0).endswith(b"\r\n") else b"\n"
        return eol.join([b"BEGIN:" + _HELD, b"X-N:%d" % (len(held) - 1), b"END:" + _HELD, b""])

    first_item = _FIRST_ITEM.search(previous)
    blocks = list(_ZONE_BLOCK.finditer(previous))
    if not blocks or (first_item is not None and blocks[-1].start() > first_item.start()):
        return None
    zones = [_parsed_zone(block.group(0)) for block in blocks]  # before the items, as said
    rest = _ZONE_BLOCK.sub(hold, previous)
    cal = Calendar.from_ical(rest)
    put_back = 0
    for i, sub in enumerate(cal.subcomponents):
        if sub.name == _HELD.decode():
            cal.subcomponents[i] = zones[int(str(sub["X-N"]))]
            put_back += 1
    if put_back != len(zones):  # one was nested somewhere odd: not this way
        return None
    return cal


@functools.lru_cache(maxsize=256)
def _parsed_zone(text: bytes) -> Component:
    zone = Component.from_ical(text)
    if zone.name != "VTIMEZONE":
        raise ValueError("not a VTIMEZONE")
    lines: list[str] = []
    _serialize_into(zone, lines)
    zone._syncd_lines = tuple(lines)  # type: ignore[attr-defined]  # serialised once too
    return zone


def _items_by_key(cal: Component | None) -> dict[tuple[str, str], Component]:
    if cal is None:
        return {}
    out = {}
    for comp in cal.walk():
        if comp.name in ("VEVENT", "VTODO"):
            out[_comp_key(comp)] = comp
    return out


def _comp_key(comp: Component) -> tuple[str, str]:
    rid = comp.get("RECURRENCE-ID")
    rid_text = ""
    if rid is not None:
        value = rid.dt
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC)
        rid_text = value.isoformat()
    return (str(comp.get("UID")), rid_text)


def object_to_components(obj: dict[str, Any], *, lean: bool = False) -> list[Component]:
    zone_name = obj.get("timeZone")
    all_day = bool(obj.get("showWithoutTime"))
    orphan = bool(obj.get("recurrenceId"))
    if orphan:
        rid_zone = obj.get("recurrenceIdTimeZone", zone_name)
        master = _component(obj, (obj["recurrenceId"], rid_zone, all_day, None), lean)
    else:
        master = _component(obj, None, lean)
    comps = [master]
    overrides = obj.get("recurrenceOverrides") or {}
    kinds = obj.get(VENDOR_KIND) or {}
    for key in sorted(overrides):
        patch = overrides[key] or {}
        if patch.get("excluded"):
            kind = (kinds.get("EXDATE") or {}).get(key)
            _add_dt(master, "EXDATE", key, zone_name, all_day, kind)
        elif not patch and not orphan:
            kind = (kinds.get("RDATE") or {}).get(key)
            _add_dt(master, "RDATE", key, zone_name, all_day, kind)
        elif patch.get(VENDOR_PERIOD) and set(patch) <= {"duration", VENDOR_PERIOD}:
            kind = (kinds.get("RDATE") or {}).get(key)
            start = _dt(key, zone_name, all_day, kind)
            period = (start, parse_duration(patch.get("duration") or "PT0S"))
            _add_dt(master, "RDATE", key, zone_name, all_day, kind, period=period)
        else:
            instance = _apply_patch(obj, patch)
            instance.setdefault("start", key)
            rid = (key, zone_name, all_day, patch.get(VENDOR_RID_KIND))
            comps.append(_component(instance, rid, lean))
    return comps


def _apply_patch(master: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: v
        for k, v in master.items()
        if k not in SERIES_ONLY and ":" not in k and k != ICAL_COMPONENT
    }
    out["uid"] = master.get("uid")
    out["@type"] = master.get("@type")
    for path, value in patch.items():
        if path in (VENDOR_RID_KIND, VENDOR_PERIOD):
            continue  # about the override itself, not a property of the instance
        parts = path.split("/")
        target = out
        for p in parts[:-1]:
            nxt = target.get(p)
            target[p] = dict(nxt) if isinstance(nxt, dict) else {}
            target = target[p]
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value
    return out


def _dt(
    local: str, zone_name: str | None, all_day: bool, kind: str | None = None
) -> date | datetime:
    """A LocalDateTime as an iCalendar value of the item's kind, or of ``kind`` if given.

    ``kind`` (date, utc, floating, zoned, or a zone name) brings back a value whose kind differed from
    the item's start in the original file (a UTC EXDATE on a zoned series).
    """
    value = parse_local(local)
    zone = get_zone(zone_name)
    kind = kind or ("date" if all_day else "zoned")
    if kind == "date":
        return value.date()
    if kind == "floating":
        return value
    if kind == "utc":
        return value.replace(tzinfo=zone or UTC).astimezone(UTC)
    other = get_zone(kind) if kind != "zoned" else None
    if other is not None:  # the same instant, in the zone the original file named
        return value.replace(tzinfo=zone or other).astimezone(other)
    if zone is not None:
        return value.replace(tzinfo=zone)
    return value


def _add_dt(
    comp: Component,
    name: str,
    local: str,
    zone_name: str | None,
    all_day: bool,
    kind: str | None = None,
    period: tuple[Any, Any] | None = None,
) -> None:
    value = _dt(local, zone_name, all_day, kind)
    if period is not None:
        params = {"VALUE": "PERIOD"}
        key = getattr(period[0].tzinfo, "key", None) if isinstance(period[0], datetime) else None
        if key and key not in UTC_NAMES:
            params["TZID"] = key  # icalendar writes a period's zone nowhere
        comp.add(name, [period], parameters=params)
    elif name in ("EXDATE", "RDATE"):
        comp.add(name, [value])
    else:
        comp.add(name, value)
    custom = zone_name and get_zone(zone_name) is None
    if custom and isinstance(value, datetime) and value.tzinfo is None and kind != "floating":
        props = comp[name] if isinstance(comp[name], list) else [comp[name]]
        props[-1].params["TZID"] = tzid_of(zone_name)  # a custom zone: defined below


def _component(
    obj: dict[str, Any],
    instance: tuple[str, str | None, bool, str | None] | None,
    lean: bool = False,
) -> Component:
    is_task = obj.get("@type") == "Task"
    if lean:
        comp: Component = _LeanTodo() if is_task else _LeanEvent()
    else:
        comp = icalendar.Todo() if is_task else icalendar.Event()
    comp.add("UID", obj.get("uid"))
    stamp = obj.get("updated") or obj.get("created")
    comp.add("DTSTAMP", parse_utc(stamp) if stamp else EPOCH_STAMP)
    if instance is not None:
        rid_local, rid_zone, rid_all_day, rid_kind = instance
        _add_dt(comp, "RECURRENCE-ID", rid_local, rid_zone, rid_all_day, rid_kind)
    zone_name = obj.get("timeZone")
    all_day = bool(obj.get("showWithoutTime"))
    kinds = obj.get(VENDOR_KIND) if isinstance(obj.get(VENDOR_KIND), dict) else {}
    if obj.get("start"):
        _add_dt(comp, "DTSTART", obj["start"], zone_name, all_day, kinds.get("DTSTART"))
        if not is_task:
            dur = parse_duration(obj.get("duration") or ("P1D" if all_day else "PT0S"))
            if dur or all_day or "duration" in obj:  # an explicit zero length is a DTEND
                end = parse_local(obj["start"]) + dur
                _add_dt(comp, "DTEND", local_str(end), zone_name, all_day, kinds.get("DTEND"))
    if is_task and obj.get("due"):
        _add_dt(comp, "DUE", obj["due"], zone_name, all_day, kinds.get("DUE"))
    if obj.get("title") is not None:
        comp.add("SUMMARY", Text(obj["title"]))
        if obj.get("locale"):
            comp["SUMMARY"].params["LANGUAGE"] = obj["locale"]
    if obj.get("description") or (
        "description" in obj and "DESCRIPTION" in (obj.get(VENDOR_EMPTY) or [])
    ):
        comp.add("DESCRIPTION", Text(obj["description"]))
    if obj.get("created"):
        comp.add("CREATED", parse_utc(obj["created"]))
    if obj.get("updated"):
        comp.add("LAST-MODIFIED", parse_utc(obj["updated"]))
    if obj.get("sequence"):
        comp.add("SEQUENCE", int(obj["sequence"]))
    if is_task:
        if obj.get("progress"):
            comp.add("STATUS", REV_STATUS_TASK.get(obj["progress"], str(obj["progress"]).upper()))
        if obj.get("percentComplete") is not None:
            comp.add("PERCENT-COMPLETE", int(obj["percentComplete"]))
        if obj.get("progressUpdated") and obj.get("progress") == "completed":
            comp.add("COMPLETED", parse_utc(obj["progressUpdated"]))
        if obj.get("estimatedDuration"):
            name = "DURATION" if obj.get(VENDOR_TODO_DURATION) else "ESTIMATED-DURATION"
            comp.add(name, vDuration(parse_duration(obj["estimatedDuration"])))
    elif obj.get("status"):
        comp.add("STATUS", REV_STATUS_EVENT.get(obj["status"], str(obj["status"]).upper()))
    if obj.get("privacy"):
        comp.add("CLASS", REV_CLASS.get(obj["privacy"], str(obj["privacy"]).upper()))
    if obj.get("freeBusyStatus") and not is_task:
        comp.add("TRANSP", REV_TRANSP.get(obj["freeBusyStatus"], "OPAQUE"))
    if obj.get("priority") is not None and obj.get("priority") != 0:
        comp.add("PRIORITY", int(obj["priority"]))
    if obj.get("color"):
        comp.add("COLOR", obj["color"])
    for rule in obj.get("recurrenceRules") or []:
        comp.add("RRULE", _rrule(rule, zone_name, all_day))
    for rule in obj.get("excludedRecurrenceRules") or []:
        comp.add("EXRULE", _rrule(rule, zone_name, all_day))
    keywords = [k for k, v in sorted((obj.get("keywords") or {}).items()) if v]
    if keywords:
        comp.add("CATEGORIES", keywords)
    geo_done = False
    for lid, loc in sorted((obj.get("locations") or {}).items()):
        if loc.get("name") is not None:
            comp.add("LOCATION", Text(loc["name"]), parameters={"X-JMAP-ID": lid})
        geo = _geo_text(loc.get("coordinates"))
        if geo and not geo_done:  # iCalendar has one GEO: the first location's
            comp.add("GEO", _raw(geo, {} if loc.get("name") is not None else {"X-JMAP-ID": lid}))
            geo_done = True
    for vid, vl in sorted((obj.get("virtualLocations") or {}).items()):
        if not vl.get("uri"):
            continue
        params = {"VALUE": "URI", "X-JMAP-ID": vid}
        if vl.get("name"):
            params["LABEL"] = vl["name"]
        feats = [f.upper() for f, on in sorted((vl.get("features") or {}).items()) if on]
        if feats:
            params["FEATURE"] = ",".join(feats)
        comp.add("CONFERENCE", vl["uri"], parameters=params)
    for name, href, params in link_props(obj):
        comp.add(name, href, parameters=params)
    for ruid, rel in sorted((obj.get("relatedTo") or {}).items()):
        kinds = [k for k, on in sorted(((rel or {}).get("relation") or {}).items()) if on] or [
            "parent"
        ]
        for kind in kinds:
            params = {} if kind == "parent" else {"RELTYPE": kind.upper()}
            comp.add("RELATED-TO", ruid, parameters=params)
    _participants_out(comp, obj)
    for aid, alert in sorted((obj.get("alerts") or {}).items()):
        alarm = _alarm(aid, alert, obj, lean)
        if alarm is not None:
            comp.add_component(alarm)
    add_ical_component(comp, obj.get(ICAL_COMPONENT))
    restore_params(comp, obj.get(VENDOR_PARAMS) or [])
    return comp


def link_props(obj: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """URL (the link described by) and ATTACH properties: (name, href, parameters)."""
    out: list[tuple[str, Any, dict[str, Any]]] = []
    for kid, link in sorted((obj.get("links") or {}).items()):
        if not link.get("href"):
            continue
        if link.get("rel") == "describedby":
            out.append(("URL", link["href"], {"X-JMAP-ID": kid}))
        else:
            params = {"X-JMAP-ID": kid}
            if link.get("contentType"):
                params["FMTTYPE"] = link["contentType"]
            out.append(("ATTACH", link["href"], params))
    return out


def add_ical_component(comp: Component, ical: Any) -> None:
    """Put back the unconverted properties and components an ICalComponent carries."""
    if not isinstance(ical, dict):
        return
    for prop in ical.get("properties") or []:
        _add_jcal_property(comp, prop)
    for sub in ical.get("components") or []:
        with contextlib.suppress(Exception):  # it came from a file icalendar read
            comp.add_component(_jcal_component(sub))


def _add_jcal_property(comp: Component, prop: Any) -> None:
    name, params, _type, value = prop[0], prop[1], prop[2], prop[3]
    params = {str(k).upper(): v for k, v in (params or {}).items()}
    comp.add(str(name).upper(), _raw(str(value), params), encode=False)


def _jcal_component(data: list[Any]) -> Component:
    name, props, subs = data
    comp = Component()
    comp.name = str(name).upper()
    for prop in props or []:
        _add_jcal_property(comp, prop)
    for sub in subs or []:
        comp.add_component(_jcal_component(sub))
    return comp


def restore_params(comp: Component, kept: list[list[Any]]) -> None:
    """Put parameters the mapping does not carry back on their properties.

    A property is found by name and value text, or by name alone when there is one.
    """
    counts: dict[str, int] = {}
    for name, _text, _params in kept:
        counts[name] = counts.get(name, 0) + 1
    for name, text, params in kept:
        props = comp.get(name)
        if props is None:
            continue
        props = props if isinstance(props, list) else [props]
        target = next((p for p in props if prop_text(p) == text), None)
        if target is None and len(props) == 1 and counts[name] == 1:
            target = props[0]
        if target is None or not hasattr(target, "params"):
            continue
        for key, value in params.items():
            target.params[key] = value  # the original's word wins over what the mapping wrote


class _Line:
    """A property made without icalendar's typing machinery: its value's text, and its
    parameters (created when first asked for).

    Building a file's properties through ``Component.add`` (type lookup, a typed value,
    a Parameters dict, time zone inference for every date) was half of converting a big
    download.  ``_lean_line`` makes the same text for the common value types by
    icalendar's own rules; a file made this way is byte for byte the one icalendar's
    types make (tests/convert/test_lean.py).  Used only for a file made from scratch:
    merge-back reads typed values of the previous file, never these.
    """

    __slots__ = ("text", "_params")

    def __init__(self, text: str, params: Parameters | None = None) -> None:
        self.text = text
        self._params = params

    @property
    def params(self) -> Parameters:
        if self._params is None:
            self._params = _Params()
        return self._params  # type: ignore[return-value]

    def to_ical(self) -> bytes:
        return self.text.encode("utf-8")


class _Params(dict):  # type: ignore[type-arg]
    """The parameters of a ``_Line``: what ``Parameters`` holds for them (names in upper
    case), at the cost of a dict: a big download makes one for nearly every date."""

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key.upper(), value)

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self, key.upper())

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key.upper() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.upper(), default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return dict.setdefault(self, key.upper(), default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def to_ical(self, sorted: bool = True) -> bytes:  # noqa: A002 - Parameters' own name
        return Parameters(self).to_ical(sorted=sorted)  # type: ignore[no-any-return]


class _LeanAdd:
    """``Component.add`` that keeps common values as ``_Line``s; others as icalendar does.

    Also the component's own lookups without icalendar's per-call key conversion (str
    or bytes, then upper case): every name here is a str, and building a file asks
    each name several times."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if type(key) is not str:
            super().__setitem__(key, value)  # type: ignore[misc]
            return
        OrderedDict.__setitem__(self, key.upper(), value)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        if type(key) is not str:
            return super().__getitem__(key)  # type: ignore[misc]
        return OrderedDict.__getitem__(self, key.upper())  # type: ignore[arg-type]

    def __contains__(self, key: Any) -> bool:
        if type(key) is not str:
            return super().__contains__(key)  # type: ignore[misc,no-any-return]
        return OrderedDict.__contains__(self, key.upper())  # type: ignore[arg-type]

    def get(self, key: Any, default: Any = None) -> Any:
        if type(key) is not str:
            return super().get(key, default)  # type: ignore[misc]
        return OrderedDict.get(self, key.upper(), default)  # type: ignore[arg-type]

    def add(self, name: str, value: Any, parameters: Any = None, encode: bool = True) -> None:
        line = _lean_line(name, value, parameters) if encode else None
        if line is None:
            super().add(name, value, parameters=parameters, encode=encode)  # type: ignore[misc]
            return
        new: Any = line
        if name in self:  # type: ignore[operator]
            old = self[name]  # type: ignore[index]
            if isinstance(old, list):
                old.append(line)
                new = old
            else:
                new = [old, line]
        self[name] = new  # type: ignore[index]


class _LeanEvent(_LeanAdd, icalendar.Event):
    pass


class _LeanTodo(_LeanAdd, icalendar.Todo):
    pass


class _LeanAlarm(_LeanAdd, icalendar.Alarm):
    pass


# Component.add turns these into UTC first (RFC 5545 requires it).
_FORCED_UTC = {"DTSTAMP", "CREATED", "LAST-MODIFIED"}


@functools.cache
def _value_class(name: str) -> type:
    return Component.types_factory.for_property(name, None)  # type: ignore[no-any-return]


@functools.cache
def _tzid(tz: Any) -> str | None:
    """icalendar's TZID for a tzinfo: a ZoneInfo's key, or "UTC" for the zones it counts
    as UTC (Etc/UTC, but also Africa/Abidjan and others of offset 0 all year)."""
    return tzid_from_tzinfo(tz)


@functools.lru_cache(maxsize=512)
def _duration_text(td: timedelta) -> str:
    return vDuration(td).to_ical().decode("ascii")


def _lean_line(name: str, value: Any, parameters: Any) -> _Line | None:
    """The ``_Line`` icalendar's ``add`` would write for this value, or None where the
    value is not one of the common kinds (icalendar then does it)."""
    if parameters and (
        "VALUE" in parameters or any(type(v) is not str for v in parameters.values())
    ):
        return None
    kind = _value_class(name)
    t = type(value)
    params: Parameters | None = None
    if t is Text:
        text = value.to_ical().decode("utf-8")
    elif t is str:
        if kind is vText:
            text = icalendar_escape(value)
        elif kind is vUnknown or kind is vCalAddress and "\r" not in value and "\n" not in value:
            text = value
        else:
            return None
    elif t is int and kind is vInt:
        text = str(value)
    elif t is datetime and kind is vDDDTypes:
        text = (
            f"{value.year:04}{value.month:02}{value.day:02}"
            f"T{value.hour:02}{value.minute:02}{value.second:02}"
        )
        if value.tzinfo is None:
            if name in _FORCED_UTC:
                return None
        else:
            tzid = _tzid(value.tzinfo)
            if tzid is None or (name in _FORCED_UTC and tzid != "UTC"):
                return None
            if tzid == "UTC":
                text += "Z"
            else:
                params = _Params(TZID=tzid)
    elif t is date and kind is vDDDTypes:
        text = f"{value.year:04}{value.month:02}{value.day:02}"
        params = _Params(VALUE="DATE")
    elif t is timedelta and kind is vDDDTypes:
        text = _duration_text(value)
    elif t is list and kind is vCategory and all(type(c) is str for c in value):
        text = ",".join(icalendar_escape(c) for c in value)
    else:
        return None
    if parameters:
        if params is None:
            params = _Params()
        for key, item in parameters.items():
            params[key] = item
    return _Line(text, params)


class Text(vText):
    """TEXT escaped by RFC 5545 3.3.11 alone: icalendar's escaping first turns a literal
    backslash-N into a line break, so a title "C:\\New" would come back changed."""

    def to_ical(self) -> bytes:
        return escape_text(str(self)).encode(self.encoding)


def escape_text(text: str) -> str:
    """TEXT as RFC 5545 3.3.11 escapes it (``Text``)."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", r"\;")
        .replace(",", r"\,")
        .replace("\r\n", r"\n")
        .replace("\n", r"\n")
        .replace("\r", r"\n")
    )


def _geo_text(uri: Any) -> str | None:
    """A geo: URI (RFC 5870) as GEO's "lat;lon" text, the numbers as they were."""
    if not isinstance(uri, str) or not uri.lower().startswith("geo:"):
        return None
    parts = uri[4:].split(";")[0].split(",")
    if len(parts) < 2:
        return None
    try:
        float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return f"{parts[0]};{parts[1]}"


def _raw(text: str, params: dict[str, str]) -> Any:
    """A property value that is already in iCalendar text form (kept byte for byte)."""
    value = vInline(text)
    value.params = Parameters(params or {})
    return value


def _rrule(rule: dict[str, Any], zone_name: str | None, all_day: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"FREQ": str(rule.get("frequency", "daily")).upper()}
    rscale, skip = rule.get("rscale"), rule.get("skip")
    if (rscale and rscale != "gregorian") or (skip and skip != "omit"):
        out["RSCALE"] = (rscale or "gregorian").upper()  # SKIP needs RSCALE (RFC 7529)
    if skip and skip != "omit":
        out["SKIP"] = skip.upper()
    if rule.get("interval") and rule["interval"] != 1:
        out["INTERVAL"] = rule["interval"]
    if rule.get("count"):
        out["COUNT"] = rule["count"]
    if rule.get("until"):
        # UNTIL is UTC for a zoned start, a date for an all-day one (RFC 5545 3.3.10),
        # unless the original file said otherwise.
        kind = rule.get(VENDOR_KIND) or ("date" if all_day else "utc")
        if kind == "utc" and get_zone(zone_name) is None:
            kind = "floating" if not rule.get(VENDOR_KIND) else "utc"
        out["UNTIL"] = _dt(rule["until"], zone_name, all_day, kind)
    if rule.get("byDay"):
        out["BYDAY"] = [
            f"{d['nthOfPeriod'] if d.get('nthOfPeriod') else ''}{d['day'].upper()}"
            for d in rule["byDay"]
        ]
    if rule.get("byMonth"):
        out["BYMONTH"] = [m for m in rule["byMonth"]]
    for key, ical in (
        ("byMonthDay", "BYMONTHDAY"),
        ("byYearDay", "BYYEARDAY"),
        ("byWeekNo", "BYWEEKNO"),
        ("byHour", "BYHOUR"),
        ("byMinute", "BYMINUTE"),
        ("bySecond", "BYSECOND"),
        ("bySetPosition", "BYSETPOS"),
    ):
        if rule.get(key):
            out[ical] = list(rule[key])
    if rule.get("firstDayOfWeek") and rule["firstDayOfWeek"] != "mo":
        out["WKST"] = rule["firstDayOfWeek"].upper()
    return out


def _address(p: dict[str, Any]) -> str | None:
    send = p.get("sendTo") or {}
    if send.get("imip"):
        return str(send["imip"])
    if send:
        return str(next(iter(sorted(send.values()))))
    if p.get("email"):
        return f"mailto:{p['email']}"
    return None


def _participants_out(comp: Component, obj: dict[str, Any]) -> None:
    for name, address, params in participant_props(obj):
        comp.add(name, address, parameters=params or None)  # type: ignore[arg-type]  # lists too


def participant_props(obj: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """ORGANIZER and ATTENDEE properties: (name, address, parameters), in file order."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    parts = obj.get("participants") or {}
    addresses = {pid: _address(p) for pid, p in parts.items()}
    organizer_done = False
    for pid, p in sorted(parts.items()):
        addr = addresses[pid]
        if addr is None:
            continue
        roles = {r for r, on in (p.get("roles") or {}).items() if on}
        if "owner" in roles and not organizer_done:
            params = {"X-JMAP-ID": pid}
            if p.get("name"):
                params["CN"] = p["name"]
            out.append(("ORGANIZER", addr, params))
            organizer_done = True
            if roles <= {"owner"}:
                continue
        params: dict[str, Any] = {"X-JMAP-ID": pid}
        if p.get("name"):
            params["CN"] = p["name"]
        if "chair" in roles:
            params["ROLE"] = "CHAIR"
        elif "optional" in roles:
            params["ROLE"] = "OPT-PARTICIPANT"
        elif "informational" in roles and "attendee" not in roles:
            params["ROLE"] = "NON-PARTICIPANT"
        else:
            params["ROLE"] = "REQ-PARTICIPANT"
        if p.get("participationStatus"):
            params["PARTSTAT"] = str(p["participationStatus"]).upper()
        if p.get("expectReply"):
            params["RSVP"] = "TRUE"
        if p.get("kind"):
            params["CUTYPE"] = REV_CUTYPE.get(p["kind"], str(p["kind"]).upper())
        if p.get("sentBy"):
            sent_by = str(p["sentBy"])
            params["SENT-BY"] = sent_by if ":" in sent_by else f"mailto:{sent_by}"
        if p.get("language"):
            params["LANGUAGE"] = p["language"]
        if p.get("scheduleAgent"):
            params["SCHEDULE-AGENT"] = str(p["scheduleAgent"]).upper()
        if p.get("scheduleStatus"):
            params["SCHEDULE-STATUS"] = ",".join(p["scheduleStatus"])
        if p.get("email") and f"mailto:{p['email']}".lower() != addr.lower():
            params["EMAIL"] = p["email"]
        for key, param in (
            ("delegatedTo", "DELEGATED-TO"),
            ("delegatedFrom", "DELEGATED-FROM"),
            ("memberOf", "MEMBER"),
        ):
            ids = [k for k, on in sorted((p.get(key) or {}).items()) if on]
            if ids:
                params[param] = [addresses.get(i) or i for i in ids]
        out.append(("ATTENDEE", addr, params))
    reply = (obj.get("replyTo") or {}).get("imip")
    if reply and not organizer_done:
        out.append(("ORGANIZER", reply, {}))
    return out


def _alarm(
    aid: str, alert: dict[str, Any], obj: dict[str, Any], lean: bool = False
) -> Component | None:
    trigger = alert.get("trigger") or {}
    alarm = _LeanAlarm() if lean else icalendar.Alarm()
    alarm.add("X-JMAP-ID", aid)
    if trigger.get("@type") == "AbsoluteTrigger" and trigger.get("when"):
        alarm.add("TRIGGER", parse_utc(trigger["when"]))
    elif trigger.get("offset") is not None or trigger.get("@type") == "OffsetTrigger":
        params = {"RELATED": "END"} if trigger.get("relativeTo") == "end" else {}
        alarm.add("TRIGGER", parse_duration(trigger.get("offset") or "PT0S"), parameters=params)
    else:
        return None
    ical = alert.get(ICAL_COMPONENT) if isinstance(alert.get(ICAL_COMPONENT), dict) else {}
    have = {str(p[0]).upper() for p in ical.get("properties") or []}
    generated: list[tuple[str, Any]] = []
    if alert.get("action") == "email":
        generated.append(("ACTION", "EMAIL"))
        generated.append(("SUMMARY", obj.get("title") or ""))
        generated.append(("DESCRIPTION", obj.get("description") or obj.get("title") or "Reminder"))
    else:
        generated.append(("ACTION", "DISPLAY"))
        generated.append(("DESCRIPTION", obj.get("title") or "Reminder"))
    for name, value in generated:
        if name not in have:
            alarm.add(name, Text(value) if name in ("SUMMARY", "DESCRIPTION") else value)
    if alert.get("acknowledged"):
        alarm.add("ACKNOWLEDGED", parse_utc(alert["acknowledged"]))
    add_ical_component(alarm, ical)
    converted = (ical.get("convertedProperties") or {}).get("trigger") or {}
    for key, value in (converted.get("parameters") or {}).items():
        alarm["TRIGGER"].params.setdefault(str(key).upper(), value)
    return alarm


def merge_calendar_back(cal: Component, old: Component) -> list[Component]:
    """What surrounded the item in the old file (X-WR-CALNAME, METHOD, a VJOURNAL) when
    the new version comes from a server that kept none of it; returns the components."""
    present = {name for name, _ in cal.property_items(recursive=False)}
    for name, value in old.property_items(recursive=False):
        if name not in ("BEGIN", "END", "PRODID", "VERSION") and name not in present:
            cal.add(name, value, encode=False)
    return [c for c in old.subcomponents if c.name not in ("VEVENT", "VTODO", "VTIMEZONE")]


def merge_back(comp: Component, old: Component) -> None:
    """Bring back from the old local component what JSCalendar could not carry."""
    present = {name for name, _ in comp.property_items(recursive=False)}
    for name, value in old.property_items(recursive=False):
        if name in ("BEGIN", "END") or name in present:
            continue
        if name in MAPPED and not (name in ("DESCRIPTION", "SUMMARY") and not str(value)):
            continue  # an empty text is what "none" looks like on the server: keep the line
        comp.add(name, value, encode=False)
    if "DURATION" in old and "DTEND" in comp and "DTSTART" in comp and comp.name == "VEVENT":
        start, end = comp["DTSTART"].dt, comp["DTEND"].dt
        del comp["DTEND"]
        comp.add("DURATION", _wall_span(start, end))
    _merge_params(comp, old, "ATTENDEE")
    _merge_params(comp, old, "ORGANIZER")
    _merge_alarms(comp, old)


# VALARM properties JSCalendar has no place for: the old file's values win.
ALARM_KEPT = {"DESCRIPTION", "SUMMARY", "ATTENDEE", "ATTACH", "REPEAT", "DURATION", "UID"}


def _merge_alarms(comp: Component, old: Component) -> None:
    """Match each alarm to its old self by X-JMAP-ID, else by trigger, and keep its text."""
    old_alarms = [a for a in old.subcomponents if a.name == "VALARM"]
    by_id = {str(a["X-JMAP-ID"]): a for a in old_alarms if "X-JMAP-ID" in a}
    by_trigger: dict[str, Component] = {}
    for a in old_alarms:
        by_trigger.setdefault(_trigger_key(a), a)
    generated_before = _alarm_texts(
        str(old.get("SUMMARY") or ""), str(old.get("DESCRIPTION") or "")
    )
    for alarm in comp.subcomponents:
        if alarm.name != "VALARM":
            continue
        prev = by_id.get(str(alarm.get("X-JMAP-ID"))) or by_trigger.get(_trigger_key(alarm))
        if prev is None:
            continue
        have = {n for n, _ in alarm.property_items(recursive=False)}
        action = str(prev.get("ACTION", "DISPLAY")).upper()
        for name, value in prev.property_items(recursive=False):
            if name in ("BEGIN", "END"):
                continue
            if name in ("DESCRIPTION", "SUMMARY") and str(value) == generated_before.get(
                (action, name)
            ):
                continue  # the old event's own text, as written for it: the new one's now
            if name in ALARM_KEPT:
                alarm.pop(name, None)
                alarm.add(name, value, encode=False)
            elif name.startswith("X-") and name not in have:
                alarm.add(name, value, encode=False)


def _alarm_texts(title: str, description: str) -> dict[tuple[str, str], str]:
    """The alarm texts ``_alarm`` writes for an event of this title and description:
    (ACTION, property) -> text.  An old alarm whose text is one of these was not given
    its own (by the user, by a client): it follows the event's title, and is not kept."""
    return {
        ("DISPLAY", "DESCRIPTION"): title or "Reminder",
        ("EMAIL", "SUMMARY"): title,
        ("EMAIL", "DESCRIPTION"): description or title or "Reminder",
    }


def _trigger_key(alarm: Component) -> str:
    trigger = alarm.get("TRIGGER")
    if trigger is None:
        return ""
    related = str(trigger.params.get("RELATED", "START")).upper()
    return f"{related}:{prop_text(trigger)}"


def _wall_span(start: date | datetime, end: date | datetime) -> timedelta:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return end.replace(tzinfo=None) - start.replace(tzinfo=None)
    return end - start  # type: ignore[operator]


def _merge_params(comp: Component, old: Component, name: str) -> None:
    new_props = comp.get(name)
    old_props = old.get(name)
    if new_props is None or old_props is None:
        return
    new_list = new_props if isinstance(new_props, list) else [new_props]
    old_by_addr = {
        str(p).lower(): p for p in (old_props if isinstance(old_props, list) else [old_props])
    }
    for prop in new_list:
        prev = old_by_addr.get(str(prop).lower())
        if prev is None:
            continue
        for key, value in prev.params.items():
            if (
                key.upper().startswith("X-")
                and key.upper() != "X-JMAP-ID"
                and key not in prop.params
            ):
                prop.params[key] = value
