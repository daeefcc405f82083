"""The systemd notify protocol against a real unix datagram socket, as systemd has."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

import anyio
import pytest

from syncd.notify import Notifier


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def messages(sock: socket.socket, timeout: float = 0.2) -> list[str]:
    out = []
    sock.settimeout(timeout)
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            return out


def test_ready_status_reloading_stopping(notify_socket):
    n = Notifier()
    n.ready("cal: ok")
    n.status("cal: ok")  # unchanged: not sent again
    n.status("cal: 1 problem(s)")
    n.reloading()
    n.stopping()
    got = messages(notify_socket)
    assert got[0] == "READY=1\nSTATUS=cal: ok"
    assert got[1] == "STATUS=cal: 1 problem(s)"
    assert got[2].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert got[3].startswith("STOPPING=1")
    assert len(got) == 4


def test_no_socket_means_silence(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    n.ready("x")  # must not raise
    assert n.watchdog_interval() is None


def test_watchdog_interval_is_half_and_respects_the_pid(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    assert Notifier().watchdog_interval() == 1.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert Notifier().watchdog_interval() is None  # meant for another process


def test_watchdog_pings_come_from_the_loop_and_stop_when_it_hangs(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a ping every 50 ms
    received: list[tuple[float, str]] = []
    stop = threading.Event()

    def listen():
        notify_socket.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                received.append((time.monotonic(), notify_socket.recv(4096).decode()))

    listener = threading.Thread(target=listen)
    listener.start()
    hang = {}

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(Notifier().watchdog_loop)
            await anyio.sleep(0.5)
            hang["start"] = time.monotonic()
            time.sleep(1.0)  # the event loop hangs: no pings may be sent now
            hang["end"] = time.monotonic()
            await anyio.sleep(0.3)
            tg.cancel_scope.cancel()

    anyio.run(main)
    stop.set()
    listener.join()
    pings = [t for t, m in received if m == "WATCHDOG=1"]
    assert len([t for t in pings if t < hang["start"]]) >= 3
    # while the loop hung the pings stopped: one gap as long as the hang ...
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert max(gaps) >= 0.8
    # ... and they resume with the loop
    assert [t for t in pings if t > hang["end"] + 0.05]
