"""PURE: custom time zones, VTIMEZONE (RFC 5545 3.6.5) <-> TimeZone (RFC 8984 4.7.2).

A zone with an IANA name (or a Windows name CLDR maps to one) needs no definition:
JSCalendar names it and the writer generates its VTIMEZONE.  A zone nobody can resolve
("Office Time", an old Lotus export) only means something through its definition, so
it travels as a JSCalendar ``timeZones`` entry under the custom id ``/<TZID>`` and the
VTIMEZONE is rebuilt from it when the file is written for a server version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import icalendar
from icalendar.cal import Component

from syncd.convert.values import local_str, parse_local, utc_str

OBSERVANCES = {"STANDARD": "standard", "DAYLIGHT": "daylight"}


def custom_id(tzid: str) -> str:
    """The JSCalendar id of a custom zone (RFC 8984 4.7.2: it starts with a slash)."""
    return "/" + tzid


def tzid_of(zone: str, time_zones: dict[str, Any] | None = None) -> str:
    """The iCalendar TZID for a JSCalendar timeZone value."""
    tz = (time_zones or {}).get(zone)
    if isinstance(tz, dict) and tz.get("tzId"):
        return str(tz["tzId"])
    return zone[1:] if zone.startswith("/") else zone


def _text(prop: Any) -> str:
    out = prop.to_ical()
    return out.decode() if isinstance(out, bytes) else str(out)


def _offset(prop: Any) -> str:
    """A UTC offset as RFC 8984 writes it: +hhmm (seconds when there are any)."""
    return _text(prop)


def timezone_object(tz: Component, rrule: Any) -> dict[str, Any]:
    """A VTIMEZONE as a TimeZone object; ``rrule`` converts an RRULE (from ical_in)."""
    out: dict[str, Any] = {"@type": "TimeZone", "tzId": str(tz["TZID"])}
    if "LAST-MODIFIED" in tz:
        out["updated"] = utc_str(tz["LAST-MODIFIED"].dt)
    if "TZURL" in tz:
        out["url"] = str(tz["TZURL"])
    if "TZUNTIL" in tz:
        out["validUntil"] = utc_str(tz["TZUNTIL"].dt)
    for obs in tz.subcomponents:
        kind = OBSERVANCES.get(obs.name)
        if kind is None or "DTSTART" not in obs:
            continue
        rule: dict[str, Any] = {
            "@type": "TimeZoneRule",
            "start": local_str(obs["DTSTART"].dt),
            "offsetFrom": _offset(obs["TZOFFSETFROM"]),
            "offsetTo": _offset(obs["TZOFFSETTO"]),
        }
        rules = obs.get("RRULE")
        if rules is not None:
            rule["recurrenceRules"] = [
                rrule(r) for r in (rules if isinstance(rules, list) else [rules])
            ]
        rdates = obs.get("RDATE")
        overrides: dict[str, Any] = {}
        for prop in rdates if isinstance(rdates, list) else [rdates] if rdates else []:
            for item in prop.dts:
                if isinstance(item.dt, datetime):
                    overrides[local_str(item.dt)] = {}
        if overrides:
            rule["recurrenceOverrides"] = overrides
        names = obs.get("TZNAME")
        names = names if isinstance(names, list) else [names] if names else []
        if names:
            rule["names"] = {str(n): True for n in names}
        comments = obs.get("COMMENT")
        comments = comments if isinstance(comments, list) else [comments] if comments else []
        if comments:
            rule["comments"] = [str(c) for c in comments]
        out.setdefault(kind, []).append(rule)
    return out


def vtimezone(tz: dict[str, Any], rrule: Any) -> Component:
    """A TimeZone object as a VTIMEZONE; ``rrule`` converts a RecurrenceRule (ical_out)."""
    from icalendar.prop import vUTCOffset

    comp = icalendar.Timezone()
    comp.add("TZID", tz.get("tzId"))
    if tz.get("updated"):
        comp.add("LAST-MODIFIED", _utc(tz["updated"]))
    if tz.get("url"):
        comp.add("TZURL", tz["url"])
    if tz.get("validUntil"):
        comp.add("TZUNTIL", _utc(tz["validUntil"]))
    for name, kind in OBSERVANCES.items():
        for rule in tz.get(kind) or []:
            obs = (
                icalendar.TimezoneStandard() if name == "STANDARD" else icalendar.TimezoneDaylight()
            )
            obs.add("DTSTART", parse_local(rule["start"]))
            obs.add("TZOFFSETFROM", vUTCOffset(vUTCOffset.from_ical(rule["offsetFrom"])))
            obs.add("TZOFFSETTO", vUTCOffset(vUTCOffset.from_ical(rule["offsetTo"])))
            for r in rule.get("recurrenceRules") or []:
                obs.add("RRULE", rrule(r))
            rdates = sorted(rule.get("recurrenceOverrides") or {})
            if rdates:
                obs.add("RDATE", [parse_local(d) for d in rdates])
            for n in sorted(k for k, on in (rule.get("names") or {}).items() if on):
                obs.add("TZNAME", n)
            for c in rule.get("comments") or []:
                obs.add("COMMENT", c)
            comp.add_component(obs)
    return comp


def _utc(text: str) -> datetime:
    return parse_local(text).replace(tzinfo=UTC)
