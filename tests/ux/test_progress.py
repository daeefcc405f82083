"""The progress line: drawn on a terminal (a real pseudo-terminal here), silent elsewhere."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.progress import Progress, wanted

REPO = Path(__file__).resolve().parents[2]

FEED = """
import sys, time
from syncd.progress import Progress
p = Progress("cal", delay=0.0, interval=0.0)
p(0, 40)
for i in range(1, 41):
    time.sleep(0.002)
    p(i, 40)
p.finish()
print("end", file=sys.stderr)
"""


def run_on(stderr_kind: str, env_extra: dict[str, str], code: str = FEED) -> bytes:
    """Run ``code`` with stderr on a pseudo-terminal or a pipe; what it wrote there."""
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "INVOCATION_ID")}
    env.update({"PYTHONPATH": str(REPO), "TERM": "xterm", **env_extra})
    if stderr_kind == "pipe":
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, env=env, timeout=60
        )
        return done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stderr=slave, stdout=subprocess.DEVNULL, env=env
    )
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    proc.wait(timeout=30)
    return out


def test_drawn_on_a_terminal():
    out = run_on("pty", {})
    assert b"\rcal: 40/40 items (100%)" in out
    assert b"/s\x1b[K" in out
    assert b"cal: 20/40 items (50%)" in out
    assert out.rstrip().endswith(b"\r\x1b[Kend")  # the line is cleared at the end


@pytest.mark.parametrize(
    ("kind", "env"),
    [
        ("pipe", {}),
        ("pty", {"JOURNAL_STREAM": "8:12345"}),
        ("pty", {"INVOCATION_ID": "0123456789abcdef"}),
        ("pty", {"TERM": "dumb"}),
    ],
)
def test_silent_off_a_terminal_and_under_systemd(kind, env):
    out = run_on(kind, env)
    assert b"items" not in out and b"\r" not in out.replace(b"\r\n", b"\n")
    assert b"end" in out


def test_a_short_pass_draws_nothing():
    now = [0.0]
    stream = io.StringIO()
    p = Progress("cal", stream, enabled=True, delay=0.5, clock=lambda: now[0])
    p(0, 3)
    for i in range(1, 4):
        now[0] += 0.1
        p(i, 3)
    p.finish()
    assert stream.getvalue() == ""


def test_rate_and_throttling():
    now = [100.0]
    stream = io.StringIO()
    p = Progress("cal", stream, enabled=True, delay=0.5, interval=0.1, clock=lambda: now[0])
    p(0, 1000)
    for i in range(1, 1001):
        now[0] += 0.001  # 1000 items a second
        p(i, 1000)
    text = stream.getvalue()
    frames = text.split("\r")[1:]
    assert 4 <= len(frames) <= 8  # from 0.5 s on, at most every 0.1 s, plus the last
    assert frames[-1] == "cal: 1000/1000 items (100%), 1000/s\x1b[K"
    p.finish()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_wanted_reads_the_environment(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wanted(Tty())
    assert not wanted(io.StringIO())
    monkeypatch.setenv("INVOCATION_ID", "x")
    assert not wanted(Tty())


def test_the_engine_feeds_it(pair):
    import anyio

    from syncd.config import load_config
    from syncd.connect import connect
    from syncd.journal import Journal
    from syncd.sync.engine import PairSync
    from tests.ux.conftest import event

    for i in range(30):
        pair.server.put_event(event(f"e{i}"))
    calls: list[tuple[int, int]] = []
    config = load_config(pair.config_path)

    async def go():
        client = await connect(config.accounts["home"], transport=pair.transport)
        journal = Journal(config.state_dir / "cal.sqlite3")
        try:
            sync = PairSync(
                config, config.pairs["cal"], client, journal, progress=lambda *a: calls.append(a)
            )
            return await sync.run()
        finally:
            journal.close()

    assert anyio.run(go).ok
    assert calls[0] == (0, 30) and calls[-1] == (30, 30)
    assert [d for d, _ in calls] == list(range(31))
    calls.clear()
    assert anyio.run(go).ok  # a quiet pass has nothing to count
    assert calls == []


SYNC_DRIVER = """
import sys
import syncd.progress as progress
progress.Progress.__init__.__kwdefaults__["delay"] = 0.0
progress.Progress.__init__.__kwdefaults__["interval"] = 0.0
from syncd.cli import main
code = main(["-c", sys.argv[1], "sync"])
print("exit", code, file=sys.stderr)
"""


def test_syncd_sync_draws_progress_on_a_terminal_only(http_server, tmp_path):
    from tests.ux.conftest import event, write_config

    for i in range(60):
        http_server.jmap.put_event(event(f"e{i}@x"))
    config = write_config(tmp_path, http_server.base_url)
    code = SYNC_DRIVER.replace("sys.argv[1]", repr(str(config)))
    out = run_on("pty", {}, code)
    assert b"exit 0" in out, out
    assert b"\rcal: 60/60 items (100%)" in out
    assert out.rstrip().endswith(b"\r\x1b[Kexit 0")  # cleared before anything else is said

    for i in range(60, 80):
        http_server.jmap.put_event(event(f"e{i}@x"))
    out = run_on("pipe", {}, code)
    assert b"exit 0" in out and b"items" not in out
