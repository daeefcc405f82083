"""``syncd sync`` asks the running daemon for its pass (syncd.control, syncd.control_server):
real processes, a real Unix socket, real inotify, the in-memory server over loopback HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

from syncd import control
from syncd.config import load_config
from syncd.control_server import _listen
from syncd.daemon import Daemon
from syncd.vdir import watch
from tests.daemon.test_daemon import wait_for
from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import VEVENT, TaskHarness, served_pair

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path: Path):
    server = FakeJmapServer()
    server.event_source = False  # the daemon polls (hourly): every pass here is asked for
    with served_pair(tmp_path, server) as h:
        h.write_config(extra="")
        text = h.config_path.read_text().replace(
            "    account: home\n", "    account: home\n    poll_interval: 3600\n    debounce: 0.2\n"
        )
        h.config_path.write_text(text)
        h.server.put_event(_event("first", "First"))
        yield h


def _event(uid: str, title: str) -> dict:
    return {"@type": "Event", "uid": uid, "title": title, "start": "2026-03-01T10:00:00"}


def sync_command(h: TaskHarness, *args: str) -> subprocess.CompletedProcess[str]:
    """``syncd -c CONFIG sync ARGS`` as a user runs it: its own process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "syncd", "-c", str(h.config_path), "-v", "sync", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def with_daemon(h: TaskHarness, scenario) -> Daemon:
    """Run the daemon of ``h``'s configuration around ``scenario(daemon)``, from a watch
    the daemon trusts and a clean pass that looked after it began."""
    daemon = Daemon(load_config(h.config_path))

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            runner = daemon.runners[0]
            await wait_for(lambda: daemon.ready and runner.watcher.trusted_since is not None)
            await wait_for(lambda: control.socket_path(h.config_path).exists())
            before = runner.passes
            runner.trigger("poll")  # the start-up pass may have begun before the watch
            await wait_for(lambda: runner.passes > before)
            assert runner.clean_scan_started is not None
            await scenario(daemon)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return daemon


async def in_thread(func, *args):
    return await anyio.to_thread.run_sync(func, *args)


def test_sync_is_the_daemons_pass_and_looks_at_no_file_when_none_changed(served, listings):
    async def scenario(daemon):
        runner = daemon.runners[0]
        passes, skipped, looked = runner.passes, runner.scans_skipped, listings["n"]
        requests = len(served.http.seen)
        served.server.put_event(_event("remote-1", "From the server"))
        scenario.done = await in_thread(sync_command, served)
        scenario.passes = runner.passes - passes
        scenario.skipped = runner.scans_skipped - skipped
        scenario.looked = listings["n"] - looked
        scenario.requests = len(served.http.seen) - requests

    with_daemon(served, scenario)
    done = scenario.done
    assert done.returncode == 0, done.stderr
    assert "cal: ok; up 0, down 1" in done.stdout
    assert "the running daemon (pid" in done.stderr  # -v says who did the pass
    assert (served.root / "personal" / "remote-1.ics").exists()
    assert scenario.passes == 1 and scenario.skipped == 1 and scenario.looked == 0
    assert scenario.requests <= 2


def test_a_file_saved_just_before_sync_is_in_the_pass(served, monkeypatch):
    """The watcher is slow to tell (a busy machine): the pass the command asked for must
    still include the save it made a moment before, not run on the watcher's old word."""
    real = watch._Handler.on_any_event

    def slow(self, event):
        if not watch.marker_name(self.root, event.src_path):
            time.sleep(0.3)
        real(self, event)

    monkeypatch.setattr(watch._Handler, "on_any_event", slow)

    async def scenario(daemon):
        (served.root / "personal" / "saved.ics").write_text(
            VEVENT.format(uid="saved-1", title="Saved just now")
        )
        scenario.done = await in_thread(sync_command, served)
        scenario.there = served.server.by_uid("saved-1") is not None

    with_daemon(served, scenario)
    assert scenario.done.returncode == 0, scenario.done.stderr
    assert scenario.there  # on the server when the command returned
    assert "cal: ok; up 1, down 0" in scenario.done.stdout


