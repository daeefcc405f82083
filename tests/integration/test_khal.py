"""Interop with real khal (from PyPI): what syncd writes from Cyrus, khal shows right,
and what khal writes, syncd sends to Cyrus.

khal reads the vdir through the config shipped in contrib/khal/config (type = discover
over the pair's root), with only the paths changed, and runs under a chosen TZ: the
local times it prints are checked against the instants the server holds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_cyrus_sync import jmap_event

pytestmark = [
    pytest.mark.cyrus,
    pytest.mark.skipif(shutil.which("khal") is None, reason="khal is not installed"),
]

REPO = Path(__file__).resolve().parents[2]
FORMAT = "{calendar}|{start}|{end}|{title}|{repeat-symbol}"


def khal_config(tmp: Path, root: Path) -> Path:
    """contrib/khal/config with this test's paths (and its own khal database)."""
    text = (REPO / "contrib" / "khal" / "config").read_text()
    text = text.replace("~/.local/share/calendars/home/*", f"{root}/*")
    text += f"\n[sqlite]\n  path = {tmp / 'khal.db'}\n"
    path = tmp / "khal.conf"
    path.write_text(text)
    return path


def khal(config: Path, tz: str, *args: str) -> str:
    khal_bin = shutil.which("khal") or "khal"
    done = subprocess.run(
        [khal_bin, "-c", str(config), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, TZ=tz),
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def listing(config: Path, tz: str, start: str = "2026-05-01", span: str = "40d") -> list[tuple]:
    """(day header, calendar, start, end, title, repeats) per line of `khal list`."""
    out = khal(config, tz, "list", "--format", FORMAT, "--day-format", "DAY {date}", start, span)
    rows, day = [], None
    for line in out.splitlines():
        if line.startswith("DAY "):
            day = line[4:].strip()
        elif "|" in line:
            rows.append((day, *line.split("|")))
    return rows


def by_title(rows: list[tuple], title: str) -> list[tuple]:
    return [r for r in rows if r[4] == title]


def test_events_from_cyrus_in_khal_list(cyrus_pair):
    created = cyrus_pair.set_calendars({"create": {"w": {"name": "Work", "color": "#3a7bd5"}}})
    work = created["created"]["w"]["id"]
    berlin = jmap_event("timed@x", "Timed", "Default", day=4)  # 09:00 Berlin = 07:00Z
    late = {
        **jmap_event("late@x", "Late", work, day=10),
        "start": "2026-05-10T02:00:00",  # 00:00Z: the evening before in New York
    }
    weekly = {
        "@type": "Event",
        "uid": "weekly@x",
        "title": "Weekly",
        "start": "2026-05-05T18:00:00",
        "timeZone": "Europe/London",  # 17:00Z in May
        "duration": "PT30M",
        "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly", "count": 3}],
        "calendarIds": {"Default": True},
    }
    allday = {
        "@type": "Event",
        "uid": "allday@x",
        "title": "Holiday",
        "start": "2026-05-07T00:00:00",
        "duration": "P1D",
        "showWithoutTime": True,
        "calendarIds": {work: True},
    }
    cyrus_pair.set_events({"create": {"a": berlin, "b": late, "c": weekly, "d": allday}})
    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    config = khal_config(cyrus_pair.tmp, cyrus_pair.root)

    # the calendars are discovered with their names and colours from the vdir
    assert set(khal(config, "UTC", "printcalendars").split()) == {"personal", "Work"}

    expected = {
        "America/New_York": {  # UTC-4 in May
            "Timed": [("2026-05-04", "2026-05-04 03:00", "2026-05-04 04:00")],
            "Late": [("2026-05-09", "2026-05-09 20:00", "2026-05-09 21:00")],
            "Weekly": [
                ("2026-05-05", "2026-05-05 13:00", "2026-05-05 13:30"),
                ("2026-05-12", "2026-05-12 13:00", "2026-05-12 13:30"),
                ("2026-05-19", "2026-05-19 13:00", "2026-05-19 13:30"),
            ],
        },
        "Asia/Tokyo": {  # UTC+9
            "Timed": [("2026-05-04", "2026-05-04 16:00", "2026-05-04 17:00")],
            "Late": [("2026-05-10", "2026-05-10 09:00", "2026-05-10 10:00")],
            "Weekly": [
                ("2026-05-06", "2026-05-06 02:00", "2026-05-06 02:30"),
                ("2026-05-13", "2026-05-13 02:00", "2026-05-13 02:30"),
                ("2026-05-20", "2026-05-20 02:00", "2026-05-20 02:30"),
            ],
        },
    }
    for tz, titles in expected.items():
        rows = listing(config, tz)
        for title, want in titles.items():
            got = [(r[0], r[2], r[3]) for r in by_title(rows, title)]
            assert got == want, (tz, title, rows)
        # recurring instances are marked as such, the others not
        assert all(r[5] for r in by_title(rows, "Weekly"))
        assert not any(r[5] for r in by_title(rows, "Timed"))
        assert {r[1] for r in by_title(rows, "Late")} == {"Work"}
        # all day: on its date, in every zone, and only that day
        holiday = by_title(rows, "Holiday")
        assert [(r[0], r[2]) for r in holiday] == [("2026-05-07", "2026-05-07")], (tz, rows)
        assert len(rows) == 6, rows


