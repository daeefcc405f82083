"""Task lists and tasks both ways, through the same engine as events, over real HTTP."""

from __future__ import annotations

import json
import sqlite3

from tests.support.httppair import VEVENT
from tests.tasks.conftest import task, vtodo


def test_server_tasks_come_down_as_a_task_list_directory(tasks_pair):
    tasks_pair.server.task_lists["Tasks"]["color"] = "#ff8800"
    for i in range(5):
        tasks_pair.server.put_task(task(f"t{i}", f"Task {i}", due="2026-03-01T10:00:00"))
    result = tasks_pair.sync()
    assert result.ok, result
    d = tasks_pair.root / "tasks"
    assert (d / "displayname").read_text().strip() == "tasks"
    assert (d / "color").read_text().strip() == "#ff8800"
    files = tasks_pair.files()
    assert len(files) == 5
    assert b"BEGIN:VTODO" in files["t3.ics"] and b"SUMMARY:Task 3" in files["t3.ics"]
    assert b"DUE:20260301T100000" in files["t3.ics"]
    # calendars sit next to it, as khal and todoman expect
    assert (tasks_pair.root / "personal" / "displayname").exists()


def test_a_quiet_pass_writes_nothing_and_makes_two_api_requests(tasks_pair):
    for i in range(5):
        tasks_pair.server.put_task(task(f"t{i}"))
    tasks_pair.sync()
    before, seen = tasks_pair.mtimes(), tasks_pair.api_requests()
    result = tasks_pair.sync()
    assert result.ok and result.changes == 0
    assert tasks_pair.mtimes() == before
    # one request per type: (Calendar/get + CalendarEvent/changes...), (TaskList/get + Task/changes...)
    assert tasks_pair.api_requests() - seen == 2


def test_local_new_edit_delete_go_up_and_do_not_come_back(tasks_pair):
    for i in range(6):
        tasks_pair.server.put_task(task(f"t{i}"))
    tasks_pair.sync()
    d = tasks_pair.root / "tasks"
    (d / "new.ics").write_text(vtodo("brand-new", "Fresh", "PRIORITY:1\r\n"))
    text = (d / "t1.ics").read_text().replace("SUMMARY:Task", "SUMMARY:Edited here")
    (d / "t1.ics").write_text(text)
    (d / "t2.ics").unlink()
    result = tasks_pair.sync()
    assert result.ok, result
    s = tasks_pair.server
    assert s.task_by_uid("brand-new")["title"] == "Fresh"
    assert s.task_by_uid("brand-new")["priority"] == 1
    assert s.task_by_uid("brand-new")["taskListId"] == "Tasks"
    assert s.task_by_uid("t1")["title"] == "Edited here"
    assert s.task_by_uid("t2") is None
    before = tasks_pair.mtimes()
    result = tasks_pair.sync()
    assert result.changes == 0 and tasks_pair.mtimes() == before


def test_server_edit_and_delete_come_down(tasks_pair):
    ids = [tasks_pair.server.put_task(task(f"t{i}")) for i in range(6)]
    tasks_pair.sync()
    tasks_pair.server.put_task(task("t0", "Changed on the phone", progress="completed"))
    tasks_pair.server.delete_task(ids[1])
    result = tasks_pair.sync()
    assert result.ok, result
    files = tasks_pair.files()
    assert "t1.ics" not in files
    assert b"SUMMARY:Changed on the phone" in files["t0.ics"]
    assert b"STATUS:COMPLETED" in files["t0.ics"]


def test_a_new_local_task_list_directory_becomes_a_task_list(tasks_pair):
    tasks_pair.sync()
    d = tasks_pair.root / "shopping"
    d.mkdir()
    (d / "displayname").write_text("Shopping\n")
    (d / "color").write_text("#00aa00\n")
    (d / "milk.ics").write_text(vtodo("milk", "Milk"))
    result = tasks_pair.sync()
    assert result.ok, result
    lists = {tl["name"]: tl for tl in tasks_pair.server.task_lists.values()}
    assert lists["Shopping"]["color"] == "#00aa00"
    assert tasks_pair.server.task_by_uid("milk")["taskListId"] == lists["Shopping"]["id"]
    # and no calendar was made of it
    assert "Shopping" not in {c["name"] for c in tasks_pair.server.calendars.values()}


