"""Realistic benchmark events, rendered both as JSCalendar (for JMAP) and as iCalendar.

One deterministic generator (``make_events(n)``) describes N events; every event can be
rendered as a JSCalendar object (``to_jscal``) for ``CalendarEvent/set`` on the Cyrus
server, or as an ``.ics`` file (``to_ics``) for a vdir or a CalDAV server.  Both renderings
describe the same event, so syncd and vdirsyncer are measured on the same data.

Mix (by construction, stable for a given N): about 20% recurring (weekly, daily, monthly,
some with an excluded occurrence), 10% all-day, about half with one or two alarms, a
third with an organizer and 2-4 attendees, six time zones (UTC and five IANA zones, each
written with its VTIMEZONE as calendar clients do), a location, categories and a short
description; an .ics file averages about 1 KB.

Command line (also used by ``sync_bench.py``)::

    python3 contrib/bench/seed.py vdir DIR --n 1000         # write N .ics files into DIR
    python3 contrib/bench/seed.py cyrus --n 1000            # start Cyrus, seed a user, print it
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/London",
    "Australia/Sydney",
]
ZONE_WEIGHTS = [20, 35, 20, 8, 12, 5]

VTIMEZONES = {
    "Europe/Berlin": (
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\n"
        "TZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\n"
        "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    ),
    "Europe/London": (
        "BEGIN:VTIMEZONE\r\nTZID:Europe/London\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0000\r\n"
        "TZOFFSETTO:+0100\r\nTZNAME:BST\r\nDTSTART:19700329T010000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\n"
        "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nTZNAME:GMT\r\nDTSTART:19701025T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    ),
    "America/New_York": (
        "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\n"
        "TZOFFSETTO:-0400\r\nTZNAME:EDT\r\nDTSTART:19700308T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\n"
        "TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\nDTSTART:19701101T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    ),
    "Asia/Tokyo": (
        "BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0900\r\n"
        "TZOFFSETTO:+0900\r\nTZNAME:JST\r\nDTSTART:19700101T000000\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\n"
    ),
    "Australia/Sydney": (
        "BEGIN:VTIMEZONE\r\nTZID:Australia/Sydney\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+1100\r\n"
        "TZOFFSETTO:+1000\r\nTZNAME:AEST\r\nDTSTART:19700405T030000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
        "TZOFFSETFROM:+1000\r\nTZOFFSETTO:+1100\r\nTZNAME:AEDT\r\nDTSTART:19701004T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
    ),
}

TITLES = [
    "Team standup",
    "Quarterly planning",
    "Dentist",
    "Lunch with Sam",
    "1:1 with manager",
    "Budget review",
    "Design critique",
    "Yoga class",
    "Parent-teacher meeting",
    "Flight to Oslo",
    "Release retrospective",
    "Customer call: Acme",
    "Book club",
    "Car service",
    "Board meeting",
    "Hiring committee",
    "Architecture review",
    "Piano lesson",
    "Sprint demo",
    "Coffee with Ana",
]
PLACES = [
    "Room 4.12, Main building",
    "Café Lindenhof, Hauptstraße 12",
    "https://meet.example.com/abc-defg",
    "Clinic Dr. Müller, 2nd floor",
    "Conference room Everest",
    "Home office",
    "Terminal 2, Gate B34",
    "Community hall, Elm Street 5",
]
WORDS = [
    *[
        "agenda",
        "notes",
        "follow-up",
        "review",
        "budget",
        "draft",
        "slides",
        "demo",
        "customer",
        "roadmap",
        "risk",
        "owner",
    ],
    *[
        "deadline",
        "milestone",
        "feedback",
        "action",
        "items",
        "decision",
        "summary",
        "dial-in",
        "bring",
        "laptop",
    ],
    *[
        "parking",
        "badge",
        "prepare",
        "questions",
        "minutes",
        "numbers",
        "status",
        "blockers",
        "priorities",
        "next",
        "steps",
    ],
]
PEOPLE = [
    ("Alice Schmidt", "alice.schmidt@example.org"),
    ("Bob Tanaka", "bob.tanaka@example.net"),
    ("Chloé Martin", "chloe.martin@example.com"),
    ("Dmitri Ivanov", "dmitri@example.org"),
    ("Eve Johnson", "eve.johnson@example.net"),
    ("Fatima Khan", "fatima.khan@example.com"),
    ("Gustavo Lima", "glima@example.org"),
    ("Hanna Berg", "hanna.berg@example.net"),
]
CATEGORIES = ["Work", "Personal", "Family", "Travel", "Health", "Projects"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
DTSTAMP = "20260101T090000Z"


@dataclass
class Event:
    """One benchmark event, independent of its rendering."""

    uid: str
    title: str
    description: str
    location: str
    start: datetime  # local wall time in `zone` (or a date at midnight when all_day)
    zone: str  # "UTC" or an IANA name
    minutes: int  # duration; whole days when all_day
    all_day: bool = False
    rrule: dict | None = None  # {"freq": "weekly", "count": 10, "byday": ["MO"], "until": date}
    exdate: datetime | None = None  # an excluded occurrence of the series
    alarms: list[int] = field(default_factory=list)  # minutes before start
    organizer: tuple[str, str] | None = None
    attendees: list[tuple[str, str, str]] = field(default_factory=list)  # name, email, partstat
    categories: list[str] = field(default_factory=list)
    sequence: int = 0


def make_events(n: int, seed: int = 6, prefix: str = "bench") -> list[Event]:
    rng = random.Random(seed)
    base = datetime(2026, 1, 5, 0, 0)
    events = []
    for i in range(n):
        zone = rng.choices(ZONES, ZONE_WEIGHTS)[0]
        all_day = i % 10 == 3
        recurring = i % 5 == 1  # 20%
        day = base + timedelta(days=rng.randrange(0, 540))
        if all_day:
            start = day
            minutes = 1440 * rng.choice([1, 1, 1, 2, 3])
        else:
            start = day.replace(hour=rng.randrange(7, 19), minute=rng.choice([0, 15, 30, 45]))
            minutes = rng.choice([15, 30, 30, 45, 60, 60, 60, 90, 120])
        rrule = None
        exdate = None
        if recurring:
            kind = rng.choice(["weekly", "weekly", "weekly", "daily", "monthly"])
            if kind == "weekly":
                rrule = {"freq": "weekly", "byday": [WEEKDAYS[start.weekday()]]}
            else:
                rrule = {"freq": kind}
            if rng.random() < 0.6:
                rrule["count"] = rng.choice([5, 10, 20, 52])
            elif rng.random() < 0.5:
                rrule["until"] = start.date() + timedelta(days=rng.choice([60, 180, 365]))
            if rng.random() < 0.3:
                step = {"weekly": 7, "daily": 1, "monthly": 0}[kind]
                if step:
                    exdate = start + timedelta(days=2 * step)
        alarms = []
        if rng.random() < 0.5:
            alarms.append(rng.choice([5, 10, 15, 30, 60]) if not all_day else 720)
            if rng.random() < 0.3:
                alarms.append(1440)
        organizer = None
        attendees: list[tuple[str, str, str]] = []
        if i % 3 == 2:
            people = rng.sample(PEOPLE, rng.randrange(3, 6))
            organizer = people[0]
            attendees = [
                (nm, em, rng.choice(["ACCEPTED", "NEEDS-ACTION", "TENTATIVE"]))
                for nm, em in people[1:]
            ]
            attendees.insert(0, (organizer[0], organizer[1], "ACCEPTED"))
        description = (
            " ".join(rng.choice(WORDS) for _ in range(rng.randrange(12, 40))).capitalize() + "."
        )
        events.append(
            Event(
                uid=f"{prefix}-{i:06d}-{rng.getrandbits(32):08x}@example.com",
                title=f"{rng.choice(TITLES)} #{i}",
                description=description,
                location=rng.choice(PLACES),
                start=start,
                zone=zone,
                minutes=minutes,
                all_day=all_day,
                rrule=rrule,
                exdate=exdate,
                alarms=alarms,
                organizer=organizer,
                attendees=attendees,
                categories=rng.sample(CATEGORIES, rng.randrange(1, 3)),
            )
        )
    return events


# --------------------------------------------------------------------------- iCalendar


def _fold(line: str) -> str:
    raw = line.encode()
    if len(raw) <= 75:
        return line + "\r\n"
    parts, cur = [], b""
    for ch in line:
        b = ch.encode()
        if len(cur) + len(b) > (75 if not parts else 74):
            parts.append(cur)
            cur = b""
        cur += b
    parts.append(cur)
    return "\r\n ".join(p.decode() for p in parts) + "\r\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _dt(ev: Event, value: datetime, name: str) -> str:
    if ev.all_day:
        return f"{name};VALUE=DATE:{value:%Y%m%d}"
    if ev.zone == "UTC":
        return f"{name}:{value:%Y%m%dT%H%M%S}Z"
    return f"{name};TZID={ev.zone}:{value:%Y%m%dT%H%M%S}"


def _rrule(ev: Event) -> str:
    r = ev.rrule or {}
    parts = [f"FREQ={r['freq'].upper()}"]
    if "byday" in r:
        parts.append("BYDAY=" + ",".join(r["byday"]))
    if "count" in r:
        parts.append(f"COUNT={r['count']}")
    if "until" in r:
        u = r["until"]
        parts.append(f"UNTIL={u:%Y%m%d}" if ev.all_day else f"UNTIL={u:%Y%m%d}T235959Z")
    return "RRULE:" + ";".join(parts)


def to_ics(ev: Event) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//syncd bench//EN", "CALSCALE:GREGORIAN"]
    out = "".join(_fold(x) for x in lines)
    if not ev.all_day and ev.zone in VTIMEZONES:
        out += VTIMEZONES[ev.zone]
    lines = [
        "BEGIN:VEVENT",
        f"UID:{ev.uid}",
        f"DTSTAMP:{DTSTAMP}",
        "CREATED:20251201T120000Z",
        "LAST-MODIFIED:20251201T120000Z",
        f"SEQUENCE:{ev.sequence}",
        _dt(ev, ev.start, "DTSTART"),
    ]
    if ev.all_day:
        lines.append(_dt(ev, ev.start + timedelta(minutes=ev.minutes), "DTEND"))
    else:
        h, m = divmod(ev.minutes, 60)
        lines.append("DURATION:PT" + (f"{h}H" if h else "") + (f"{m}M" if m else ""))
    lines += [
        f"SUMMARY:{_esc(ev.title)}",
        f"DESCRIPTION:{_esc(ev.description)}",
        f"LOCATION:{_esc(ev.location)}",
        "CATEGORIES:" + ",".join(ev.categories),
        "STATUS:CONFIRMED",
        "TRANSP:" + ("TRANSPARENT" if ev.all_day else "OPAQUE"),
    ]
    if ev.rrule:
        lines.append(_rrule(ev))
    if ev.exdate:
        lines.append(_dt(ev, ev.exdate, "EXDATE"))
    if ev.organizer:
        lines.append(f"ORGANIZER;CN={ev.organizer[0]}:mailto:{ev.organizer[1]}")
        for name, email, partstat in ev.attendees:
            lines.append(
                f"ATTENDEE;CN={name};CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat}"
                f";RSVP=FALSE:mailto:{email}"
            )
    for minutes in ev.alarms:
        lines += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            f"DESCRIPTION:{_esc(ev.title)}",
            f"TRIGGER:-PT{minutes}M",
            "END:VALARM",
        ]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return out + "".join(_fold(x) for x in lines)


def ics_filename(ev: Event) -> str:
    return ev.uid.replace("@", "_at_") + ".ics"


def write_vdir(directory: Path, events: list[Event]) -> int:
    """Write one .ics file per event (no fsync: this is set-up, not the measured part)."""
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for ev in events:
        data = to_ics(ev).encode()
        (directory / ics_filename(ev)).write_bytes(data)
        total += len(data)
    return total


# --------------------------------------------------------------------------- JSCalendar


def _duration(minutes: int, all_day: bool) -> str:
    if all_day:
        return f"P{minutes // 1440}D"
    h, m = divmod(minutes, 60)
    return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "")


def _until_local(ev: Event, until) -> str:
    """A JSCalendar ``until`` is a LocalDateTime in the event's time zone (RFC 8984
    4.3.3); to_ics writes UNTIL as the UTC instant <day>T235959Z (RFC 5545 requires UTC
    with a zoned start).  The same rule on both sides: that instant, in the event's zone
    (until session 20 both said <day> 23:59:59, two rules outside UTC)."""
    if ev.all_day:
        return f"{until:%Y-%m-%d}T23:59:59"
    instant = datetime(until.year, until.month, until.day, 23, 59, 59, tzinfo=UTC)
    zone = UTC if ev.zone == "UTC" else ZoneInfo(ev.zone)
    return instant.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


def to_jscal(ev: Event, calendar_id: str = "Default") -> dict:
    obj: dict = {
        "@type": "Event",
        "uid": ev.uid,
        "calendarIds": {calendar_id: True},
        "title": ev.title,
        "description": ev.description,
        "start": ev.start.strftime("%Y-%m-%dT%H:%M:%S"),
        "duration": _duration(ev.minutes, ev.all_day),
        "sequence": ev.sequence,
        "status": "confirmed",
        "freeBusyStatus": "free" if ev.all_day else "busy",
        "locations": {"loc1": {"@type": "Location", "name": ev.location}},
        "keywords": {c: True for c in ev.categories},
    }
    if ev.all_day:
        obj["showWithoutTime"] = True
    elif ev.zone == "UTC":
        obj["timeZone"] = "Etc/UTC"
    else:
        obj["timeZone"] = ev.zone
    if ev.rrule:
        r = ev.rrule
        rule: dict = {"@type": "RecurrenceRule", "frequency": r["freq"]}
        if "byday" in r:
            rule["byDay"] = [{"@type": "NDay", "day": d.lower()} for d in r["byday"]]
        if "count" in r:
            rule["count"] = r["count"]
        if "until" in r:  # the instant to_ics's UNTIL names (UTC), in the event's zone
            rule["until"] = _until_local(ev, r["until"])
        obj["recurrenceRules"] = [rule]
        if ev.exdate:
            obj["recurrenceOverrides"] = {
                ev.exdate.strftime("%Y-%m-%dT%H:%M:%S"): {"excluded": True}
            }
    if ev.organizer:
        obj["replyTo"] = {"imip": f"mailto:{ev.organizer[1]}"}
        parts = {}
        for k, (name, email, partstat) in enumerate(ev.attendees):
            roles = {"attendee": True}
            if email == ev.organizer[1]:
                roles["owner"] = True
            parts[f"p{k}"] = {
                "@type": "Participant",
                "name": name,
                "sendTo": {"imip": f"mailto:{email}"},
                "roles": roles,
                "kind": "individual",
                "participationStatus": partstat.lower(),
                "expectReply": False,
            }
        obj["participants"] = parts
    if ev.alarms:
        obj["alerts"] = {
            f"a{k}": {
                "@type": "Alert",
                "trigger": {"@type": "OffsetTrigger", "offset": f"-PT{m}M", "relativeTo": "start"},
                "action": "display",
            }
            for k, m in enumerate(ev.alarms)
        }
    return obj


class _SkipInterim(http.client.HTTPResponse):
    """An http.client response that skips interim 1xx answers such as "102 Processing"."""

    def _read_status(self):  # type: ignore[no-untyped-def]
        while True:
            version, status, reason = super()._read_status()
            if 100 <= status < 200 and status != 101:
                http.client._read_headers(self.fp)  # type: ignore[attr-defined]
                continue
            return version, status, reason


def _request(user, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    """One request as ``user`` straight to the server (not through a benchmark proxy),
    surviving Cyrus's interim "102 Processing"."""
    conn = http.client.HTTPConnection("127.0.0.1", user.server.http_port, timeout=600)
    conn.response_class = _SkipInterim
    try:
        conn.request(method, path, body, {"Authorization": user.auth_header(), **headers})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def jmap_call(user, method_calls: list) -> list:
    """Like harness.CyrusUser.jmap, but survives Cyrus's interim "102 Processing"."""
    body = json.dumps(
        {
            "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:calendars"],
            "methodCalls": method_calls,
        }
    ).encode()
    status, data = _request(user, "POST", "/jmap/", body, {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError(f"JMAP request failed: HTTP {status}: {data[:500]!r}")
    return json.loads(data)["methodResponses"]


_CALENDAR_DATA = re.compile(
    rb"<[A-Za-z]*:?calendar-data[^>]*>(.*?)</[A-Za-z]*:?calendar-data>", re.S
)


def caldav_files(user, calendar: str = "Default") -> list[bytes]:
    """Every event of the user's calendar as Cyrus serves it over CalDAV (one
    calendar-query REPORT): the bytes a vdirsyncer vdir synced with this server holds."""
    body = (
        b'<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
        b'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
        b'<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
        b"</C:comp-filter></C:filter></C:calendar-query>"
    )
    path = f"/dav/calendars/user/{user.name}/{calendar}/"
    headers = {"Depth": "1", "Content-Type": "application/xml"}
    status, data = _request(user, "REPORT", path, body, headers)
    if status != 207:
        raise RuntimeError(f"CalDAV REPORT failed: HTTP {status}: {data[:500]!r}")
    out = []
    for raw in _CALENDAR_DATA.findall(data):
        text = raw.strip()
        if text.startswith(b"<![CDATA["):
            text = text[len(b"<![CDATA[") : -len(b"]]>")]
        else:
            text = html.unescape(text.decode()).encode()
        out.append(text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return out


def seed_jmap(user, events: list[Event], calendar_id: str = "Default", batch: int = 500) -> float:
    """Create the events on the server with CalendarEvent/set, `batch` per call; seconds taken.

    Cyrus creates about 120-150 events a second here whatever the batch size.  A long
    request gets an interim "102 Processing" first, which http.client would take for the
    final answer (harness.CyrusUser.jmap does), hence jmap_call.
    """
    t0 = time.perf_counter()
    for lo in range(0, len(events), batch):
        chunk = events[lo : lo + batch]
        create = {f"c{lo + k}": to_jscal(ev, calendar_id) for k, ev in enumerate(chunk)}
        ((name, body, _),) = jmap_call(
            user,
            [
                [
                    "CalendarEvent/set",
                    {"accountId": user.name, "create": create, "sendSchedulingMessages": False},
                    "s",
                ]
            ],
        )
        if name != "CalendarEvent/set" or body.get("notCreated"):
            bad = body.get("notCreated") or body
            sample = dict(list(bad.items())[:3]) if isinstance(bad, dict) else bad
            raise RuntimeError(f"seeding failed: {name}: {sample}")
    return time.perf_counter() - t0


def jmap_warm(user, ids: list[str], batch: int = 1000) -> float:
    """Read every event once with CalendarEvent/get (not measured); seconds taken.

    Cyrus keeps each event's JSCalendar in a cache filled on first read: reading 3,000
    fresh events took 0.83 s, and 0.31-0.33 s every time after.  A server in use has it
    filled; the benchmark warms it as it warms Radicale's item cache on the other side.
    """
    t0 = time.perf_counter()
    for lo in range(0, len(ids), batch):
        ((name, body, _),) = jmap_call(
            user,
            [["CalendarEvent/get", {"accountId": user.name, "ids": ids[lo : lo + batch]}, "g"]],
        )
        if name != "CalendarEvent/get" or len(body.get("list", [])) != len(ids[lo : lo + batch]):
            raise RuntimeError(f"warming the server's cache failed: {name}")
    return time.perf_counter() - t0


def jmap_ids(user) -> list[str]:
    ((_, body, _),) = jmap_call(user, [["CalendarEvent/query", {"accountId": user.name}, "q"]])
    return body["ids"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("target", choices=["vdir", "cyrus", "stats"])
    ap.add_argument("dir", nargs="?", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args(argv)
    events = make_events(args.n)
    if args.target == "stats":
        sizes = [len(to_ics(e).encode()) for e in events]
        print(
            f"{len(events)} events, ics mean {sum(sizes) / len(sizes):.0f} B, "
            f"recurring {sum(1 for e in events if e.rrule)}, all-day {sum(e.all_day for e in events)}, "
            f"alarms {sum(1 for e in events if e.alarms)}, attendees {sum(1 for e in events if e.organizer)}"
        )
        return 0
    if args.target == "vdir":
        if args.dir is None:
            ap.error("vdir needs a directory")
        total = write_vdir(args.dir, events)
        print(f"wrote {len(events)} files, {total} bytes, into {args.dir}")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cyrus"))
    import harness

    server = harness.CyrusServer.start()
    user = server.add_user("bench")
    took = seed_jmap(user, events)
    print(
        f"seeded {len(events)} events in {took:.1f}s; {user.base_url} {user.name} {user.password}"
    )
    print("Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        server.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