def test_an_event_made_with_khal_new_reaches_the_server(cyrus_pair):
    assert cyrus_pair.sync().ok  # the default calendar's directory and displayname
    config = khal_config(cyrus_pair.tmp, cyrus_pair.root)
    khal(
        config,
        "Europe/Paris",
        "new",
        "-a",
        "personal",
        "--location",
        "Salle 2",
        "2026-06-01 10:00",
        "11:30",
        "Made in khal",
    )
    (path,) = [p for p in cyrus_pair.root.rglob("*.ics")]
    before = path.read_bytes()
    stat_before = path.stat()

    result = cyrus_pair.sync()
    assert result.ok, result.summary()
    assert sum(c.uploaded for c in result.collections) == 1
    (event,) = [e for e in cyrus_pair.events().values() if e.get("title") == "Made in khal"]
    assert event["start"] == "2026-06-01T10:00:00"
    assert event["timeZone"] == "Europe/Paris"
    assert event["duration"] == "PT1H30M"
    assert [loc.get("name") for loc in (event.get("locations") or {}).values()] == ["Salle 2"]
    assert "Default" in event["calendarIds"]
    # khal's file stays as khal wrote it, and khal still lists the event once
    assert path.read_bytes() == before and path.stat().st_ino == stat_before.st_ino
    rows = listing(config, "Europe/Paris", "2026-06-01", "1d")
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("2026-06-01 10:00", "2026-06-01 11:30", "Made in khal")
    ]

    # and an edit on the server comes back to khal
    cyrus_pair.set_events({"update": {event["id"]: {"title": "Renamed on the server"}}})
    assert cyrus_pair.sync().ok
    rows = listing(config, "Europe/Paris", "2026-06-01", "1d")
    assert [r[4] for r in rows] == ["Renamed on the server"]


def test_khal_finds_no_duplicate_or_stray_files(cyrus_pair):
    """khal reads every *.ics in a calendar directory: syncd's temporaries (dot files)
    and its meta files must not show up as events."""
    cyrus_pair.set_events({"create": {"a": jmap_event("one@x", "One", "Default", day=2)}})
    assert cyrus_pair.sync().ok
    names = [p.name for p in cyrus_pair.root.rglob("*") if p.is_file()]
    assert not [n for n in names if n.startswith(".")], names
    config = khal_config(cyrus_pair.tmp, cyrus_pair.root)
    rows = listing(config, "UTC")
    assert [r[4] for r in rows] == ["One"]
    assert re.fullmatch(r"2026-05-02 07:00", rows[0][2])


def test_khal_reads_a_calendar_swapped_in_whole_and_nothing_else(cyrus_pair, monkeypatch):
    """A big first download is written whole in a hidden directory and swapped in
    (VdirCollection.begin_whole): khal, pointed at the root with `type = discover`,
    finds the one calendar with every event, and nothing of the hidden directory."""
    from syncd.sync import engine

    monkeypatch.setattr(engine, "WHOLE_MIN", 10)
    cyrus_pair.set_events(
        {
            "create": {
                f"w{i}": jmap_event(f"whole-{i}@x", f"Whole {i}", "Default", 1 + i)
                for i in range(25)
            }
        }
    )
    (cyrus_pair.root / f".syncd-new-{'0' * 12}.tmp").mkdir()  # as a killed pass leaves it
    (cyrus_pair.root / f".syncd-new-{'0' * 12}.tmp" / "stray.ics").write_text(
        "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    )
    assert cyrus_pair.sync().ok
    config = khal_config(cyrus_pair.tmp, cyrus_pair.root)
    rows = listing(config, "UTC")
    assert sorted(r[4] for r in rows) == sorted(f"Whole {i}" for i in range(25))
