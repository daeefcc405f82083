"""Issue 4 end to end: `syncd run` against Cyrus 3.12 push, with systemd's notify socket."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_cyrus_sync import jmap_event, simple_ics

pytestmark = pytest.mark.cyrus
REPO = Path(__file__).resolve().parents[2]


class Daemon:
    def __init__(self, pair, tmp: Path):
        self.pair = pair
        self.sock_path = tmp / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.messages: list[str] = []
        env = dict(
            os.environ,
            NOTIFY_SOCKET=str(self.sock_path),
            WATCHDOG_USEC="2000000",
            PYTHONPATH=str(REPO),
        )
        env.pop("JOURNAL_STREAM", None)
        self.log = tmp / "daemon.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "-c", str(pair.config_path), "-vv", "run"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )

    def receive(self, timeout: float = 0.1) -> None:
        self.sock.settimeout(timeout)
        try:
            while True:
                self.messages.append(self.sock.recv(65536).decode())
                self.sock.settimeout(0.001)
        except (TimeoutError, BlockingIOError):
            pass

    def wait_for(self, condition, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.receive()
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def passes(self) -> int:
        db = sqlite3.connect(next((self.pair.tmp / "state").glob("*.sqlite3")))
        try:
            return db.execute("SELECT COUNT(*) FROM passes").fetchone()[0]
        finally:
            db.close()

    def stop(self) -> float:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        took = time.monotonic() - started
        self.receive()
        self.sock.close()
        return took


def files_with(pair, text: str) -> list[Path]:
    return [p for p in pair.root.rglob("*.ics") if text in p.read_text(errors="replace")]


def test_daemon_follows_both_sides_survives_a_server_restart_and_stops_cleanly(
    cyrus_pair, cyrus, tmp_path
):
    d = Daemon(cyrus_pair, tmp_path)
    try:
        d.wait_for(lambda: any(m.startswith("READY=1") for m in d.messages), "READY=1")
        d.wait_for(lambda: "push: connected" in d.output(), "the push stream")

        # server -> file, through push
        cyrus_pair.set_events({"create": {"a": jmap_event("pushed@x", "Pushed", "Default")}})
        d.wait_for(lambda: files_with(cyrus_pair, "UID:pushed@x"), "the pushed event's file")

        # file -> server, through the watcher
        personal = next(p for p in cyrus_pair.root.iterdir() if p.is_dir())
        (personal / "saved.ics").write_text(simple_ics("saved@x", "Saved locally"))
        d.wait_for(lambda: "saved@x" in cyrus_pair.events(), "the saved file on the server")

        # the server goes away mid-stream and comes back: reconnect and catch up
        cyrus.stop()
        time.sleep(1.5)
        cyrus.restart()
        cyrus_pair.set_events({"create": {"b": jmap_event("after@x", "After", "Default")}})
        d.wait_for(
            lambda: files_with(cyrus_pair, "UID:after@x"), "catch-up after restart", timeout=90
        )

        # no ping-pong: once settled, no more passes happen
        time.sleep(3)
        settled = d.passes()
        time.sleep(4)
        assert d.passes() == settled, d.output()[-3000:]
        assert any(m == "WATCHDOG=1" for m in d.messages)
        assert any(m.startswith("STATUS=") for m in d.messages)
        assert cyrus_pair.user.password not in d.output()

        # SIGHUP: RELOADING=1, the config read again, READY=1 after the new first pass
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: any(m.startswith("RELOADING=1") for m in d.messages), "RELOADING=1")
        d.wait_for(lambda: sum(m.startswith("READY=1") for m in d.messages) == 2, "READY again")
    finally:
        took = d.stop()
    assert d.proc.returncode == 0, d.output()[-3000:]
    assert took < 5
    assert any(m.startswith("STOPPING=1") for m in d.messages)
    assert sorted(e for e in cyrus_pair.events()) == ["after@x", "pushed@x", "saved@x"]


def _sync_command(pair) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "syncd", "-c", str(pair.config_path), "-v", "sync"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_sync_while_the_daemon_runs_is_the_daemons_pass(cyrus_pair, tmp_path):
    """syncd.control against Cyrus: `syncd sync` asks `syncd run`, and a file saved the
    moment before is on the server when it returns."""
    d = Daemon(cyrus_pair, tmp_path)
    try:
        d.wait_for(lambda: any(m.startswith("READY=1") for m in d.messages), "READY=1")
        d.wait_for(lambda: "control: `syncd sync` asks this daemon" in d.output(), "the socket")
        personal = next(p for p in cyrus_pair.root.iterdir() if p.is_dir())

        (personal / "just-saved.ics").write_text(simple_ics("just-saved@x", "Just saved"))
        done = _sync_command(cyrus_pair)
        assert done.returncode == 0, done.stderr
        assert "the running daemon (pid" in done.stderr and "runs here" not in done.stderr
        assert "just-saved@x" in cyrus_pair.events()
        assert "up 1" in done.stdout, done.stdout

        cyrus_pair.set_events({"create": {"c": jmap_event("remote@x", "Remote", "Default")}})
        done = _sync_command(cyrus_pair)
        assert done.returncode == 0, done.stderr
        assert files_with(cyrus_pair, "UID:remote@x")  # by this pass or push's just before

        done = _sync_command(cyrus_pair)  # nothing changed
        assert done.returncode == 0, done.stderr
        assert "ok; up 0, down 0, deleted local 0, remote 0" in done.stdout
        assert "the running daemon (pid" in done.stderr
        assert cyrus_pair.user.password not in done.stdout + done.stderr + d.output()
    finally:
        d.stop()
    assert d.proc.returncode == 0
