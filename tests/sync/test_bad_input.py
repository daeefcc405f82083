"""Bad input on either side: a clear message naming the file or item, nothing lost."""

from __future__ import annotations

import contextlib
import os

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def problems(result) -> list[str]:
    return result.errors + [e for c in result.collections for e in c.errors]


def seeded(pair, n: int = 3):
    for i in range(n):
        pair.server.put_event(
            {"@type": "Event", "uid": f"ev{i}", "title": f"E{i}", "start": "2026-03-01T10:00:00"}
        )
    assert pair.sync().ok
    return pair.root / "personal"


def test_broken_files_are_reported_by_name_and_the_rest_syncs(pair):
    d = seeded(pair)
    (d / "empty.ics").write_bytes(b"")
    (d / "binary.ics").write_bytes(os.urandom(4096))
    (d / "invalid.ics").write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY\r\n")
    (d / "fine.ics").write_text(ICS.format(uid="fine", title="Fine"))
    result = pair.sync()
    text = "\n".join(problems(result))
    for name in ("empty.ics", "binary.ics", "invalid.ics"):
        assert name in text, text
    assert "fine" in {e["uid"] for e in pair.server.events.values()}
    assert len(pair.server.events) == 4  # nothing deleted remotely
    for name in ("empty.ics", "binary.ics", "invalid.ics"):
        assert (d / name).exists()  # and nothing touched locally


def test_a_huge_file_is_skipped_with_its_size(pair):
    d = seeded(pair)
    with open(d / "huge.ics", "wb") as f:
        f.truncate(50 * 1024 * 1024)
    result = pair.sync()
    assert any("huge.ics" in p and "limit" in p for p in problems(result)), problems(result)
    assert len(pair.server.events) == 3
    assert (d / "huge.ics").stat().st_size == 50 * 1024 * 1024


def test_two_files_with_one_uid_are_reported_and_the_rest_syncs(pair):
    d = seeded(pair)
    (d / "a.ics").write_text(ICS.format(uid="twin", title="A"))
    (d / "b.ics").write_text(ICS.format(uid="twin", title="B"))
    (d / "c.ics").write_text(ICS.format(uid="single", title="C"))
    result = pair.sync()
    text = "\n".join(problems(result))
    assert "twin" in text and "a.ics" in text and "b.ics" in text, text
    assert "single" in {e["uid"] for e in pair.server.events.values()}
    assert (d / "a.ics").exists() and (d / "b.ics").exists()


def test_a_file_without_uid_gets_a_stable_one_written_back(pair):
    d = seeded(pair)
    text = ICS.format(uid="x", title="No UID").replace("UID:x\r\n", "")
    (d / "nouid.ics").write_text(text)
    assert pair.sync().ok
    written = (d / "nouid.ics").read_text()
    assert "UID:" in written
    uid = next(line[4:] for line in written.splitlines() if line.startswith("UID:"))
    assert uid in {e["uid"] for e in pair.server.events.values()}
    assert pair.sync().changes == 0  # stable: not re-derived each pass


def test_a_symlink_out_of_the_vdir_is_not_followed(pair, tmp_path):
    d = seeded(pair)
    secret = tmp_path / "outside.ics"
    secret.write_text(ICS.format(uid="outside", title="Outside"))
    (d / "link.ics").symlink_to(secret)
    result = pair.sync()
    assert "outside" not in {e["uid"] for e in pair.server.events.values()}
    assert any("link.ics" in p for p in problems(result)), problems(result)
    assert secret.read_text().startswith("BEGIN:VCALENDAR")


def test_hostile_uids_and_calendar_names_from_the_server_stay_inside(pair):
    pair.server.calendars["evil"] = {
        "id": "evil",
        "name": "../../etc\0" + "x" * 1000,
        "myRights": {"mayWriteAll": True},
    }
    for uid in ("../../escape", "a/b", "nul\0byte", "u" * 1000):
        pair.server.put_event(
            {"@type": "Event", "uid": uid, "title": "t", "start": "2026-03-01T10:00:00"},
            calendar="evil",
        )
    result = pair.sync()
    assert result.ok, problems(result)
    outside = [p for p in pair.tmp.rglob("*.ics") if pair.root not in p.parents]
    assert outside == []
    files = list(pair.root.rglob("*.ics"))
    assert len(files) == 4
    assert all(len(p.name) <= 255 and len(p.parent.name) <= 255 for p in files)
    assert pair.sync().changes == 0


