"""`syncd status`: per pair and collection, read-only, safe next to a running daemon."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time

from syncd.cli import main
from syncd.journal import Journal
from tests.ux.conftest import event


def status(pair, capsys, *extra: str) -> tuple[int, str]:
    code = main(["-c", str(pair.config_path), "status", *extra])
    return code, capsys.readouterr().out


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_never_synced_creates_nothing(pair, capsys):
    code, out = status(pair, capsys)
    assert code == 0
    assert "never synced" in out and "syncd sync cal" in out
    assert not (pair.tmp / "state").exists()  # looking is not touching


def test_items_on_each_side_per_collection(pair, capsys):
    pair.server.calendars["Work"] = {"id": "Work", "name": "Work", "myRights": {}}
    for i in range(3):
        pair.server.put_event(event(f"p{i}"))
    pair.server.put_event(event("w0"), calendar="Work")
    assert pair.sync().ok
    # a file made locally since the pass counts on the local side only
    src = next((pair.root / "personal").glob("*.ics"))
    (pair.root / "personal" / "new.ics").write_bytes(
        src.read_bytes().replace(b"UID:p", b"UID:new-p")
    )

    code, out = status(pair, capsys, "--json")
    assert code == 0
    (report,) = json.loads(out)
    colls = {c["dir"]: c for c in report["collections"]}
    assert colls["personal"]["local_files"] == 4
    assert colls["personal"]["server_items"] == 3
    assert colls["personal"]["items"] == 3
    assert colls["Work"]["local_files"] == 1 and colls["Work"]["server_items"] == 1
    assert colls["personal"]["local_changes"] == 1  # the new file, waiting for a pass
    assert colls["Work"]["local_changes"] == 0
    assert report["last_pass"] is None or "ok" in report["last_pass"]

    code, out = status(pair, capsys)
    assert code == 0
    assert "COLLECTION" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("personal"))
    assert line.split()[:3] == ["personal", "4", "3"]
    assert "pending:    1 local change(s) the next pass sends" in out

    # an edit and a deletion count too; a pass carries them all
    work = next((pair.root / "Work").glob("*.ics"))
    work.write_bytes(work.read_bytes().replace(b"SUMMARY:", b"SUMMARY:Edited "))
    src.unlink()
    (report,) = json.loads(status(pair, capsys, "--json")[1])
    colls = {c["dir"]: c for c in report["collections"]}
    assert colls["personal"]["local_changes"] == 2 and colls["Work"]["local_changes"] == 1
    assert pair.sync().ok
    (report,) = json.loads(status(pair, capsys, "--json")[1])
    assert [c["local_changes"] for c in report["collections"]] == [0, 0]


def test_pass_result_errors_pending_and_conflicts(pair, capsys):
    pair.server.put_event(event("a"))
    assert pair.sync().ok
    journal = Journal(pair.tmp / "state" / "cal.sqlite3")
    try:
        with journal.transaction():
            pid = journal.start_pass()
            journal.finish_pass(pid, False, "cal: 1 problem(s); up 0, down 0")
            journal.record_error("Default", "bad@x", "local", "not valid iCalendar line 3")
            journal.add_pending_remote(["E99"], "failed item")
            journal.record_conflict("Default", "a", "remote-wins", "{}", "{}", "remote")
    finally:
        journal.close()

    code, out = status(pair, capsys)
    assert code == 1  # something needs attention
    assert "FAILED" in out
    assert "personal/bad@x (local side, 1x): not valid iCalendar line 3" in out
    assert "1 server item(s) to fetch again (failed item)" in out
    assert "1 in the last 30 days" in out and "syncd conflicts" in out

    code, out = status(pair, capsys, "--json")
    (report,) = json.loads(out)
    assert report["errors"][0]["reason"] == "not valid iCalendar line 3"
    assert report["errors"][0]["collection"] == "personal"
    assert report["pending"][0]["reason"] == "failed item"
    assert report["conflicts"] == 1
    assert report["recent_conflicts"][0]["uid"] == "a"
    assert report["last_pass"]["ok"] is False


def test_push_state_from_the_running_daemon(pair, capsys):
    pair.server.put_event(event("a"))
    assert pair.sync().ok
    daemon = pair.tmp / "state" / "daemon.json"

    def write(pid: int, push: str, updated: float | None = None) -> None:
        daemon.write_text(
            json.dumps(
                {
                    "cal": {
                        "pid": pid,
                        "updated": updated or time.time(),
                        "push": push,
                        "passes": 3,
                        "last": "ok",
                        "error": None,
                    }
                }
            )
        )

    write(os.getpid(), "connected")  # this process stands in for a live daemon
    code, out = status(pair, capsys)
    assert code == 0
    assert "running (pid" in out and "push connected" in out
    (report,) = json.loads(status(pair, capsys, "--json")[1])
    assert report["daemon"]["push_connected"] is True

    write(os.getpid(), "polling (the server answered HTTP 404)")
    code, out = status(pair, capsys)
    assert code == 1
    assert "! push is not connected (polling (the server answered HTTP 404))" in out

    dead = 2**22 + 12345  # above pid_max on most systems
    write(dead, "connected", updated=time.time() - 86400)
    code, out = status(pair, capsys)
    assert "daemon:     not running" in out and "push connected" not in out


def test_reads_while_a_writer_holds_the_journal(pair, capsys):
    """The daemon in the middle of a pass holds a write transaction; status neither
    waits for it nor sees its uncommitted rows, and changes no byte of the journal."""
    for i in range(3):
        pair.server.put_event(event(f"e{i}"))
    assert pair.sync().ok
    journal_file = pair.tmp / "state" / "cal.sqlite3"
    old = Journal(journal_file)
    with old.transaction():  # a conflict older than 30 days: `conflicts` would prune it
        cid = old.record_conflict("Default", "e0", "remote-wins", "{}", "{}", "remote")
        old.db.execute("UPDATE conflicts SET decided_at = 0 WHERE id = ?", (cid,))
    old.close()

    writer = sqlite3.connect(str(journal_file), isolation_level=None, timeout=1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO items (collection, uid, filename) VALUES ('Default', 'uncommitted', 'u.ics')"
    )
    before = digest(journal_file)
    started = time.monotonic()
    try:
        code, out = status(pair, capsys, "--json")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert time.monotonic() - started < 5
    (report,) = json.loads(out)
    assert report["collections"][0]["items"] == 3  # the committed state
    assert digest(journal_file) == before
    check = sqlite3.connect(str(journal_file))
    assert check.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 1
    check.close()


def test_status_never_prints_the_password(pair, capsys):
    pair.server.put_event(event("a"))
    pair.sync()
    for extra in ((), ("--json",)):
        _, out = status(pair, capsys, *extra)
        assert pair.server.password not in out