def test_an_empty_new_directory_waits_for_its_first_item(tasks_pair):
    tasks_pair.sync()
    (tasks_pair.root / "later").mkdir()
    result = tasks_pair.sync()
    assert result.ok
    assert [n for n in result.notes if "later is empty" in n] == [
        "cal: later is empty; it becomes a calendar or a task list with its first item"
    ]
    assert "later" not in {c["name"] for c in tasks_pair.server.calendars.values()}
    assert "later" not in {t["name"] for t in tasks_pair.server.task_lists.values()}
    (tasks_pair.root / "later" / "e.ics").write_text(VEVENT.format(uid="ev", title="Event"))
    assert tasks_pair.sync().ok
    assert "later" in {c["name"] for c in tasks_pair.server.calendars.values()}


def test_names_of_calendars_and_task_lists_cannot_clash(tasks_pair):
    tasks_pair.server.task_lists["Tasks"]["name"] = "personal"  # same as the calendar
    tasks_pair.server.put_task(task("t1"))
    tasks_pair.server.put_event(
        {"@type": "Event", "uid": "e1", "title": "E", "start": "2026-03-01T10:00:00"}
    )
    assert tasks_pair.sync().ok
    dirs = sorted(p.name for p in tasks_pair.root.iterdir())
    assert len(dirs) == 2
    kinds = {d: {p.name for p in (tasks_pair.root / d).glob("*.ics")} for d in dirs}
    assert sorted(kinds.values(), key=sorted) == [{"e1.ics"}, {"t1.ics"}]
    assert tasks_pair.sync().changes == 0


def test_a_vevent_in_a_task_list_and_a_vtodo_in_a_calendar_are_left_alone(tasks_pair):
    tasks_pair.server.put_task(task("t1"))
    tasks_pair.sync()
    (tasks_pair.root / "tasks" / "ev.ics").write_text(VEVENT.format(uid="ev", title="E"))
    (tasks_pair.root / "personal" / "todo.ics").write_text(vtodo("td", "T"))
    result = tasks_pair.sync()
    problems = [e for c in result.collections for e in c.errors]
    assert any("ev.ics: holds a VEVENT" in p for p in problems), problems
    assert any("todo.ics: holds a VTODO" in p for p in problems), problems
    assert tasks_pair.server.task_by_uid("ev") is None and tasks_pair.server.by_uid("td") is None
    assert (tasks_pair.root / "tasks" / "ev.ics").exists()
    assert (tasks_pair.root / "personal" / "todo.ics").exists()


def test_deletion_guard_holds_for_tasks(tasks_pair):
    ids = [tasks_pair.server.put_task(task(f"t{i}")) for i in range(10)]
    tasks_pair.sync()
    for tid in ids[:8]:
        tasks_pair.server.delete_task(tid)
    result = tasks_pair.sync()
    blocked = [c for c in result.collections if c.blocked]
    assert blocked and "force-delete" in blocked[0].blocked
    assert len(tasks_pair.files()) == 10
    result = tasks_pair.sync(force_delete=True)
    assert len(tasks_pair.files()) == 2


def test_conflicts_follow_the_pair_rule(tasks_pair):
    tasks_pair.write_config(extra="    conflict: local-wins\n")
    tasks_pair.server.put_task(task("t1", "Base"))
    tasks_pair.sync()
    f = tasks_pair.root / "tasks" / "t1.ics"
    f.write_text(f.read_text().replace("SUMMARY:Base", "SUMMARY:Laptop"))
    tasks_pair.server.put_task(task("t1", "Phone"))
    result = tasks_pair.sync()
    assert sum(c.conflicts for c in result.collections) == 1
    assert tasks_pair.server.task_by_uid("t1")["title"] == "Laptop"
    assert b"SUMMARY:Laptop" in f.read_bytes()


