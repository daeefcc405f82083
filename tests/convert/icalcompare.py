"""A semantic iCalendar comparator: what of calendar A is missing or changed in calendar B.

Used by the round-trip tests and by ``contrib/bench/fidelity.py``.  It compares
meaning, not bytes:

- date-times are compared as instants in UTC (a TZID renamed from Outlook's
  "W. Europe Standard Time" to "Europe/Berlin" is no loss), but their kind is
  kept: floating, UTC, zoned and date values must stay what they were (a London
  series turned into UTC is a loss);
- RRULE parts in any order, BY* lists as sets, defaults (INTERVAL=1, WKST=MO,
  RSCALE=GREGORIAN, SKIP=OMIT) equal to absent, UNTIL as an instant of its kind;
- folded lines and escaping do not matter (values are parsed);
- DTEND and DURATION are the same thing: the end instant;
- parameter names and enumerated values (ROLE, PARTSTAT, ...) in any case,
  parameters at their default equal to absent, VALUE= ignored (the value's type
  is compared instead), TZID compared through the instant;
- DTSTAMP and PRODID (and VERSION) are volatile and ignored; properties at their
  default value (CLASS:PUBLIC, TRANSP:OPAQUE, PRIORITY:0, SEQUENCE:0) equal absent;
- EXDATE, RDATE and CATEGORIES are sets across all their lines.

Properties added by B are not losses.  The unit of account is the
(component, property) pair: each property name of each component of A is one
pair, preserved when every value of it (with its parameters) is found in B.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
from icalendar.cal import Component

ITEMS = ("VEVENT", "VTODO", "VJOURNAL")
IGNORED = {"DTSTAMP", "PRODID", "VERSION", "BEGIN", "END"}
DATETIME_PROPS = {
    "DTSTART",
    "DTEND",
    "DUE",
    "RECURRENCE-ID",
    "COMPLETED",
    "CREATED",
    "LAST-MODIFIED",
    "ACKNOWLEDGED",
}
SET_PROPS = {"EXDATE", "RDATE", "CATEGORIES", "RESOURCES"}
ENUM_VALUES = {"STATUS", "CLASS", "TRANSP", "ACTION", "METHOD", "CALSCALE"}
INT_PROPS = {"PRIORITY", "SEQUENCE", "PERCENT-COMPLETE", "REPEAT"}
ADDRESS_PROPS = {"ATTENDEE", "ORGANIZER"}
TEXT_PROPS = {"SUMMARY", "DESCRIPTION", "LOCATION", "COMMENT", "CONTACT", "UID", "COLOR"}
DEFAULT_VALUES = {
    "CLASS": "PUBLIC",
    "TRANSP": "OPAQUE",
    "PRIORITY": 0,
    "SEQUENCE": 0,
    "CALSCALE": "GREGORIAN",
}
ENUM_PARAMS = {
    "ROLE",
    "PARTSTAT",
    "CUTYPE",
    "RSVP",
    "RELATED",
    "RELTYPE",
    "FBTYPE",
    "ENCODING",
    "SCHEDULE-AGENT",
    "SCHEDULE-FORCE-SEND",
    "DISPLAY",
    "FEATURE",
}
DEFAULT_PARAMS = {
    "ROLE": "REQ-PARTICIPANT",
    "PARTSTAT": "NEEDS-ACTION",
    "RSVP": "FALSE",
    "CUTYPE": "INDIVIDUAL",
    "RELTYPE": "PARENT",
    "RELATED": "START",
}
ADDRESS_PARAMS = {"DELEGATED-TO", "DELEGATED-FROM", "MEMBER", "SENT-BY"}
IGNORED_PARAMS = {"VALUE", "TZID"}
RRULE_DEFAULTS = {"INTERVAL": "1", "WKST": "MO", "RSCALE": "GREGORIAN", "SKIP": "OMIT"}


@dataclass(frozen=True)
class Loss:
    component: str  # e.g. "VEVENT uid@x" or "VEVENT uid@x RID=2024-...Z / VALARM 1"
    prop: str  # the iCalendar property name
    kind: str  # missing | value | param | kind | count | component
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.component}: {self.prop}: {self.kind} {self.detail}".rstrip()


@dataclass
class Report:
    pairs: int = 0  # (component, property) pairs in A
    losses: list[Loss] = field(default_factory=list)
    # pairs by (item type, "X-" or ""): VTODO and X- property figures of the benchmark
    pair_kinds: Counter = field(default_factory=Counter)

    @property
    def lost_pairs(self) -> int:
        return len({(loss.component, loss.prop) for loss in self.losses})

    @property
    def preserved(self) -> int:
        return self.pairs - self.lost_pairs

    def __bool__(self) -> bool:  # truthy when something was lost
        return bool(self.losses)

    def __str__(self) -> str:
        return "\n".join(map(str, self.losses)) or "no loss"


# ---------------------------------------------------------------------------
# normalisation


def _addr(value: str) -> str:
    value = str(value).strip().strip('"')
    if ":" in value:
        scheme, rest = value.split(":", 1)
        return f"{scheme.lower()}:{rest}"
    return value


def _instant(value: Any) -> Any:
    """A date, or a datetime as ('utc'|'zoned'|'floating', comparable)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return ("floating", value.replace(microsecond=0).isoformat())
        kind = "utc" if value.utcoffset() == timedelta(0) and _is_utc(value) else "zoned"
        return (kind, value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(value, date):
        return ("date", value.isoformat())
    if isinstance(value, timedelta):
        return ("duration", value.total_seconds())
    if isinstance(value, tuple):  # PERIOD
        start, end = value
        if isinstance(end, timedelta):
            end = start + end
        return ("period", _instant(start), _instant(end))
    return ("other", str(value))


def _is_utc(value: datetime) -> bool:
    tz = value.tzinfo
    if tz is UTC:
        return True
    key = str(getattr(tz, "key", "") or getattr(tz, "zone", "") or "")
    return key in ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Universal", "Etc/Universal")


def _params(prop: Any) -> frozenset[tuple[str, str]]:
    out = set()
    for key, value in (getattr(prop, "params", None) or {}).items():
        k = key.upper()
        if k in IGNORED_PARAMS:
            continue
        values = value if isinstance(value, list) else [value]
        if k in ADDRESS_PARAMS or k in ENUM_PARAMS:
            # multi-valued: "VIDEO,AUDIO" quoted as one string is the set {AUDIO, VIDEO}
            values = [part for v in values for part in str(v).split(",")]
        if k in ADDRESS_PARAMS:
            text = ",".join(sorted(_addr(v) for v in values))
        elif k in ENUM_PARAMS:
            text = ",".join(sorted(str(v).upper() for v in values))
        else:
            text = ",".join(str(v) for v in values)
        if DEFAULT_PARAMS.get(k) == text:
            continue
        out.add((k, text))
    return frozenset(out)


def _rrule(prop: Any) -> tuple:
    parts = []
    for key, values in prop.items():
        k = key.upper()
        vals = values if isinstance(values, list) else [values]
        if k == "UNTIL":
            parts.append((k, tuple(_instant(v) for v in vals)))
            continue
        vals = [str(getattr(v, "value", v)).upper() for v in vals]
        if k == "BYDAY":
            vals = [v.lstrip("+") for v in vals]
        if k.startswith("BY"):
            vals = sorted(str(int(v)) if v.lstrip("+-").isdigit() else v for v in vals)
        text = tuple(vals)
        if len(text) == 1 and RRULE_DEFAULTS.get(k) == text[0]:
            continue
        parts.append((k, text))
    return tuple(sorted(parts))


def _value(name: str, prop: Any, comp: Component) -> Any:
    try:
        return _typed_value(name, prop, comp)
    except Exception:  # noqa: BLE001 - a broken property (icalendar 7 parses lazily): its text
        return ("text", _text(prop))


def _text(prop: Any) -> str:
    """A property's iCalendar text (some icalendar types, e.g. vGeo, return str)."""
    try:
        text = prop.to_ical()
    except Exception:  # noqa: BLE001
        return str(prop)
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _typed_value(name: str, prop: Any, comp: Component) -> Any:
    if name in ("RRULE", "EXRULE"):
        return ("recur", _rrule(prop))
    if name in DATETIME_PROPS:
        return _instant(getattr(prop, "dt", prop))
    if name == "TRIGGER":
        return _instant(prop.dt)
    if name in ("DURATION", "ESTIMATED-DURATION"):
        return _instant(prop.dt)
    if name in INT_PROPS:
        try:
            return int(prop)
        except (TypeError, ValueError):
            return str(prop)
    if name in ENUM_VALUES:
        return str(prop).upper()
    if name in ADDRESS_PROPS:
        return _addr(str(prop))
    if name in TEXT_PROPS:
        return str(prop).replace("\r\n", "\n")
    if hasattr(prop, "to_ical"):
        return _text(prop)
    return str(prop)


def _end(comp: Component) -> Any | None:
    """The end instant of a component from DTEND/DUE or DTSTART+DURATION."""
    start = comp.get("DTSTART")
    if "DTEND" in comp:
        return _instant(comp["DTEND"].dt)
    if "DURATION" in comp and start is not None and comp.name == "VEVENT":
        s, dur = start.dt, comp["DURATION"].dt
        if isinstance(s, datetime):
            # days/weeks are nominal (wall clock), the rest exact (RFC 5545 3.3.6)
            nominal = timedelta(days=dur.days)
            exact = dur - nominal
            wall = s.replace(tzinfo=None) + nominal
            local = wall.replace(tzinfo=s.tzinfo)
            if s.tzinfo is not None:
                local = (local.astimezone(UTC) + exact).astimezone(s.tzinfo)
            else:
                local = local + exact
            return _instant(local)
        return _instant(s + timedelta(days=dur.days))
    return None


def _entries(name: str, comp: Component) -> Counter:
    """The multiset of (value, params) of one property name in one component."""
    out: Counter = Counter()
    props = comp.get(name)
    props = props if isinstance(props, list) else [props]
    if name in ("DTEND", "DURATION") and comp.name == "VEVENT":
        try:
            end = _end(comp)
        except Exception:  # noqa: BLE001 - broken DTSTART/DTEND/DURATION: compare as text
            end = None
        if end is not None:
            params = frozenset().union(*(_params(p) for p in props if p is not None))
            out[(("end", end), params)] += 1
            return out
    for prop in props:
        if prop is None:
            continue
        params = _params(prop)
        if name in SET_PROPS:
            if name == "CATEGORIES" or name == "RESOURCES":
                items = getattr(prop, "cats", None) or [str(prop)]
                for item in items:
                    out[(str(item), params)] = 1
            else:
                try:
                    for item in getattr(prop, "dts", []) or []:
                        out[(_instant(item.dt), params)] = 1
                except Exception:  # noqa: BLE001 - broken value
                    out[(("text", _text(prop)), params)] = 1
            continue
        value = _value(name, prop, comp)
        if DEFAULT_VALUES.get(name) == value and not params:
            continue
        out[(value, params)] += 1
    return out


def _find(name: str, comp: Component) -> Counter:
    if name in ("DTEND", "DURATION") and comp.name == "VEVENT":
        got = Counter()
        for alt in ("DTEND", "DURATION"):
            if alt in comp:
                got += _entries(alt, comp)
                break
        return got
    return _entries(name, comp) if name in comp else Counter()


# ---------------------------------------------------------------------------
# matching components


def _rid(comp: Component) -> str:
    rid = comp.get("RECURRENCE-ID")
    if rid is None:
        return ""
    try:
        return str(_instant(rid.dt)[-1])
    except Exception:  # noqa: BLE001
        return _text(rid)


def _keyed(cal: Component) -> dict[tuple, Component]:
    out: dict[tuple, Component] = {}
    anon = Counter()
    for comp in cal.subcomponents:
        if comp.name not in ITEMS:
            continue
        uid = str(comp.get("UID") or "").strip()
        if not uid:
            anon[comp.name] += 1
            uid = f"#{anon[comp.name]}"
        key = (comp.name, uid, _rid(comp))
        n = 1
        while key in out:
            n += 1
            key = (comp.name, uid, _rid(comp), n)
        out[key] = comp
    return out


def _label(key: tuple) -> str:
    text = f"{key[0]} {key[1]}"
    if key[2]:
        text += f" RID={key[2]}"
    return text


def _alarm_key(alarm: Component) -> tuple:
    trig = alarm.get("TRIGGER")
    related = str(trig.params.get("RELATED", "START")).upper() if trig is not None else ""
    try:
        return (str(_instant(trig.dt)) if trig is not None else "", related)
    except Exception:  # noqa: BLE001
        return (_text(trig), related)


def _compare_props(label: str, a: Component, b: Component | None, report: Report) -> None:
    names = []
    for name, _ in a.property_items(recursive=False):
        if name in IGNORED or name in names:
            continue
        names.append(name)
    # DTEND and DURATION are one pair
    if "DTEND" in names and "DURATION" in names:
        names.remove("DURATION")
    for name in names:
        want = _entries(name, a)
        if not want:
            continue  # only default values
        report.pairs += 1
        report.pair_kinds[pair_kind(label, name)] += 1
        if b is None:
            report.losses.append(Loss(label, name, "component", "component missing"))
            continue
        got = _find(name, b)
        if not got:
            report.losses.append(Loss(label, name, "missing"))
            continue
        missing = _unmatched(want, got)
        if not missing:
            continue
        # classify: same value with other params, or another value
        got_values = Counter()
        for (value, _), n in got.items():
            got_values[value] += n
        kinds = set()
        for value, _ in missing:
            if value in got_values:
                kinds.add("param")
            elif _same_instant_other_kind(value, got_values):
                kinds.add("kind")
            else:
                kinds.add("value")
        kind = "param" if kinds == {"param"} else ("kind" if "kind" in kinds else "value")
        example = next(iter(missing))
        report.losses.append(Loss(label, name, kind, _short(example, got)))


def pair_kind(label: str, prop: str) -> tuple[str, str]:
    """(item type, "X-" for an X- property else ""): how the benchmark splits its figures."""
    return (label.split()[0] if label else "", "X-" if prop.startswith("X-") else "")


def _unmatched(want: Counter, got: Counter) -> Counter:
    """Entries of ``want`` with no entry in ``got`` of the same value and at least its params."""
    pool = Counter(got)
    missing: Counter = Counter()
    # exact matches first, then supersets of the parameters
    for (value, params), n in sorted(want.items(), key=lambda kv: -len(kv[0][1])):
        for _ in range(n):
            exact = (value, params)
            if pool[exact] > 0:
                pool[exact] -= 1
                continue
            for cand, left in pool.items():
                if left > 0 and cand[0] == value and params <= cand[1]:
                    pool[cand] -= 1
                    break
            else:
                missing[(value, params)] += 1
    return missing


def _same_instant_other_kind(value: Any, got_values: Counter) -> bool:
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str)):
        return False
    for other in got_values:
        if (
            isinstance(other, tuple)
            and len(other) == 2
            and other[0] != value[0]
            and (other[1] == value[1] or str(other[1])[:10] == value[1][:10])
        ):
            return True
    return False