def test_invalid_jscalendar_from_the_server_is_reported_not_written(pair):
    d = seeded(pair)
    pair.server.put_event({"@type": "Event", "uid": "broken", "start": 12345, "title": ["no"]})
    result = pair.sync()
    assert any("broken" in p for p in problems(result)), problems(result)
    assert sorted(p.name for p in d.glob("*.ics")) == ["ev0.ics", "ev1.ics", "ev2.ics"]


def test_a_full_disk_is_reported_and_the_items_arrive_once_there_is_room(pair):
    """A real full filesystem (a small tmpfs): the pass says what failed and why, nothing
    is lost or half-written, and the next pass after some room is made brings the rest."""
    import subprocess

    import pytest

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    _mount_tmpfs(pair.root, "512k")
    try:
        filler = pair.root / ".filler"
        filler.write_bytes(b"x" * 400_000)
        for i in range(60):
            pair.server.put_event(
                {"@type": "Event", "uid": f"ev{i}", "title": f"E{i} " + "words " * 40,
                 "start": "2026-03-01T10:00:00", "timeZone": "Europe/Berlin"}
            )  # fmt: skip
        first = pair.sync()
        assert not first.ok
        text = "\n".join(problems(first))
        assert "No space left on device" in text and "free some space on the disk" in text, text
        written = list((pair.root / "personal").glob("*.ics"))
        assert len(written) < 60
        for path in written:  # whatever is there is whole
            assert path.read_text().rstrip().endswith("END:VCALENDAR")
        assert not list((pair.root / "personal").glob(".syncd-*"))  # no temp left behind
        assert len(pair.server.events) == 60  # the server lost nothing

        filler.unlink()
        second = pair.sync()
        assert second.ok, second.summary()
        assert len(list((pair.root / "personal").glob("*.ics"))) == 60
        assert pair.sync().changes == 0
    finally:
        subprocess.run(["umount", "-l", str(pair.root)], check=False)


def test_a_full_disk_under_the_journal_is_a_clear_error_and_the_next_pass_recovers(pair):
    import subprocess

    import pytest

    from syncd.journal import JournalError

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    state = pair.tmp / "state"
    state.mkdir(exist_ok=True)
    _mount_tmpfs(state, "4m")
    try:
        assert pair.sync().ok  # the journal exists and is small
        filler = state / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):  # fill the rest of the disk
            while True:
                os.write(fd, b"x" * 4096)
        os.close(fd)
        for i in range(200):
            pair.server.put_event(
                {"@type": "Event", "uid": f"ev{i}", "title": "T" * 300,
                 "start": "2026-03-01T10:00:00"}
            )  # fmt: skip
        with pytest.raises(JournalError) as info:
            pair.sync()
        message = str(info.value)  # at opening (WAL files) or at commit, by how full
        assert "free space" in message or "free some space" in message, message
        assert "move it away" not in message
        filler.unlink()
        result = pair.sync()
        assert result.ok, result.summary()
        assert len(list((pair.root / "personal").glob("*.ics"))) == 200
        assert pair.sync().changes == 0
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def _mount_tmpfs(where, size: str) -> None:
    """A real, small filesystem to fill up; skipped where mounting is not allowed."""
    import subprocess

    import pytest

    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_an_items_error_is_forgotten_once_it_syncs(pair):
    from syncd.journal import Journal

    seeded(pair)
    pair.server.put_event({"@type": "Event", "uid": "odd", "title": "Odd", "start": 20260301})
    result = pair.sync()
    assert any("odd" in p for p in problems(result)), problems(result)

    def errors():
        journal = Journal(pair.config_path.parent / "state" / "cal.sqlite3")
        try:
            return [(e[1], e[2]) for e in journal.errors()]
        finally:
            journal.close()

    assert errors() == [("odd", "remote")]
    pair.server.put_event(
        {"@type": "Event", "uid": "odd", "title": "Odd", "start": "2026-03-01T10:00:00"}
    )
    assert pair.sync().ok
    assert errors() == []
    assert "SUMMARY:Odd" in (pair.root / "personal" / "odd.ics").read_text()
