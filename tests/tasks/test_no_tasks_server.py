"""A server without urn:ietf:params:jmap:tasks (Cyrus 3.12): said clearly, nothing lost."""

from __future__ import annotations

import json

from tests.support.httppair import VEVENT
from tests.tasks.conftest import task, vtodo


def _todoman_dir(h, name: str = "chores", n: int = 8) -> dict[str, bytes]:
    d = h.root / name
    d.mkdir()
    (d / "displayname").write_text("Chores\n")
    for i in range(n):
        (d / f"c{i}.ics").write_text(vtodo(f"c{i}", f"Chore {i}"))
    return {p.name: p.read_bytes() for p in d.iterdir()}


def test_discover_says_tasks_are_not_available(no_tasks_pair):
    code, out, err = no_tasks_pair.cli("discover")
    assert code == 0, err
    assert "tasks: not available on this server" in out


def test_status_says_tasks_are_not_available(no_tasks_pair):
    assert no_tasks_pair.sync().ok
    code, out, _ = no_tasks_pair.cli("status")
    assert "tasks:      not available on this server" in out
    code, out, _ = no_tasks_pair.cli("status", "--json")
    assert json.loads(out)[0]["tasks"] == "not available on this server"


def test_sync_is_ok_and_says_so_with_verbose(no_tasks_pair):
    _todoman_dir(no_tasks_pair)
    code, out, err = no_tasks_pair.cli("-v", "sync")
    assert code == 0, err
    assert "tasks are not available on this server" in err
    assert "chores" in err  # the task list left alone is named


def test_local_task_lists_are_never_touched_nor_deleted(no_tasks_pair):
    h = no_tasks_pair
    before = _todoman_dir(h)
    for _ in range(3):
        result = h.sync()
        assert result.ok, result
    after = {p.name: p.read_bytes() for p in (h.root / "chores").iterdir()}
    assert after == before
    # nothing of it went to the server, as a calendar or otherwise
    assert {c["name"] for c in h.server.calendars.values()} == {"personal"}
    assert not h.server.events
    # the journal knows nothing of it either: a later server with tasks starts clean
    assert not (h.tmp / "state" / "tasks").exists() or not list(
        (h.tmp / "state" / "tasks").glob("*.sqlite3")
    )


def test_a_vtodo_in_a_calendar_directory_is_kept_and_reported(no_tasks_pair):
    h = no_tasks_pair
    h.sync()
    (h.root / "personal" / "todo.ics").write_text(vtodo("td", "A task"))
    (h.root / "personal" / "ev.ics").write_text(VEVENT.format(uid="ev", title="Event"))
    result = h.sync()
    problems = [e for c in result.collections for e in c.errors]
    assert any("todo.ics: holds a VTODO" in p for p in problems)
    assert h.server.by_uid("ev") is not None and h.server.by_uid("td") is None
    h.sync()
    assert (h.root / "personal" / "todo.ics").exists()


def test_types_tasks_on_a_server_without_tasks_syncs_nothing_and_deletes_nothing(no_tasks_pair):
    h = no_tasks_pair
    h.write_config(types="[tasks]")
    before = _todoman_dir(h)
    result = h.sync()
    assert result.ok
    assert any("not available on this server" in n for n in result.notes)
    assert {p.name: p.read_bytes() for p in (h.root / "chores").iterdir()} == before


def test_the_server_losing_tasks_keeps_the_synced_task_lists(tasks_pair):
    """Tasks synced once, then the server stops offering them (a downgrade, a config
    change): local tasks stay, and come back into sync when the server has them again."""
    h = tasks_pair
    for i in range(8):
        h.server.put_task(task(f"t{i}"))
    assert h.sync().ok
    before = h.files()
    h.server.tasks_enabled = False
    for _ in range(2):
        assert h.sync().ok
    assert h.files() == before
    assert {c["name"] for c in h.server.calendars.values()} == {"personal"}
    h.server.tasks_enabled = True
    result = h.sync()
    assert result.ok and result.changes == 0
    assert h.files() == before
