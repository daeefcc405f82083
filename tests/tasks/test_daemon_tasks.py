"""The daemon with task lists: push (EventSource over loopback HTTP) and no-tasks servers."""

from __future__ import annotations

import time

import anyio

from syncd.config import load_config
from syncd.daemon import Daemon
from syncd.notify import Notifier
from tests.tasks.conftest import task, vtodo


class QuietNotifier(Notifier):
    def send(self, *lines: str) -> None:
        pass


async def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await anyio.sleep(0.05)


def run_daemon(h, scenario) -> Daemon:
    config = load_config(h.config_path)
    daemon = Daemon(config, QuietNotifier())

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            await wait_for(lambda: daemon.ready)
            await scenario(daemon)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return daemon


def test_a_task_changed_on_the_server_arrives_by_push(tasks_pair):
    h = tasks_pair
    h.write_config(extra="    poll_interval: 3600\n    debounce: 0.1\n")
    h.server.put_task(task("t1", "Before"))

    async def scenario(daemon):
        acc = daemon.accounts["home"]
        await wait_for(lambda: acc.push_state == "connected")
        runner = daemon.runners[0]
        before = runner.passes
        h.server.put_task(task("t1", "Changed on the phone"))
        f = h.root / "tasks" / "t1.ics"
        await wait_for(lambda: b"Changed on the phone" in f.read_bytes(), timeout=10)
        assert runner.passes > before
        # and a task saved locally goes up without waiting for a poll
        (h.root / "tasks" / "new.ics").write_text(vtodo("new-1", "From the laptop"))
        await wait_for(lambda: h.server.task_by_uid("new-1") is not None)
        await wait_for(lambda: not runner.in_pass and not runner.dirty)
        settled = runner.passes
        await anyio.sleep(1.5)  # the push of our own upload is an echo: no pass for it
        scenario.extra = runner.passes - settled

    run_daemon(h, scenario)
    assert h.http.streams >= 1
    assert scenario.extra == 0


def test_push_subscribes_to_task_types(tasks_pair):
    h = tasks_pair
    h.write_config(extra="    poll_interval: 3600\n")
    seen: list[str] = []
    original = h.http._event_stream

    def spy(handler):
        seen.append(handler.path)
        original(handler)

    h.http._event_stream = spy

    async def scenario(daemon):
        await wait_for(lambda: daemon.accounts["home"].push_state == "connected")

    run_daemon(h, scenario)
    assert seen and "TaskList" in seen[0] and "Task" in seen[0]


def test_the_daemon_runs_on_a_server_without_tasks_and_keeps_local_tasks(no_tasks_pair):
    h = no_tasks_pair
    h.write_config(extra="    poll_interval: 3600\n    debounce: 0.1\n")
    d = h.root / "chores"
    d.mkdir()
    for i in range(6):
        (d / f"c{i}.ics").write_text(vtodo(f"c{i}", f"Chore {i}"))
    before = {p.name: p.read_bytes() for p in d.iterdir()}

    async def scenario(daemon):
        runner = daemon.runners[0]
        assert runner.last_error is None and runner.last is not None and runner.last.ok
        (d / "c9.ics").write_text(vtodo("c9", "Another"))
        n = runner.passes
        await wait_for(lambda: runner.passes > n)
        assert runner.last_error is None and runner.last.ok
        assert daemon.accounts["home"].push_state == "connected"

    run_daemon(h, scenario)
    after = {p.name: p.read_bytes() for p in d.iterdir()}
    assert {k: v for k, v in after.items() if k != "c9.ics"} == before
    assert not h.server.events and {c["name"] for c in h.server.calendars.values()} == {"personal"}
