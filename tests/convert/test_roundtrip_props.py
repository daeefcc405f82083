"""Property-based round trips of the converter over generated events and tasks.

Three promises the sync engine relies on:

- ics -> jscal -> ics loses nothing (judged by the semantic comparator, not bytes);
- jscal -> ics -> jscal reaches a fixed point after one round, and a server object
  survives the trip to a local file and back unchanged (in canonical form), so the
  daemon never sees a change that is only conversion noise and never ping-pongs;
- the same input gives byte-identical output.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.convert import canonical, ics_to_jscal, jscal_to_ics
from tests.convert.icalcompare import compare

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ZONES = ["Europe/London", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
KINDS = ["date", "floating", "utc", "zoned"]

# Text: printable, with the characters iCalendar escapes (, ; \ newline) and non-ASCII.
TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc"),
        exclude_characters="\x7f",
    )
    | st.sampled_from([",", ";", "\\", "\n", ":", '"']),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s.strip())
TEXT_LINE = TEXT.filter(lambda s: "\n" not in s)  # for values icalendar does not escape
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
UID = st.builds(lambda a, b: f"{a}@{b}.example", WORD, WORD)
EMAIL = st.builds(lambda a, b: f"{a}@{b}.example", WORD, WORD)


@st.composite
def moments(draw: st.DrawFn, kind: str, zone: str) -> date | datetime:
    """A date or date-time of the given kind, on whole seconds, 1990..2035."""
    base = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2035, 12, 31)))
    base = base.replace(microsecond=0)
    if kind == "date":
        return base.date()
    if kind == "floating":
        return base
    if kind == "utc":
        return base.replace(tzinfo=UTC)
    value = base.replace(tzinfo=ZoneInfo(zone))
    # a wall-clock time that does not exist or is ambiguous (DST) has no single meaning
    round_trip = value.astimezone(UTC).astimezone(ZoneInfo(zone))
    if round_trip.replace(tzinfo=None) != base or value.fold:
        return base.replace(hour=12, tzinfo=ZoneInfo(zone))
    return value


def _shift(value: date | datetime, days: int, hours: int = 0) -> date | datetime:
    if isinstance(value, datetime):
        wall = value.replace(tzinfo=None) + timedelta(days=days, hours=hours)
        if value.tzinfo is not None and value.tzinfo is not UTC:
            wall = wall.replace(hour=max(wall.hour, 12) if hours else wall.hour)
        return wall.replace(tzinfo=value.tzinfo)
    return value + timedelta(days=days)


@st.composite
def rrules(draw: st.DrawFn, start: date | datetime) -> dict[str, Any]:
    rule: dict[str, Any] = {"FREQ": draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))}
    if draw(st.booleans()):
        rule["INTERVAL"] = draw(st.integers(2, 5))
    end = draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        rule["COUNT"] = draw(st.integers(1, 30))
    elif end == "until":
        until = _shift(start, draw(st.integers(30, 800)))
        if isinstance(until, datetime) and until.tzinfo is not None:
            until = until.astimezone(UTC)
        rule["UNTIL"] = until
    if rule["FREQ"] in ("WEEKLY", "MONTHLY") and draw(st.booleans()):
        days = draw(
            st.lists(
                st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        if rule["FREQ"] == "MONTHLY" and draw(st.booleans()):
            days = [f"{draw(st.sampled_from([1, 2, -1]))}{d}" for d in days[:1]]
        rule["BYDAY"] = days
    if rule["FREQ"] == "YEARLY" and draw(st.booleans()):
        rule["BYMONTH"] = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
    if rule["FREQ"] == "MONTHLY" and "BYDAY" not in rule and draw(st.booleans()):
        rule["BYMONTHDAY"] = draw(st.lists(st.integers(1, 28), min_size=1, max_size=3, unique=True))
        if draw(st.booleans()):
            rule["BYSETPOS"] = [draw(st.sampled_from([1, -1]))]
    if draw(st.booleans()):
        rule["WKST"] = draw(st.sampled_from(["SU", "MO", "SA"]))
    if draw(st.integers(0, 9)) == 0:
        rule["RSCALE"] = "GREGORIAN"
        rule["SKIP"] = draw(st.sampled_from(["FORWARD", "BACKWARD"]))
    return rule


@st.composite
def attendees(draw: st.DrawFn, others: list[str]) -> tuple[str, dict[str, Any]]:
    addr = "mailto:" + draw(EMAIL)
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["CN"] = draw(TEXT.filter(lambda s: not set(s) & set('"\n;:,\\')))
    if draw(st.booleans()):
        params["ROLE"] = draw(
            st.sampled_from(["CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT"])
        )
    if draw(st.booleans()):
        params["PARTSTAT"] = draw(
            st.sampled_from(["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"])
        )
    if draw(st.booleans()):
        params["RSVP"] = draw(st.sampled_from(["TRUE", "FALSE"]))
    if draw(st.booleans()):
        params["CUTYPE"] = draw(st.sampled_from(["INDIVIDUAL", "GROUP", "RESOURCE", "ROOM"]))
    if others and draw(st.booleans()):
        params["DELEGATED-TO"] = draw(st.sampled_from(others))
    if draw(st.integers(0, 4)) == 0:
        params["X-SYNCD-TEST"] = draw(WORD)
    return addr, params


@st.composite
def alarms(draw: st.DrawFn) -> icalendar.Alarm:
    alarm = icalendar.Alarm()
    action = draw(st.sampled_from(["DISPLAY", "DISPLAY", "EMAIL", "AUDIO"]))
    alarm.add("ACTION", action)
    if draw(st.integers(0, 3)) == 0:
        when = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)))
        alarm.add("TRIGGER", when.replace(microsecond=0, tzinfo=UTC))
    else:
        offset = timedelta(minutes=draw(st.integers(-10080, 600)))
        params = {"RELATED": "END"} if draw(st.integers(0, 4)) == 0 else {}
        alarm.add("TRIGGER", offset, parameters=params)
    if action in ("DISPLAY", "EMAIL"):
        alarm.add("DESCRIPTION", draw(TEXT))
    if action == "EMAIL":
        alarm.add("SUMMARY", draw(TEXT))
        alarm.add("ATTENDEE", "mailto:" + draw(EMAIL))
    if draw(st.integers(0, 3)) == 0:
        when = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)))
        alarm.add("ACKNOWLEDGED", when.replace(microsecond=0, tzinfo=UTC))
    if draw(st.integers(0, 4)) == 0:
        alarm.add("X-MOZ-LASTACK", draw(WORD))
    return alarm


def _common(draw: st.DrawFn, comp: icalendar.cal.Component, is_task: bool) -> None:
    """Properties events and tasks share."""
    if draw(st.booleans()):
        comp.add("SUMMARY", draw(TEXT))
    if draw(st.booleans()):
        comp.add("DESCRIPTION", draw(TEXT))
    if draw(st.booleans()):
        comp.add("CLASS", draw(st.sampled_from(["PUBLIC", "PRIVATE", "CONFIDENTIAL"])))
    if draw(st.booleans()):
        comp.add("PRIORITY", draw(st.integers(0, 9)))
    if draw(st.booleans()):
        comp.add("SEQUENCE", draw(st.integers(0, 20)))
    stamp = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1))
    if draw(st.booleans()):
        comp.add("CREATED", draw(stamp).replace(microsecond=0, tzinfo=UTC))
    if draw(st.booleans()):
        comp.add("LAST-MODIFIED", draw(stamp).replace(microsecond=0, tzinfo=UTC))
    if draw(st.booleans()):
        cats = draw(st.lists(WORD, min_size=1, max_size=3, unique=True))
        comp.add("CATEGORIES", cats)
    for _ in range(draw(st.integers(0, 2))):
        comp.add("LOCATION", draw(TEXT))
    if draw(st.booleans()):
        comp.add("URL", "https://" + draw(WORD) + ".example/" + draw(WORD))
    if draw(st.integers(0, 3)) == 0:
        comp.add(
            "ATTACH",
            "https://files.example/" + draw(WORD),
            parameters={"FMTTYPE": "application/pdf"},
        )
    if draw(st.integers(0, 3)) == 0:
        comp.add(
            "CONFERENCE",
            "https://meet.example/" + draw(WORD),
            parameters={"VALUE": "URI", "FEATURE": "VIDEO,AUDIO", "LABEL": draw(WORD)},
        )
    if draw(st.integers(0, 3)) == 0:
        comp.add("COLOR", draw(st.sampled_from(["red", "turquoise", "dodgerblue"])))
    for related in draw(st.lists(UID, max_size=2, unique=True)):
        params = (
            {}
            if draw(st.booleans())
            else {"RELTYPE": draw(st.sampled_from(["PARENT", "CHILD", "SIBLING"]))}
        )
        comp.add("RELATED-TO", related, parameters=params)
    addresses: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        addr, params = draw(attendees(addresses))
        if addr in addresses:
            continue
        addresses.append(addr)
        comp.add("ATTENDEE", addr, parameters=params)
    if addresses and draw(st.booleans()):
        params = {"CN": draw(WORD)} if draw(st.booleans()) else {}
        comp.add("ORGANIZER", "mailto:" + draw(EMAIL), parameters=params)
    for _ in range(draw(st.integers(0, 2))):
        comp.add_component(draw(alarms()))
    # what JSCalendar has no place for: X- properties with X- parameters, unknown ones
    for _ in range(draw(st.integers(0, 2))):
        name = "X-" + draw(WORD).upper()
        params = {"X-P": draw(WORD)} if draw(st.booleans()) else {}
        comp.add(name, draw(TEXT_LINE), parameters=params)
    if draw(st.integers(0, 4)) == 0:
        comp.add("COMMENT", draw(TEXT))
    if draw(st.integers(0, 4)) == 0:
        comp.add("GEO", (draw(st.integers(-89, 89)) + 0.5, draw(st.integers(-179, 179)) + 0.25))


@st.composite
def events(draw: st.DrawFn) -> bytes:
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//hypothesis//EN")
    cal.add("VERSION", "2.0")
    kind = draw(st.sampled_from(KINDS))
    zone = draw(st.sampled_from(ZONES))
    uid = draw(UID)
    ev = icalendar.Event()
    ev.add("UID", uid)
    ev.add("DTSTAMP", datetime(2024, 1, 1, tzinfo=UTC))
    start = draw(moments(kind, zone))
    ev.add("DTSTART", start)
    end_kind = draw(st.sampled_from(["none", "dtend", "duration"]))
    if end_kind == "dtend":
        ev.add(
            "DTEND",
            _shift(
                start,
                draw(st.integers(0 if kind != "date" else 1, 3)),
                draw(st.integers(1, 5)) if kind != "date" else 0,
            ),
        )
    elif end_kind == "duration":
        if kind == "date":
            ev.add("DURATION", timedelta(days=draw(st.integers(1, 5))))
        else:
            ev.add("DURATION", timedelta(minutes=draw(st.integers(1, 3000))))
    if draw(st.booleans()):
        ev.add("STATUS", draw(st.sampled_from(["CONFIRMED", "TENTATIVE", "CANCELLED"])))
    if draw(st.booleans()):
        ev.add("TRANSP", draw(st.sampled_from(["OPAQUE", "TRANSPARENT"])))
    _common(draw, ev, is_task=False)
    overrides = []
    if draw(st.booleans()):
        ev.add("RRULE", draw(rrules(start)))
        days = sorted(draw(st.lists(st.integers(1, 20), max_size=4, unique=True)))
        excluded = days[: len(days) // 2]
        if excluded:
            exdates = [_shift(start, 7 * d) for d in excluded]
            if kind == "zoned" and draw(st.integers(0, 3)) == 0:  # UTC EXDATEs, zoned series
                exdates = [e.astimezone(UTC) for e in exdates]  # type: ignore[union-attr]
            ev.add("EXDATE", exdates)
        for d in days[len(days) // 2 :]:
            ov = icalendar.Event()
            ov.add("UID", uid)
            ov.add("DTSTAMP", datetime(2024, 1, 1, tzinfo=UTC))
            rid = _shift(start, 7 * d)
            ov.add("RECURRENCE-ID", rid)
            ov.add("DTSTART", _shift(rid, 0, draw(st.integers(0, 3))) if kind != "date" else rid)
            if draw(st.booleans()):
                ov.add("SUMMARY", draw(TEXT))
            if draw(st.booleans()):
                ov.add("LOCATION", draw(TEXT))
            if draw(st.booleans()):
                addr, params = draw(attendees([]))
                ov.add("ATTENDEE", addr, parameters=params)
            if draw(st.booleans()):
                ov.add_component(draw(alarms()))
            if draw(st.booleans()):
                ov.add("STATUS", "CANCELLED")
            overrides.append(ov)
        if draw(st.booleans()):
            ev.add("RDATE", [_shift(start, 3)])
        if kind != "date" and draw(st.integers(0, 3)) == 0:
            extra = (_shift(start, 2), timedelta(minutes=draw(st.integers(5, 300))))
            ev.add("RDATE", [extra], parameters={"VALUE": "PERIOD"})
    cal.add_component(ev)
    for ov in overrides:
        cal.add_component(ov)
    if draw(st.integers(0, 4)) == 0:
        cal.add("X-WR-CALNAME", draw(WORD))
    return _zones(draw, cal)


@st.composite
def tasks(draw: st.DrawFn) -> bytes:
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//hypothesis//EN")
    cal.add("VERSION", "2.0")
    kind = draw(st.sampled_from(KINDS))
    zone = draw(st.sampled_from(ZONES))
    todo = icalendar.Todo()
    todo.add("UID", draw(UID))
    todo.add("DTSTAMP", datetime(2024, 1, 1, tzinfo=UTC))
    has_start = draw(st.booleans())
    base = draw(moments(kind, zone))
    if has_start:
        todo.add("DTSTART", base)
    if draw(st.booleans()) or not has_start:
        todo.add("DUE", _shift(base, draw(st.integers(1, 30))))
    status = draw(st.sampled_from([None, "NEEDS-ACTION", "IN-PROCESS", "COMPLETED", "CANCELLED"]))
    if status:
        todo.add("STATUS", status)
    if status == "COMPLETED" and draw(st.booleans()):
        todo.add("COMPLETED", datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC))
    if draw(st.booleans()):
        todo.add("PERCENT-COMPLETE", draw(st.integers(0, 100)))
    if draw(st.booleans()):
        name = draw(st.sampled_from(["ESTIMATED-DURATION", "DURATION"]))
        if name == "ESTIMATED-DURATION" or "DUE" not in todo:
            todo.add(name, timedelta(minutes=draw(st.integers(1, 6000))))
    _common(draw, todo, is_task=True)
    cal.add_component(todo)
    return _zones(draw, cal)


def _zones(draw: st.DrawFn, cal: icalendar.Calendar) -> bytes:
    """Define the zones used; sometimes rename one to a custom TZID nobody can resolve
    (Asia/Kolkata has had no DST since 1945, so its definition stays exact)."""
    cal.add_missing_timezones()
    data = cal.to_ical()
    if b"Asia/Kolkata" in data and draw(st.booleans()):
        data = data.replace(b"Asia/Kolkata", b"Office Time")
    return data


ITEMS = st.one_of(events(), tasks())


def _round(data: bytes) -> tuple[list[dict[str, Any]], bytes]:
    objs = ics_to_jscal(data)
    return objs, jscal_to_ics(objs)


def _dump(objs: list[dict[str, Any]]) -> str:
    return json.dumps(objs, sort_keys=True, ensure_ascii=False)


@SETTINGS
@given(ITEMS)
def test_ics_round_trip_loses_nothing(data: bytes) -> None:
    _, out = _round(data)
    report = compare(data, out)
    assert not report, f"{report}\n--- in\n{data.decode()}\n--- out\n{out.decode()}"


@SETTINGS
@given(ITEMS)
def test_jscal_reaches_a_fixed_point_after_one_round(data: bytes) -> None:
    _, ics1 = _round(data)
    objs2, ics2 = _round(ics1)
    objs3, ics3 = _round(ics2)
    assert _dump(objs3) == _dump(objs2)
    assert ics3 == ics2


@SETTINGS
@given(ITEMS)
def test_conversion_is_deterministic(data: bytes) -> None:
    objs_a, out_a = _round(data)
    objs_b, out_b = _round(bytes(data))
    assert _dump(objs_a) == _dump(objs_b)
    assert out_a == out_b
    assert jscal_to_ics(copy.deepcopy(objs_a)) == out_a
    assert (
        b"DTSTAMP" not in out_a or datetime.now(UTC).strftime("%Y%m%dT%H%M").encode() not in out_a
    )


# ---------------------------------------------------------------------------
# server-side objects (as Cyrus serves them: mapped properties only, no vendor data)


@st.composite
def server_objects(draw: st.DrawFn) -> dict[str, Any]:
    is_task = draw(st.integers(0, 3)) == 0
    all_day = draw(st.booleans())
    zone = None if all_day else draw(st.sampled_from([None, "Etc/UTC", *ZONES]))
    start = draw(moments("floating", "UTC"))
    local = (
        start.strftime("%Y-%m-%dT%H:%M:%S") if not all_day else start.strftime("%Y-%m-%dT00:00:00")
    )
    if zone not in (None, "Etc/UTC"):
        local = local[:11] + "12" + local[13:]  # never in a DST gap
    obj: dict[str, Any] = {"@type": "Task" if is_task else "Event", "uid": draw(UID)}
    if draw(st.booleans()) or not is_task:
        obj["start"] = local
    if zone:
        obj["timeZone"] = zone
    if all_day:
        obj["showWithoutTime"] = True
    if is_task:
        if draw(st.booleans()) or "start" not in obj:
            obj["due"] = local[:8] + f"{min(int(local[8:10]) + 1, 28):02d}" + local[10:]
        if draw(st.booleans()):
            obj["progress"] = draw(
                st.sampled_from(["needs-action", "in-process", "completed", "cancelled"])
            )
        if draw(st.booleans()):
            obj["percentComplete"] = draw(st.integers(0, 100))
        if draw(st.booleans()):
            obj["estimatedDuration"] = draw(st.sampled_from(["PT1H", "P1D", "PT30M"]))
    else:
        obj["duration"] = draw(
            st.sampled_from(["P1D", "P2D"] if all_day else ["PT0S", "PT1H", "PT45M", "P1DT2H"])
        )
        if draw(st.booleans()):
            obj["status"] = draw(st.sampled_from(["confirmed", "tentative", "cancelled"]))
        if draw(st.booleans()):
            obj["freeBusyStatus"] = draw(st.sampled_from(["busy", "free"]))
    if draw(st.booleans()):
        obj["title"] = draw(TEXT)
    if draw(st.booleans()):
        obj["description"] = draw(TEXT)
    if draw(st.booleans()):
        obj["privacy"] = draw(st.sampled_from(["public", "private", "secret"]))
    if draw(st.booleans()):
        obj["priority"] = draw(st.integers(0, 9))
    if draw(st.booleans()):
        obj["sequence"] = draw(st.integers(0, 9))
    if draw(st.booleans()):
        obj["keywords"] = {
            k: True for k in draw(st.lists(WORD, min_size=1, max_size=3, unique=True))
        }
    if draw(st.booleans()):
        obj["locations"] = {draw(WORD): {"@type": "Location", "name": draw(TEXT)}}
    if draw(st.booleans()):
        obj["links"] = {draw(WORD): {"@type": "Link", "href": "https://x.example/" + draw(WORD)}}
    if draw(st.booleans()):
        obj["alerts"] = {
            draw(WORD): {
                "@type": "Alert",
                "trigger": {
                    "@type": "OffsetTrigger",
                    "offset": draw(st.sampled_from(["-PT15M", "PT0S", "-P1D"])),
                },
            }
        }
    if draw(st.booleans()):
        obj["participants"] = {
            "p1": {
                "@type": "Participant",
                "sendTo": {"imip": "mailto:" + draw(EMAIL)},
                "roles": {"attendee": True},
                "participationStatus": draw(st.sampled_from(["accepted", "declined", "tentative"])),
            }
        }
    if "start" in obj and not is_task and draw(st.booleans()):
        obj["recurrenceRules"] = [
            {
                "@type": "RecurrenceRule",
                "frequency": draw(st.sampled_from(["daily", "weekly"])),
                "count": draw(st.integers(2, 9)),
            }
        ]
    return obj


@SETTINGS
@given(server_objects())
def test_server_object_survives_a_local_round_trip(obj: dict[str, Any]) -> None:
    """What the engine writes for a server object reads back as the same object."""
    ics = jscal_to_ics([obj])
    back = ics_to_jscal(ics)
    assert len(back) == 1
    assert canonical(back[0]) == canonical(obj), ics.decode()
    again = ics_to_jscal(jscal_to_ics(back))
    assert _dump(again) == _dump(back)


@SETTINGS
@given(ITEMS)
def test_upload_form_carries_no_vendor_data(data: bytes) -> None:
    """What goes to the server has no vendor property and no iCalComponent at any depth
    (Cyrus 3.12 rejects both with invalidProperties)."""
    from syncd.convert import for_upload
    from syncd.convert.canon import is_vendor

    def walk(value: Any, is_map: bool = False) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                head = key.split("/")[0]
                assert is_map or not (is_vendor(head) or head == "iCalComponent"), key
                walk(sub, is_map=not is_map and key in MAP_KEYS)
        elif isinstance(value, list):
            for sub in value:
                walk(sub)

    for obj in ics_to_jscal(data):
        walk(for_upload(obj))


MAP_KEYS = {"recurrenceOverrides", "alerts", "participants", "locations", "links"} | {
    "virtualLocations",
    "relatedTo",
    "keywords",
    "timeZones",
}