def test_different_properties_changed_on_both_sides_are_merged(tasks_pair):
    tasks_pair.server.put_task(task("t1", "Base"))
    tasks_pair.sync()
    f = tasks_pair.root / "tasks" / "t1.ics"
    f.write_text(f.read_text().replace("SUMMARY:Base", "SUMMARY:Laptop"))
    tasks_pair.server.put_task(task("t1", "Base", progress="completed", percentComplete=100))
    assert tasks_pair.sync().ok
    got = tasks_pair.server.task_by_uid("t1")
    assert got["title"] == "Laptop" and got["progress"] == "completed"
    assert b"STATUS:COMPLETED" in f.read_bytes()


def test_task_only_server_properties_survive_local_edits(tasks_pair):
    tasks_pair.server.put_task(
        task("t1", "Base", sortOrder=7, estimatedWork=3, impact="major", keywords={"a": True})
    )
    tasks_pair.sync()
    f = tasks_pair.root / "tasks" / "t1.ics"
    f.write_text(f.read_text().replace("SUMMARY:Base", "SUMMARY:Edited"))
    assert tasks_pair.sync().ok
    got = tasks_pair.server.task_by_uid("t1")
    assert got["title"] == "Edited"
    assert (got["sortOrder"], got["estimatedWork"], got["impact"]) == (7, 3, "major")
    assert tasks_pair.sync().changes == 0


def test_task_list_rename_on_the_server_keeps_the_directory(tasks_pair):
    tasks_pair.server.put_task(task("t1"))
    tasks_pair.sync()
    tasks_pair.server.put_task_list("Tasks", "Chores", "#123456")
    assert tasks_pair.sync().ok
    d = tasks_pair.root / "tasks"
    assert (d / "displayname").read_text().strip() == "Chores"
    assert (d / "color").read_text().strip() == "#123456"


def test_types_events_only_leaves_task_lists_alone(tasks_pair):
    tasks_pair.write_config(types="[events]")
    tasks_pair.server.put_task(task("t1"))
    d = tasks_pair.root / "mine"
    d.mkdir()
    (d / "x.ics").write_text(vtodo("local-only", "Mine"))
    result = tasks_pair.sync()
    assert result.ok, result
    assert not (tasks_pair.root / "tasks").exists()
    assert tasks_pair.server.task_by_uid("local-only") is None
    assert "mine" not in {c["name"] for c in tasks_pair.server.calendars.values()}
    assert (d / "x.ics").exists()


def test_types_tasks_only_skips_calendars(tasks_pair):
    tasks_pair.write_config(types="[tasks]")
    tasks_pair.server.put_event(
        {"@type": "Event", "uid": "e1", "title": "E", "start": "2026-03-01T10:00:00"}
    )
    tasks_pair.server.put_task(task("t1"))
    assert tasks_pair.sync().ok
    assert sorted(p.name for p in tasks_pair.root.iterdir()) == ["tasks"]


def test_task_ids_and_calendar_ids_never_share_a_journal(tasks_pair):
    # A server may give a calendar and a task list the same id; each type has its journal.
    tasks_pair.server.task_lists["Default"] = dict(
        tasks_pair.server.task_lists.pop("Tasks"), id="Default", name="todo"
    )
    tasks_pair.server.put_task(task("t1"), task_list="Default")
    tasks_pair.server.put_event(
        {"@type": "Event", "uid": "e1", "title": "E", "start": "2026-03-01T10:00:00"}
    )
    assert tasks_pair.sync().ok
    assert tasks_pair.sync().changes == 0
    state = tasks_pair.tmp / "state"
    tasks_db = sqlite3.connect(state / "tasks" / "cal.sqlite3")
    events_db = sqlite3.connect(state / "cal.sqlite3")
    assert tasks_db.execute("SELECT uid FROM items").fetchall() == [("t1",)]
    assert events_db.execute("SELECT uid FROM items").fetchall() == [("e1",)]
    assert dict(tasks_db.execute("SELECT type, state FROM states")).keys() == {"TaskList", "Task"}