def test_a_pass_in_flight_when_the_command_asks_is_not_its_pass(served):
    """That pass may have looked at the vdir before the file the user just saved."""
    gate = threading.Event()

    def hold(request):
        gate.wait(10)  # the pass in flight waits for its answer here

    async def scenario(daemon):
        runner = daemon.runners[0]
        served.server.hooks.append(hold)
        begun = runner.begun
        runner.trigger("poll")  # the watcher vouches: this pass looks at no file
        await wait_for(lambda: runner.begun > begun and runner.in_pass)
        (served.root / "personal" / "late.ics").write_text(
            VEVENT.format(uid="late-1", title="Saved during a pass")
        )

        async def command():
            scenario.done = await in_thread(sync_command, served)
            scenario.there = served.server.by_uid("late-1") is not None

        async with anyio.create_task_group() as tg:
            tg.start_soon(command)
            await anyio.sleep(1.0)  # the command's request waits on the pass in flight
            gate.set()

    with_daemon(served, scenario)
    assert scenario.done.returncode == 0, scenario.done.stderr
    assert "the running daemon (pid" in scenario.done.stderr
    assert "runs here" not in scenario.done.stderr
    assert scenario.there


def test_on_a_network_filesystem_every_pass_looks_at_every_file(served, monkeypatch):
    """Another machine's edit on NFS raises no inotify event here: the pass a `syncd
    sync` asks the daemon for must still find it (syncd.vdir.mounts)."""
    monkeypatch.setattr(watch, "remote_filesystem", lambda root: "nfs4")
    real = watch._Handler.on_any_event

    def blind_to_items(self, event):  # the edit is made on another machine
        if not str(event.src_path).endswith(".ics"):
            real(self, event)

    monkeypatch.setattr(watch._Handler, "on_any_event", blind_to_items)
    daemon = Daemon(load_config(served.config_path))

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            runner = daemon.runners[0]
            await wait_for(lambda: daemon.ready and runner.watcher is not None)
            await wait_for(lambda: control.socket_path(served.config_path).exists())
            before = runner.passes
            runner.trigger("poll")  # a clean pass after the watch began
            await wait_for(lambda: runner.passes > before)
            assert runner.watcher.trusted_since is None
            path = next(
                p for p in (served.root / "personal").glob("*.ics") if "UID:first" in p.read_text()
            )
            path.write_text(path.read_text().replace("SUMMARY:First", "SUMMARY:Edited elsewhere"))
            main.done = await in_thread(sync_command, served)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert main.done.returncode == 0, main.done.stderr
    assert "the running daemon (pid" in main.done.stderr
    assert served.server.by_uid("first")["title"] == "Edited elsewhere"


def test_a_failed_pass_is_reported_by_the_command_as_its_own(served):
    async def scenario(daemon):
        served.http.faults.extend(["500"] * 6)
        scenario.done = await in_thread(sync_command, served)

    with_daemon(served, scenario)
    done = scenario.done
    assert done.returncode == 1
    assert "syncd: cal: " in done.stderr and "500" in done.stderr, done.stderr


def test_a_config_changed_since_the_daemon_read_it_runs_the_pass_here(served, listings):
    async def scenario(daemon):
        runner = daemon.runners[0]
        passes = runner.passes
        with served.config_path.open("a") as f:
            f.write("# edited after the daemon started\n")
        served.server.put_event(_event("remote-2", "Second"))
        scenario.done = await in_thread(sync_command, served)
        scenario.passes = runner.passes - passes

    with_daemon(served, scenario)
    done = scenario.done
    assert done.returncode == 0, done.stderr
    assert "read the configuration file before it was last changed" in done.stderr
    assert "this pass runs here" in done.stderr
    assert scenario.passes == 0  # the daemon ran none
    assert (served.root / "personal" / "remote-2.ics").exists()


@pytest.mark.parametrize("option", ["--dry-run", "--no-daemon"])
def test_options_for_a_pass_of_its_own_are_not_sent_to_the_daemon(served, option):
    async def scenario(daemon):
        runner = daemon.runners[0]
        passes = runner.passes
        scenario.done = await in_thread(sync_command, served, option)
        scenario.passes = runner.passes - passes

    with_daemon(served, scenario)
    assert scenario.done.returncode == 0, scenario.done.stderr
    assert scenario.passes == 0
    assert "the running daemon" not in scenario.done.stderr


