"""Rough timings of task passes over loopback HTTP: ``python3 -m tests.tasks.bench_tasks [N]``.

Not a test (no ``test_`` prefix): it prints wall time and API requests for a first pass
over N server tasks, a quiet pass, ten local edits, and a quiet pass on a server without
tasks next to N local VTODOs that must be left alone.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.fakejmap import FakeJmapServer
from tests.support.httpfake import FaultyJmapHttpServer
from tests.support.httppair import TaskHarness
from tests.tasks.conftest import task, vtodo


def harness(tasks: bool) -> TaskHarness:
    tmp = Path(tempfile.mkdtemp())
    server = FakeJmapServer(tasks_enabled=tasks)
    h = TaskHarness(tmp, server, FaultyJmapHttpServer(server))
    h.root.mkdir()
    h.write_config()
    return h


def timed(h: TaskHarness, label: str, detail: Callable) -> None:
    start, before = time.perf_counter(), h.api_requests()
    result = h.sync()
    took = time.perf_counter() - start
    print(f"{label}: {took:.3f} s, {h.api_requests() - before} API requests, {detail(result)}")


def main(n: int) -> None:
    h = harness(True)
    for i in range(n):
        h.server.put_task(task(f"t{i}", f"Task {i}", due="2026-03-01T10:00:00", priority=i % 10))
    timed(h, f"{n} server tasks, first pass", lambda r: f"ok={r.ok}, down={r.changes}")
    timed(h, "quiet pass", lambda r: f"changes={r.changes}")
    for i in range(10):
        f = h.root / "tasks" / f"t{i}.ics"
        f.write_text(f.read_text().replace("SUMMARY:Task", "SUMMARY:Edited"))
    timed(h, "10 local edits", lambda r: f"up={sum(c.uploaded for c in r.collections)}")
    h.http.close()

    h = harness(False)
    d = h.root / "chores"
    d.mkdir()
    for i in range(n):
        (d / f"c{i}.ics").write_text(vtodo(f"c{i}", f"Chore {i}"))
    h.sync()
    timed(h, f"no-tasks server, {n} local VTODOs left alone, quiet pass", lambda r: f"ok={r.ok}")
    h.http.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
