"""`syncd convert`: both directions, -o DIR, and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncd.cli import main

EVENT = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:one@example.com\r
DTSTAMP:20240101T000000Z\r
DTSTART;TZID=Europe/London:20240301T090000\r
DTEND;TZID=Europe/London:20240301T100000\r
SUMMARY:Standup\r
RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20241231T235959Z\r
X-KHAL-THING:kept\r
END:VEVENT\r
END:VCALENDAR\r
"""

TASK = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VTODO\r
UID:task@example.com\r
DTSTAMP:20240101T000000Z\r
DUE;VALUE=DATE:20240305\r
SUMMARY:Taxes\r
PERCENT-COMPLETE:40\r
STATUS:IN-PROCESS\r
END:VTODO\r
END:VCALENDAR\r
"""


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_to_jscal_prints_a_list_per_file(tmp_path, capsys):
    path = _write(tmp_path, "standup.ics", EVENT)
    assert main(["convert", "--to", "jscal", str(path)]) == 0
    objs = json.loads(capsys.readouterr().out)
    assert isinstance(objs, list) and len(objs) == 1
    obj = objs[0]
    assert obj["@type"] == "Event"
    assert obj["uid"] == "one@example.com"
    assert obj["start"] == "2024-03-01T09:00:00"
    assert obj["timeZone"] == "Europe/London"
    assert obj["duration"] == "PT1H"
    assert obj["recurrenceRules"][0]["frequency"] == "weekly"


def test_to_jscal_several_files_one_document_each(tmp_path, capsys):
    a = _write(tmp_path, "a.ics", EVENT)
    b = _write(tmp_path, "b.ics", TASK)
    assert main(["convert", "--to", "jscal", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while pos < len(out.rstrip()):
        doc, pos = decoder.raw_decode(out, pos)
        docs.append(doc)
        while pos < len(out) and out[pos].isspace():
            pos += 1
    assert [d[0]["uid"] for d in docs] == ["one@example.com", "task@example.com"]
    assert docs[1][0]["@type"] == "Task"
    assert docs[1][0]["percentComplete"] == 40


def test_upload_flag_drops_vendor_data(tmp_path, capsys):
    path = _write(tmp_path, "standup.ics", EVENT)
    assert main(["convert", "--to", "jscal", str(path)]) == 0
    full = json.loads(capsys.readouterr().out)[0]
    # X-KHAL-THING travels in the draft's iCalComponent, not mapped
    assert full["iCalComponent"]["properties"] == [["x-khal-thing", {}, "unknown", "kept"]]
    assert main(["convert", "--to", "jscal", "--upload", str(path)]) == 0
    sent = json.loads(capsys.readouterr().out)[0]
    assert not any(":" in k for k in sent) and "iCalComponent" not in sent


def test_round_trip_through_the_command(tmp_path, capsys):
    ics = _write(tmp_path, "standup.ics", EVENT)
    out = tmp_path / "out"
    assert main(["convert", "--to", "jscal", "-o", str(out), str(ics)]) == 0
    assert capsys.readouterr().out == ""
    json_path = out / "standup.json"
    assert json_path.exists()
    assert main(["convert", "--to", "ical", "-o", str(out), str(json_path)]) == 0
    text = (out / "standup.ics").read_bytes()
    assert b"UID:one@example.com" in text
    assert b"DTSTART;TZID=Europe/London:20240301T090000" in text
    assert b"X-KHAL-THING:kept" in text
    assert b"BEGIN:VTIMEZONE" in text


def test_to_ical_prints_icalendar(tmp_path, capsys):
    obj = {
        "@type": "Task",
        "uid": "t1",
        "title": "Buy milk",
        "due": "2024-05-01T18:00:00",
        "timeZone": "Europe/Paris",
        "progress": "completed",
    }
    path = _write(tmp_path, "t1.json", json.dumps(obj).encode())
    assert main(["convert", "--to", "ical", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("BEGIN:VCALENDAR")
    assert "BEGIN:VTODO" in text
    assert "DUE;TZID=Europe/Paris:20240501T180000" in text
    assert "STATUS:COMPLETED" in text


def test_to_ical_accepts_a_jmap_get_response(tmp_path, capsys):
    resp = {"accountId": "a", "state": "1", "list": [{"@type": "Event", "uid": "e1"}]}
    path = _write(tmp_path, "resp.json", json.dumps(resp).encode())
    assert main(["convert", "--to", "ical", str(path)]) == 0
    assert "UID:e1" in capsys.readouterr().out


def test_bad_ics_names_file_and_line(tmp_path, capsys):
    bad = _write(
        tmp_path,
        "broken.ics",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nthis is not a line\r\nEND:VEVENT\r\n",
    )
    good = _write(tmp_path, "good.ics", EVENT)
    assert main(["convert", "--to", "jscal", str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:4:" in captured.err
    assert "one@example.com" in captured.out  # the other file is still converted


@pytest.mark.parametrize(
    ("name", "data", "line"),
    [
        ("empty.ics", b"", 1),
        ("binary.ics", b"\x00\x01\x02", None),
        ("latin1.ics", b"BEGIN:VCALENDAR\r\nSUMMARY:caf\xe9\r\n", 2),
        ("nothing.ics", b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", None),
    ],
)
def test_unreadable_ics(tmp_path, capsys, name, data, line):
    path = _write(tmp_path, name, data)
    assert main(["convert", "--to", "jscal", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err
    if line is not None:
        assert f"{path}:{line}:" in err


def test_bad_json_names_file_and_line(tmp_path, capsys):
    path = _write(tmp_path, "bad.json", b'[\n  {"@type": "Event",\n   "uid": }\n]\n')
    assert main(["convert", "--to", "ical", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3:" in err


@pytest.mark.parametrize(
    "doc",
    [[], [{"uid": "x"}], [{"@type": "Event"}], "text", [1]],
)
def test_json_that_is_not_jscalendar(tmp_path, capsys, doc):
    path = _write(tmp_path, "odd.json", json.dumps(doc).encode())
    assert main(["convert", "--to", "ical", str(path)]) == 1
    assert str(path) in capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.ics"
    assert main(["convert", "--to", "jscal", str(path)]) == 1
    assert str(path) in capsys.readouterr().err


def test_previous_merges_back_extras(tmp_path, capsys):
    ics = _write(tmp_path, "standup.ics", EVENT)
    assert main(["convert", "--to", "jscal", "--upload", str(ics)]) == 0
    sent = json.loads(capsys.readouterr().out)
    path = _write(tmp_path, "sent.json", json.dumps(sent).encode())
    assert main(["convert", "--to", "ical", str(path)]) == 0
    assert "X-KHAL-THING" not in capsys.readouterr().out
    assert main(["convert", "--to", "ical", "--previous", str(ics), str(path)]) == 0
    assert "X-KHAL-THING:kept" in capsys.readouterr().out


def test_to_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", "x.ics"])
    assert exc.value.code == 2


def test_upload_shows_the_jscalendar_2_names_on_request(tmp_path, capsys):
    path = _write(tmp_path, "weekly.ics", EVENT)  # RRULE:FREQ=WEEKLY;...
    assert main(["convert", "--to", "jscal", "--upload", str(path)]) == 0
    v1 = json.loads(capsys.readouterr().out)[0]
    assert v1["recurrenceRules"][0]["frequency"] == "weekly" and "version" not in v1
    argv = ["convert", "--to", "jscal", "--upload", "--jscalendar", "jscalendarbis", str(path)]
    assert main(argv) == 0
    v2 = json.loads(capsys.readouterr().out)[0]
    assert v2["recurrenceRule"]["frequency"] == "weekly" and "recurrenceRules" not in v2
    assert v2["version"] == "2.0"