def test_the_socket_goes_with_the_daemon_and_a_stale_one_is_not_a_daemon(served, tmp_path):
    path = control.socket_path(served.config_path)
    assert path is not None

    async def scenario(daemon):
        assert path.exists()
        assert os.stat(path).st_mode & 0o077 == 0  # the user's own commands only

    with_daemon(served, scenario)
    assert not path.exists()
    # A socket file nobody listens on (a daemon killed by SIGKILL): no answer, and the
    # command syncs by itself.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(os.fsencode(path))
    stale.close()
    assert control.ask(path, {"op": "sync"}) is None
    served.server.put_event(_event("remote-3", "Third"))
    done = sync_command(served)
    assert done.returncode == 0, done.stderr
    assert (served.root / "personal" / "remote-3.ics").exists()


def test_a_second_daemon_leaves_the_socket_to_the_first(tmp_path):
    path = tmp_path / "control.sock"

    async def main():
        first = await _listen(path)
        assert first is not None
        async with first, anyio.create_task_group() as tg:
            tg.start_soon(first.serve, lambda stream: stream.aclose())
            assert await _listen(path) is None  # alive: left alone
            tg.cancel_scope.cancel()
        os.unlink(path)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(os.fsencode(path))
        stale.close()
        again = await _listen(path)  # dead: replaced
        assert again is not None
        await again.aclose()

    anyio.run(main)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"op": "sync", "config": "d", "state_dir": "/s", "pairs": ["cal"]}, None),
        ({"op": "sync", "config": "d", "state_dir": "/s", "pairs": []}, None),
        ({"op": "stop", "config": "d", "state_dir": "/s", "pairs": []}, "does not know"),
        ({"op": "sync", "config": "old", "state_dir": "/s", "pairs": []}, "last changed"),
        ({"op": "sync", "config": "d", "state_dir": "/x", "pairs": []}, "keeps its journals"),
        ({"op": "sync", "config": "d", "state_dir": "/s", "pairs": ["x"]}, "no pair named x"),
        ({"op": "sync", "config": "d", "state_dir": "/s", "pairs": "cal"}, "names no pairs"),
        (["sync"], "does not know"),
    ],
)
def test_what_the_daemon_refuses(request_, expected):
    why = control.refusal(request_, "d", Path("/s"), ["cal"])
    if expected is None:
        assert why is None
    else:
        assert why is not None and expected in why


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v/.syncd-marker-1-2", ".syncd-marker-1-2"),
        (b"/v/.syncd-marker-1-2", ".syncd-marker-1-2"),
        ("/v/work/.syncd-marker-1-2", None),  # only in the root
        ("/v/.syncd-abc.tmp", None),
        ("/w/.syncd-marker-1", None),
    ],
)
def test_which_events_are_the_barriers_markers(path, expected):
    assert watch.marker_name(Path("/v"), path) == expected


def test_a_barrier_on_an_untrusted_watch_says_so_at_once(tmp_path):
    watcher = watch.VdirWatcher(tmp_path, lambda path: None)
    assert anyio.run(watcher.barrier) is False
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("delay", "told"), [(0.0, 0), (0.5, 1)])
def test_a_slow_answer_is_waited_for_and_the_wait_said_once(tmp_path, delay, told):
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(os.fsencode(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            assert conn.recv(65536).endswith(b"\n")
            time.sleep(delay)
            conn.sendall(control.encode(control.reply(0, [(False, "cal: ok")], 7)))

    thread = threading.Thread(target=answer)
    thread.start()
    said: list[str] = []
    got = control.ask(path, {"op": "sync"}, on_slow=lambda: said.append("slow"), slow_after=0.1)
    thread.join()
    server.close()
    assert got == {"status": 0, "lines": [[False, "cal: ok"]], "pid": 7}
    assert len(said) == told


def test_status_says_whether_sync_asks_the_daemon_and_when_it_needs_a_reload(served):
    def status() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-m", "syncd", "-c", str(served.config_path), "status"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    async def scenario(daemon):
        scenario.current = await in_thread(status)
        with served.config_path.open("a") as f:
            f.write("# edited after the daemon started\n")
        scenario.edited = await in_thread(status)

    with_daemon(served, scenario)
    assert scenario.current.returncode == 0, scenario.current.stdout
    assert "`syncd sync` asks it for its passes" in scenario.current.stdout
    assert scenario.edited.returncode == 1  # needs attention
    assert "`syncd sync` asks it" not in scenario.edited.stdout
    assert "the daemon runs the configuration as it was before its last edit" in (
        scenario.edited.stdout
    )
