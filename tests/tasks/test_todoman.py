"""Real todoman (from PyPI) on the pair's vdir, the server over loopback HTTP.

todoman is configured with contrib/todoman/config.py (paths replaced), and runs as a
subprocess, as a user would run it: ``todo new``, ``todo edit``, ``todo done``,
``todo delete`` and ``todo list``.
"""

from __future__ import annotations

import json

import pytest

from tests.tasks.conftest import task

pytest.importorskip("todoman")


def todo_id(todo, summary: str) -> str:
    for item in json.loads(todo("--porcelain", "list", "--status", "ANY")):
        if item["summary"] == summary:
            return str(item["id"])
    raise AssertionError(f"{summary!r} not in todo list")


def porcelain(todo, summary: str) -> dict:
    for item in json.loads(todo("--porcelain", "list", "--status", "ANY")):
        if item["summary"] == summary:
            return item
    raise AssertionError(f"{summary!r} not in todo list")


@pytest.fixture
def synced(tasks_pair):
    """A first pass made the server's default task list a directory todoman sees."""
    assert tasks_pair.sync().ok
    assert (tasks_pair.root / "tasks" / "displayname").exists()
    return tasks_pair


def test_todo_new_reaches_the_server(synced, todo):
    todo("new", "-l", "tasks", "--due", "2026-03-01 10:00", "--priority", "high", "Buy milk")
    result = synced.sync()
    assert result.ok, result
    [got] = [t for t in synced.server.tasks.values() if t["title"] == "Buy milk"]
    assert got["taskListId"] == "Tasks"
    assert got["due"] == "2026-03-01T10:00:00" and got.get("timeZone") in ("Etc/UTC", None)
    assert got["priority"] == 4  # todoman's "high"
    assert got.get("progress") == "needs-action"
    assert synced.sync().changes == 0  # nothing comes back to the file


def test_todo_done_reaches_the_server(synced, todo):
    synced.server.put_task(task("t-done", "Pay rent"))
    synced.sync()
    todo("done", todo_id(todo, "Pay rent"))
    assert synced.sync().ok
    got = synced.server.task_by_uid("t-done")
    assert got["progress"] == "completed"
    assert got["percentComplete"] == 100
    assert got["progressUpdated"].endswith("Z")


def test_todo_edit_reaches_the_server(synced, todo):
    synced.server.put_task(task("t-edit", "Call mum", priority=9))
    synced.sync()
    todo(
        "edit", todo_id(todo, "Call mum"), "--due", "2026-04-02 18:30", "--priority", "medium",
        "-c", "family", "--location", "Home",
    )  # fmt: skip
    assert synced.sync().ok
    got = synced.server.task_by_uid("t-edit")
    assert got["due"] == "2026-04-02T18:30:00"
    assert got["priority"] == 5
    assert got["keywords"] == {"family": True}
    assert [loc["name"] for loc in got["locations"].values()] == ["Home"]


def test_todo_delete_reaches_the_server(synced, todo):
    synced.server.put_task(task("t-del", "Obsolete"))
    synced.server.put_task(task("t-keep", "Keep"))
    synced.sync()
    todo("delete", "--yes", todo_id(todo, "Obsolete"))
    assert synced.sync().ok
    assert synced.server.task_by_uid("t-del") is None
    assert synced.server.task_by_uid("t-keep") is not None


def test_a_task_changed_on_the_server_shows_in_todo_list(synced, todo):
    synced.server.put_task(task("t-srv", "Old title"))
    synced.sync()
    assert "Old title" in todo("list")
    synced.server.put_task(
        task("t-srv", "New title from the phone", due="2026-05-01T09:00:00", timeZone="Etc/UTC")
    )
    assert synced.sync().ok
    out = todo("list")
    assert "New title from the phone" in out and "Old title" not in out
    assert "2026-05-01 09:00" in out
    # completed on the server: gone from the default listing, there with --status ANY
    synced.server.put_task(
        task("t-srv", "New title from the phone", progress="completed", percentComplete=100)
    )
    synced.sync()
    assert "New title from the phone" not in todo("list")
    assert porcelain(todo, "New title from the phone")["completed"] is True


def test_subtasks_keep_their_parent_through_todoman_edits(synced, todo):
    parent_rel = {"parent-1": {"@type": "Relation", "relation": {"parent": True}}}
    synced.server.put_task(task("parent-1", "Plan the trip"))
    synced.server.put_task(task("child-1", "Book the train", relatedTo=parent_rel))
    synced.sync()
    child_file = synced.root / "tasks" / "child-1.ics"
    assert "RELATED-TO:parent-1" in child_file.read_text()
    todo("edit", todo_id(todo, "Book the train"), "--priority", "high")
    assert synced.sync().ok
    todo("done", todo_id(todo, "Book the train"))
    assert synced.sync().ok
    got = synced.server.task_by_uid("child-1")
    assert got["relatedTo"] == parent_rel
    assert got["priority"] == 4 and got["progress"] == "completed"
    assert "RELATED-TO:parent-1" in child_file.read_text()


def test_a_subtask_written_locally_goes_up_with_its_parent(synced, todo):
    todo("new", "-l", "tasks", "Renovate")
    synced.sync()
    [parent] = [t for t in synced.server.tasks.values() if t["title"] == "Renovate"]
    d = synced.root / "tasks"
    (d / "sub.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\nUID:sub-1\r\n"
        "DTSTAMP:20260101T000000Z\r\nSUMMARY:Buy paint\r\n"
        f"RELATED-TO;RELTYPE=PARENT:{parent['uid']}\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    todo("edit", todo_id(todo, "Buy paint"), "--due", "2026-06-01 12:00")
    assert synced.sync().ok
    got = synced.server.task_by_uid("sub-1")
    assert got["relatedTo"] == {parent["uid"]: {"@type": "Relation", "relation": {"parent": True}}}
    assert got["due"] == "2026-06-01T12:00:00"


def test_a_new_list_made_for_todoman_becomes_a_task_list(synced, todo):
    d = synced.root / "shopping"
    d.mkdir()
    (d / "displayname").write_text("Shopping\n")
    synced.sync()  # empty: it waits for its first item
    todo("new", "-l", "Shopping", "Milk")
    assert synced.sync().ok
    lists = {tl["name"]: tl["id"] for tl in synced.server.task_lists.values()}
    assert "Shopping" in lists
    [milk] = [t for t in synced.server.tasks.values() if t["title"] == "Milk"]
    assert milk["taskListId"] == lists["Shopping"]
    assert "Shopping" not in {c["name"] for c in synced.server.calendars.values()}
