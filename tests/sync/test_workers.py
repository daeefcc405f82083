"""The worker processes of a big pass (syncd.sync.workers) end with the pass that started
them, even when it is killed outright: a pool's worker holds the writing end of its own
task queue, and the forkserver lives while any worker holds its ``alive`` pipe, so before
``end_with`` every ``kill -9`` of a big pass left three idle processes for good."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie: ended, waiting for whoever reaps it


def _wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if not _gone(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if not _gone(pid)]


def _python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


PASS_WITH_WORKERS = """
    import json, os, sys, time
    sys.path.insert(0, {bench!r})
    import seed
    from multiprocessing import forkserver
    from syncd.sync.{module} import {cls}
    {make}
    pids = list(pool._processes)
    print(json.dumps({{"workers": pids, "forkserver": forkserver._forkserver._forkserver_pid}}))
    sys.stdout.flush()
    time.sleep(600)
"""

PREPARER = """
    objs = []
    for i, ev in enumerate(seed.make_events(1000, prefix="kill")):
        obj = seed.to_jscal(ev); obj["id"] = f"E{{i}}"; objs.append(obj)
    p = Preparer(lambda o: True, workers=2)
    p.feed(objs)
    pool = p.pool
    assert pool.submit(os.getpid).result() != os.getpid()
"""

READAHEAD = """
    r = Readahead(workers=2)
    assert r.start([f"f{{i}}" for i in range(1000)], lambda name: b"not a calendar")
    pool = r.pool
    assert pool.submit(os.getpid).result() != os.getpid()
"""


@pytest.mark.parametrize(
    ("module", "cls", "make"),
    [("prepare", "Preparer", PREPARER), ("readahead", "Readahead", READAHEAD)],
    ids=["conversion", "parsing"],
)
def test_a_pass_killed_outright_leaves_no_worker_and_no_forkserver(module, cls, make):
    code = PASS_WITH_WORKERS.format(
        bench=str(REPO / "contrib" / "bench"),
        module=module,
        cls=cls,
        make=textwrap.indent(textwrap.dedent(make.format()), "    ").strip(),
    )
    proc = _python(code)
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    pids = [*started["workers"], started["forkserver"]]
    assert len(started["workers"]) == 2 and all(isinstance(p, int) for p in pids)
    left = _wait_gone(pids)
    for pid in left:  # not to leave them to the next test run either
        os.kill(pid, signal.SIGKILL)
    assert left == [], "left running after the pass was killed"


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_end_with_ends_the_process_when_the_one_it_works_for_ends(pidfd):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    worker = _python(
        f"""
        import os, time
        from syncd.sync import workers
        if not {pidfd}:
            del os.pidfd_open
        workers.end_with({parent.pid}, poll=0.05)
        print("watching", flush=True)
        time.sleep(60)
        """
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "watching"
        assert worker.poll() is None  # its parent still runs
        parent.wait()
        assert worker.wait(timeout=20) == 0
    finally:
        for p in (parent, worker):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_worker_whose_parent_is_already_gone_ends_at_once():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    worker = _python(
        f"""
        import time
        from syncd.sync import workers
        workers.end_with({gone.pid})
        time.sleep(60)
        """
    )
    assert worker.wait(timeout=20) == 0