def test_status_lists_task_lists(tasks_pair):
    tasks_pair.server.put_task(task("t1"))
    tasks_pair.sync()
    code, out, _ = tasks_pair.cli("status")
    assert "tasks:      available" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["tasks", "1", "1", "0", "0", "tasks"] in rows  # dir, local, server, err, confl, name
    code, out, _ = tasks_pair.cli("status", "--json")
    assert {"dir": "tasks", "kind": "task list"}.items() <= next(
        c for c in json.loads(out)[0]["collections"] if c["dir"] == "tasks"
    ).items()


def test_discover_lists_task_lists(tasks_pair):
    code, out, err = tasks_pair.cli("discover")
    assert code == 0, err
    assert "tasks: available (1 task list(s)" in out
    assert "task list" in out and "types: [events, tasks]" in out


def test_a_failing_task_pass_does_not_undo_the_calendar_pass(tasks_pair):
    h = tasks_pair
    for i in range(3):
        h.server.put_task(task(f"t{i}"))
    assert h.sync().ok
    before = h.files()
    h.server.put_event(
        {"@type": "Event", "uid": "e1", "title": "E", "start": "2026-03-01T10:00:00"}
    )
    h.server.delete_task(next(iter(h.server.tasks)))
    h.http.faults.extend([None] + ["500"] * 10)  # the calendar request passes, tasks fail
    result = h.sync()
    assert not result.ok
    assert any("task lists:" in e for e in result.errors), result.errors
    assert (h.root / "personal" / "e1.ics").exists()
    assert h.files() == before  # nothing deleted on a failure
    h.http.faults.clear()
    assert h.sync().ok
    assert len(h.files()) == 2


def test_dry_run_prints_the_task_plan_and_changes_nothing(tasks_pair):
    tasks_pair.server.put_task(task("t1"))
    code, out, err = tasks_pair.cli("sync", "--dry-run")
    assert code == 0, err
    assert "task list 'tasks'" in out
    assert not (tasks_pair.root / "tasks").exists()


def test_syncd_conflicts_lists_task_conflicts(tasks_pair):
    tasks_pair.server.put_task(task("t1", "Base"))
    tasks_pair.sync()
    f = tasks_pair.root / "tasks" / "t1.ics"
    f.write_text(f.read_text().replace("SUMMARY:Base", "SUMMARY:Laptop"))
    tasks_pair.server.put_task(task("t1", "Phone"))
    tasks_pair.sync()
    code, out, _ = tasks_pair.cli("conflicts")
    assert code == 0 and "t1" in out and "Tasks" in out
    conflict_id = out.split()[0]
    code, out, _ = tasks_pair.cli("conflicts", "show", conflict_id)
    assert code == 0 and "Laptop" in out and "Phone" in out


def test_a_lost_answer_to_task_set_is_settled_without_a_duplicate(tasks_pair):
    h = tasks_pair
    h.server.put_task(task("t0"))
    assert h.sync().ok
    (h.root / "tasks" / "new.ics").write_text(vtodo("new-1", "Only once"))
    # calendar request, task delta request, then Task/set: cut after the server applied it
    h.http.faults.extend([None, None, "reset"])
    h.sync()
    assert "reset" in h.http.seen
    for _ in range(2):
        h.sync()
    assert [t["uid"] for t in h.server.tasks.values()].count("new-1") == 1
    assert h.sync().changes == 0
    assert b"SUMMARY:Only once" in h.files()["new.ics"]