def _short(missing: Any, got: Counter) -> str:
    text = f"want {missing!r}, got {list(got)[:3]!r}"
    return text if len(text) < 300 else text[:297] + "..."


def compare_calendars(a: Component, b: Component) -> Report:
    report = Report()
    # calendar-level properties (METHOD, X-WR-*, CALSCALE, ...)
    _compare_props("VCALENDAR", a, b, report)
    ka, kb = _keyed(a), _keyed(b)
    # components without a UID in A: matched in order to B's components whose UID
    # A does not have (a converter gives them a derived UID)
    a_uids = {k[1] for k in ka}
    spare = [k for k in kb if k[1] not in a_uids]
    for key in [k for k in ka if k[1].startswith("#")]:
        for cand in spare:
            if cand[0] == key[0] and cand[2] == key[2]:
                spare.remove(cand)
                kb[key] = kb[cand]
                break
    for key, comp in ka.items():
        other = kb.get(key)
        label = _label(key)
        _compare_props(label, comp, other, report)
        alarms_a = [c for c in comp.subcomponents if c.name == "VALARM"]
        alarms_b = [
            c for c in (other.subcomponents if other is not None else []) if c.name == "VALARM"
        ]
        used: set[int] = set()
        # the alarms with most to match choose first, so a bare twin cannot take the
        # partner of an alarm that has more (same trigger, one acknowledged)
        order = sorted(
            enumerate(alarms_a, start=1), key=lambda ia: -len(list(ia[1].property_items()))
        )
        for i, alarm in order:
            # among the unused alarms with the same trigger, the one that loses least
            match, best = None, None
            for j, cand in enumerate(alarms_b):
                if j in used or _alarm_key(cand) != _alarm_key(alarm):
                    continue
                trial = Report()
                _compare_props("", alarm, cand, trial)
                if best is None or trial.lost_pairs < best:
                    match, best = j, trial.lost_pairs
            if match is not None:
                used.add(match)
            _compare_props(
                f"{label} / VALARM {i}",
                alarm,
                alarms_b[match] if match is not None else None,
                report,
            )
    return report


def compare(a: bytes | str, b: bytes | str) -> Report:
    """What of iCalendar text ``a`` is lost or changed in ``b``."""
    return compare_calendars(icalendar.Calendar.from_ical(a), icalendar.Calendar.from_ical(b))


def count_pairs(a: bytes | str) -> int:
    """The (component, property) pairs of ``a``: compared with nothing, all are lost."""
    return compare(a, b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n").pairs
