"""How fast a change crosses with `syncd run` against Cyrus 3.12, and what idling costs.

    python3 contrib/bench/latency.py [--changes 50] [--idle-items 10000] [--idle-seconds 300]

Prints, over N changes each way:
  * server write -> local file written (p50, p95), and syncd's own share of it: from the
    moment its log says the StateChange arrived to the file being there (Cyrus itself
    polls once a second, `jmap_pushpoll: 1s`, which is most of the rest);
  * local save -> visible on the server via JMAP (p50, p95), against debounce + 150 ms;
  * idle CPU (share of one core) and RSS at start and end over --idle-seconds with
    --idle-items events synced.
Needs root (the Cyrus chroot); see contrib/cyrus/harness.py.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "contrib" / "cyrus"))
import harness  # noqa: E402

DEBOUNCE = 0.3


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ms(x: float) -> str:
    return f"{x * 1000:7.1f} ms"


def jmap_event(uid: str, title: str, day: int) -> dict:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": f"2027-01-{1 + day % 28:02d}T09:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        "calendarIds": {"Default": True},
    }


def ics(uid: str, title: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270201T100000Z\r\n"
        f"DURATION:PT1H\r\nSUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Run:
    def __init__(self, user: harness.CyrusUser, workdir: Path) -> None:
        self.user = user
        self.root = workdir / "vdir"
        self.root.mkdir()
        self.config = workdir / "config.yaml"
        self.config.write_text(
            f"accounts:\n  a:\n    url: {user.base_url}\n    username: {user.name}\n"
            f"    password: {user.password}\n"
            f"pairs:\n  p:\n    account: a\n    local: {self.root}\n    debounce: {DEBOUNCE}\n"
            f"state_dir: {workdir / 'state'}\n"
        )
        self.config.chmod(0o600)
        self.log = workdir / "daemon.log"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "-c", str(self.config), "-vv", "run"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.wait(lambda: "push: connected" in self.log.read_text(), 60)

    def wait(self, cond, timeout: float = 30) -> float:
        deadline = time.time() + timeout
        while not cond():
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"timed out; daemon log:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.002)
        return time.time()

    def push_times(self) -> list[float]:
        out = []
        for line in self.log.read_text().splitlines():
            if "push: state change" in line:
                stamp = line[:23]
                out.append(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp())
        return out

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def server_to_local(run: Run, n: int) -> tuple[list[float], list[float]]:
    total, own = [], []
    d = next(p for p in run.root.iterdir() if p.is_dir())
    for i in range(n):
        uid = f"s2l-{i}"
        seen_before = len(run.push_times())
        t0 = time.time()
        run.user.jmap([["CalendarEvent/set", {"create": {"e": jmap_event(uid, uid, i)}}, "s"]])
        t1 = run.wait(lambda uid=uid: (d / f"{uid}.ics").exists())
        total.append(t1 - t0)
        pushes = run.push_times()[seen_before:]
        if pushes:
            own.append(max(0.0, t1 - pushes[0]))
        time.sleep(0.2)
    return total, own


def local_to_server(run: Run, n: int) -> list[float]:
    out = []
    d = next(p for p in run.root.iterdir() if p.is_dir())
    for i in range(n):
        uid = f"l2s-{i}"
        tmp = d / f".{uid}.tmp"
        tmp.write_text(ics(uid, uid))
        t0 = time.time()
        os.replace(tmp, d / f"{uid}.ics")  # how editors save
        while True:
            ((_, body, _),) = run.user.jmap(
                [["CalendarEvent/query", {"filter": {"uid": uid}}, "q"]]
            )
            if body.get("ids"):
                out.append(time.time() - t0)
                break
            if time.time() - t0 > 30:
                raise SystemExit(f"{uid} never reached the server")
            time.sleep(0.005)
        time.sleep(0.2)
    return out


def proc_cpu_rss(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return cpu, rss


def idle(server: harness.CyrusServer, items: int, seconds: float) -> None:
    user = server.add_user(f"idle{os.getpid()}")
    for start in range(0, items, 500):  # big batches make Cyrus send 102 Processing
        create = {
            f"e{i}": jmap_event(f"idle-{i}", f"Idle {i}", i)
            for i in range(start, min(items, start + 500))
        }
        user.jmap([["CalendarEvent/set", {"create": create}, "s"]])
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(user, Path(tmp))
        d_count = lambda: sum(1 for _ in run.root.rglob("*.ics"))  # noqa: E731
        run.wait(lambda: d_count() >= items, 600)
        run.wait(lambda: "ready:" in run.log.read_text(), 600)  # the first pass committed
        time.sleep(5)
        passes_before = run.log.read_text().count(": pass (")
        cpu0, rss0 = proc_cpu_rss(run.proc.pid)
        time.sleep(seconds)
        cpu1, rss1 = proc_cpu_rss(run.proc.pid)
        text = run.log.read_text()
        passes = text.count(": pass (") - passes_before
        reasons = collections.Counter(
            line.split(": pass (", 1)[1].rstrip(")")
            for line in text.splitlines()[-2000:]
            if ": pass (" in line
        )
        run.stop()
    share = (cpu1 - cpu0) / seconds * 100
    print(
        f"idle with {items} items over {seconds:.0f} s: CPU {share:.3f}% of a core "
        f"(goal < 0.5%); RSS {rss0 / 2**20:.1f} MB -> {rss1 / 2**20:.1f} MB (goal: no growth, < 100 MB); "
        f"{passes} pass(es) meanwhile (triggers over the whole run: {dict(reasons)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--idle-items", type=int, default=10000)
    parser.add_argument("--idle-seconds", type=float, default=300)
    args = parser.parse_args()
    harness.install()
    with harness.CyrusServer.start() as server:
        user = server.add_user(f"lat{os.getpid()}")
        if args.changes <= 0:
            idle(server, args.idle_items, args.idle_seconds)
            return
        with tempfile.TemporaryDirectory() as tmp:
            run = Run(user, Path(tmp))
            try:
                total, own = server_to_local(run, args.changes)
                up = local_to_server(run, args.changes)
            finally:
                run.stop()
        print(
            f"server write -> local file, {len(total)} changes: p50 {ms(pct(total, 0.5))}, "
            f"p95 {ms(pct(total, 0.95))} (Cyrus pushes from a 1 s poll loop)"
        )
        if own:
            print(
                f"  syncd's share after the StateChange arrived: p50 {ms(pct(own, 0.5))}, "
                f"p95 {ms(pct(own, 0.95))} (goal: p50 < 50 ms)"
            )
        print(
            f"local save -> on the server, {len(up)} changes: p50 {ms(pct(up, 0.5))}, "
            f"p95 {ms(pct(up, 0.95))} (goal: p50 < debounce {DEBOUNCE * 1000:.0f} ms + 150 ms)"
        )
        print(f"  mean {ms(statistics.mean(up))}")
        if args.idle_seconds > 0:
            idle(server, args.idle_items, args.idle_seconds)


if __name__ == "__main__":
    main()