def test_a_recurring_task_with_an_override_is_one_file_and_stays_quiet(tasks_pair):
    h = tasks_pair
    h.server.put_task(
        task(
            "water",
            "Water plants",
            start="2026-03-02T09:00:00",
            due="2026-03-02T10:00:00",
            timeZone="Europe/Berlin",
            recurrenceRules=[{"@type": "RecurrenceRule", "frequency": "weekly"}],
            recurrenceOverrides={"2026-03-09T09:00:00": {"progress": "completed"}},
            alerts={
                "a1": {
                    "@type": "Alert",
                    "trigger": {"@type": "OffsetTrigger", "offset": "-PT15M", "relativeTo": "end"},
                }
            },
        )
    )
    assert h.sync().ok
    text = h.files()["water.ics"].decode()
    assert text.count("BEGIN:VTODO") == 2
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20260309T090000" in text
    assert "RRULE:FREQ=WEEKLY" in text and "TRIGGER;RELATED=END:-PT15M" in text
    assert h.sync().changes == 0
    # edited locally (the override's status), it goes up as an override patch
    f = h.root / "tasks" / "water.ics"
    f.write_text(text.replace("STATUS:COMPLETED", "STATUS:CANCELLED"))
    assert h.sync().ok
    got = h.server.task_by_uid("water")
    assert got["recurrenceOverrides"]["2026-03-09T09:00:00"]["progress"] == "cancelled"
    assert got["recurrenceRules"][0]["frequency"] == "weekly"
    assert h.sync().changes == 0


def test_x_properties_of_a_local_task_survive_a_server_edit(tasks_pair):
    h = tasks_pair
    h.sync()
    f = h.root / "tasks" / "x.ics"
    f.write_text(vtodo("x1", "Mine", "X-MY-APP-FLAG;X-P=1:yes\r\nPRIORITY:5\r\n"))
    assert h.sync().ok
    got = h.server.task_by_uid("x1")
    assert not any(":" in k for k in got), "no vendor data on the server"
    h.server.put_task({**got, "title": "Renamed on the phone"}, task_list=got["taskListId"])
    assert h.sync().ok
    text = f.read_text()
    assert "SUMMARY:Renamed on the phone" in text
    assert "X-MY-APP-FLAG;X-P=1:yes" in text
    assert h.sync().changes == 0


def test_a_server_without_the_intasklists_filter_still_syncs(tasks_pair):
    h = tasks_pair
    h.server.unsupported_filters.add("inTaskLists")
    for i in range(3):
        h.server.put_task(task(f"t{i}"))
    assert h.sync().ok
    # the state moves with no task change (an event): the count check cannot filter, so
    # the pass verifies with a full listing instead of failing
    h.server.put_event(
        {"@type": "Event", "uid": "e1", "title": "E", "start": "2026-03-01T10:00:00"}
    )
    h.server.tasks.pop(next(iter(h.server.tasks)))  # lost without a trace in /changes
    result = h.sync()
    assert result.ok, result
    assert len(h.files()) == 2


def test_a_task_list_destroyed_on_the_server_keeps_the_local_directory(tasks_pair):
    h = tasks_pair
    for i in range(3):
        h.server.put_task(task(f"t{i}"))
    h.sync()
    before = h.files()

    def destroy(**extra):
        args = {"accountId": h.server.account_id, "destroy": ["Tasks"], **extra}
        [[_, got, _]] = h.server.handle({"methodCalls": [["TaskList/set", args, "c"]]})[
            "methodResponses"
        ]
        return got

    assert destroy()["notDestroyed"] == {"Tasks": {"type": "taskListHasTask"}}
    assert destroy(onDestroyRemoveTasks=True)["destroyed"] == ["Tasks"]
    assert not h.server.tasks
    result = h.sync()
    assert any("was deleted on the server" in e for e in result.errors), result.errors
    assert h.files() == before
    assert not h.server.tasks  # and nothing was re-created from the kept directory
