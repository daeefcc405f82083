"""What a big pass costs when `syncd run` does it, against the same pass done by
`syncd sync`, in the same run.

    python3 contrib/bench/daemon_big.py --n 10000 --runs 3
    python3 contrib/bench/daemon_big.py --n 2000 --runs 2 --changes 500 --json /tmp/big.json

Why: the daemon watches the vdir, so its watcher sees every file the pass itself writes
(each one an event the kernel queues and the daemon reads and has to tell from a user's
edit).  A pass that writes thousands of files is where that costs most; this measures
how much, against the same pass by a process that watches nothing.

For each N: seeds N events into a fresh Cyrus account (contrib/cyrus/harness.py; the
events of seed.make_events, Cyrus's JSCalendar cache warmed), then, each row --runs
times, the two sides taking turns (which goes first alternates run by run), `os.sync()`
and a 1 s pause before each measured pass:

* first download: a fresh pair each (empty vdir, empty state dir).  Daemon: `python3 -m
  syncd -c CONFIG -v run`, timed from its start to the `ready:` line of its log (the log
  is read every 20 ms), and, from the log's own timestamps, from its `pass (start)` line
  to `ready:`; then the vdir must hold N files.  Standalone: `python3 -m syncd -c CONFIG
  sync`, the process's wall time.
* --changes remote changes (default 1,000): that many events get a new title on the
  server in one JMAP request (CalendarEvent/set).  Daemon: `syncd -v run` running and
  idle on the pair of its last first download, timed from the request's answer until
  every changed event's file holds its new title (the files still to see are re-read
  every 20 ms); also, from its log, the time from the answer to the start of its pass
  (the push's share: Cyrus looks for changes to push once a second, ``jmap_pushpoll:
  1s``).  Standalone: `syncd sync` on the pair of its last first download, started on
  the answer, the process's wall time (interpreter start included).  Each run changes
  events of its own under titles of its own; both pairs are on the same account, so each
  side first catches up with the other's changes (not measured).

  Cyrus takes about 10 ms per event to apply such a request (some 10 s for 1,000 here),
  and pushes the first changes while it is still at it: a daemon left running begins its
  pass during the request, and that pass waits on the server until it is done, so
  timed from the answer the daemon would be credited with whatever its pass did before
  it.  The daemon (with its workers) is therefore stopped (SIGSTOP) for the request and
  continued (SIGCONT) on its answer, when the clock starts for both sides; the StateChange
  Cyrus pushed meanwhile waits in the socket.  --no-freeze leaves it running (the push
  figure then comes out negative: the pass began before the answer).  A request that
  takes over 20 s makes the daemon take the pause for a suspend (syncd.daemon
  CLOCK_JUMP): its pass then shows as "resume".

Passes the daemon ran after the measured one (its watcher's doing, if any) are listed
after the table.  Every vdir and state dir is on a fresh journaled ext4 (scratchfs.py),
syncd compiled first (as an installed package is).  Run it from outside the repository
(`cd /tmp`; see README.md).  Needs root (the Cyrus chroot: `python3
contrib/cyrus/harness.py install`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "contrib" / "cyrus"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import scratchfs  # noqa: E402
import seed  # noqa: E402
from daemon_pass import write_config  # noqa: E402
from sync_bench import UID_RE, ics_files  # noqa: E402

POLL = 0.02  # seconds between looks at a log or at the files
TIMEOUT = 1800.0  # seconds a daemon gets for any one thing
QUIET = 1.5  # seconds without a pass or CPU that count as idle (debounce is 0.3 s)
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
PASS = re.compile(r": pass \((.*)\)\s*$")
SIDES = ("daemon", "standalone")


def child_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("JOURNAL_STREAM", None)  # else syncd.logsetup leaves the timestamps out
    return env


def stamp(line: str) -> float:
    """The time of a log line (``2026-12-07 11:14:53,267``), in time.time()'s terms."""
    m = STAMP.match(line)
    if m is None:
        raise ValueError(f"no timestamp: {line!r}")
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def settle() -> None:
    os.sync()
    time.sleep(1.0)


def collection(pair: Path) -> Path:
    dirs = [p for p in (pair / "vdir").iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(dirs) != 1:
        raise RuntimeError(f"{pair}: wanted one collection, found {dirs}")
    return dirs[0]


def sync(pair: Path) -> float:
    """`syncd sync` on ``pair``; its wall time (interpreter start included)."""
    log = pair / "sync.log"
    with open(log, "ab") as out:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "syncd", "-c", str(pair / "config.yaml"), "sync"],
            stdout=out,
            stderr=out,
            env=child_env(),
        )
        took = time.perf_counter() - started
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"syncd sync exited {done.returncode}; {log}:\n{tail}")
    return took


class Daemon:
    """`syncd -v run` on one pair, its log (stderr) in ``pair/daemon.log``."""

    def __init__(self, pair: Path, live: list[Daemon]) -> None:
        self.pair = pair
        self.log = pair / "daemon.log"
        self.lines: list[str] = []  # this daemon's: the log may hold an earlier one's
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self._partial = b""
        with open(self.log, "ab") as out:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "syncd", "-c", str(pair / "config.yaml"), "-v", "run"],
                stdout=out,
                stderr=out,
                env=child_env(),
                start_new_session=True,  # its workers too can be stopped by its id
            )
        live.append(self)

    def read(self) -> list[str]:
        """The log's lines so far (complete lines only)."""
        with open(self.log, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        *done, self._partial = (self._partial + data).split(b"\n")
        self.lines.extend(line.decode(errors="replace") for line in done)
        return self.lines

    def check_alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            tail = "\n".join(self.read()[-30:])
            raise RuntimeError(
                f"syncd run exited {self.proc.returncode} {what}; {self.log}:\n{tail}"
            )

    def wait_line(self, needle: str, since: int = 0) -> tuple[float, int]:
        """perf_counter() when a line from ``since`` on holding ``needle`` was seen, and
        its index; the log is read every POLL seconds."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            lines = self.read()
            for i in range(since, len(lines)):
                if needle in lines[i]:
                    return time.perf_counter(), i
            since = len(lines)
            self.check_alive(f"waiting for {needle!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {needle!r} in {self.log} after {TIMEOUT:.0f} s")
            time.sleep(POLL)

    def passes(self, since: int = 0) -> list[tuple[int, str]]:
        """(line index, reasons) of each pass begun from line ``since`` on."""
        return [
            (i, m.group(1))
            for i, line in enumerate(self.read()[since:], since)
            if (m := PASS.search(line))
        ]

    def _finished(self) -> int:
        try:
            status = json.loads((self.pair / "state" / "daemon.json").read_text() or "{}")
        except (OSError, ValueError):
            return -1
        return int(status.get("cal", {}).get("passes", -1))

    def _cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self) -> None:
        """Until every pass begun has ended and the daemon has used no CPU for QUIET s."""
        deadline = time.monotonic() + TIMEOUT
        quiet_since, cpu = time.monotonic(), self._cpu()
        while True:
            time.sleep(0.1)
            self.check_alive("waiting for it to go idle")
            now, cpu_now = time.monotonic(), self._cpu()
            if cpu_now - cpu > 0.02 or len(self.passes()) != self._finished():
                quiet_since = now
            cpu = cpu_now
            if now - quiet_since >= QUIET:
                return
            if now > deadline:
                raise RuntimeError(f"syncd run did not go idle in {TIMEOUT:.0f} s; {self.log}")

    def signal(self, sig: signal.Signals) -> None:
        """``sig`` to the daemon and its workers; for SIGSTOP, once it has stopped."""
        os.killpg(self.proc.pid, sig)
        deadline = time.monotonic() + 5
        while sig == signal.SIGSTOP and time.monotonic() < deadline:
            state = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state in ("T", "t"):
                return
            time.sleep(0.001)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; then whatever is left of its group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGCONT)  # if an exception left it stopped
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its conversion workers, if any left


@dataclass
class Row:
    """One row's figures, run by run (seconds), and notes on the daemon's passes."""

    daemon: list[float] = field(default_factory=list)
    standalone: list[float] = field(default_factory=list)
    daemon_log: list[float] = field(default_factory=list)  # the row's in-log figure
    daemon_after: list[list[str]] = field(default_factory=list)  # passes after the measured
    order: list[str] = field(default_factory=list)  # which side went first, run by run
    requests: dict[str, list[float]] = field(  # the JMAP requests that made the changes
        default_factory=lambda: {side: [] for side in SIDES}
    )


class Bench:
    def __init__(
        self,
        work: Path,
        server: harness.CyrusServer,
        live: list[Daemon],
        freeze: bool,
    ) -> None:
        self.work = work
        self.server = server
        self.live = live
        self.freeze = freeze

    @staticmethod
    def say(msg: str) -> None:
        print(f"[daemon_big] {msg}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ setup

    def seed(self, n: int) -> None:
        self.n = n
        self.user = self.server.add_user(f"big{n}")
        took = seed.seed_jmap(self.user, seed.make_events(n))
        self.ids = sorted(seed.jmap_ids(self.user))
        if len(self.ids) != n:
            raise RuntimeError(f"seeded {n} events, the server lists {len(self.ids)}")
        seed.jmap_warm(self.user, self.ids)
        self.index = {rid: i for i, rid in enumerate(self.ids)}
        self.uids = self._uids()
        self.cursor = 0
        self.say(f"N = {n}: seeded in {took:.1f} s")

    def _uids(self, batch: int = 1000) -> dict[str, str]:
        """Each event's id by its UID (to find its file)."""
        out: dict[str, str] = {}
        for lo in range(0, len(self.ids), batch):
            args = {"accountId": self.user.name, "ids": self.ids[lo : lo + batch]}
            ((_, body, _),) = seed.jmap_call(
                self.user, [["CalendarEvent/get", {**args, "properties": ["uid"]}, "g"]]
            )
            out.update((ev["uid"], ev["id"]) for ev in body["list"])
        return out

    def pair(self, tag: str) -> Path:
        return write_config(self.work / f"n{self.n}" / tag, self.user).parent

    # ------------------------------------------------------------------ first download

    def first_download(self, runs: int) -> tuple[Row, Path, Path]:
        row = Row()
        pairs: dict[str, Path] = {}
        for r in range(runs):
            order = SIDES if r % 2 == 0 else SIDES[::-1]
            row.order.append(order[0])
            for side in order:
                pair = pairs[side] = self.pair(f"first-{side}-{r}")
                settle()
                if side == "daemon":
                    wall, in_log, after = self._daemon_first(pair)
                    row.daemon.append(wall)
                    row.daemon_log.append(in_log)
                    row.daemon_after.append(after)
                else:
                    row.standalone.append(sync(pair))
                    self._count(pair, "syncd sync")
            self.say(
                f"first download run {r}: daemon {row.daemon[-1]:.2f} s "
                f"(in its log {row.daemon_log[-1]:.2f} s), standalone {row.standalone[-1]:.2f} s"
            )
        return row, pairs["daemon"], pairs["standalone"]

    def _daemon_first(self, pair: Path) -> tuple[float, float, list[str]]:
        daemon = Daemon(pair, self.live)
        seen, ready = daemon.wait_line("ready:")
        wall = seen - daemon.started
        _, start = daemon.wait_line("pass (start)")
        in_log = stamp(daemon.lines[ready]) - stamp(daemon.lines[start])
        self._count(pair, "syncd run")
        daemon.wait_idle()  # not measured: to see what the watcher made of the pass
        after = [reasons for i, reasons in daemon.passes() if i > ready]
        daemon.stop()
        return wall, in_log, after

    def _count(self, pair: Path, who: str) -> None:
        got = len(ics_files(collection(pair)))
        if got != self.n:
            raise RuntimeError(f"{who}: first download left {got} files in {pair}, wanted {self.n}")

    # ------------------------------------------------------------------ remote changes

    def remote_changes(self, runs: int, count: int, daemon_pair: Path, alone_pair: Path) -> Row:
        row = Row()
        for r in range(runs):
            order = SIDES if r % 2 == 0 else SIDES[::-1]
            row.order.append(order[0])
            for side in order:
                title = f"daemon_big r{r} {side}"
                if side == "daemon":
                    took, push, after, request = self._daemon_changes(daemon_pair, count, title)
                    row.requests["daemon"].append(request)
                    row.daemon.append(took)
                    row.daemon_log.append(push)
                    row.daemon_after.append(after)
                else:
                    sync(alone_pair)  # the daemon's changes of earlier runs (not measured)
                    want = self._targets(alone_pair, count, title)
                    settle()
                    row.requests["standalone"].append(self._change(want))
                    row.standalone.append(sync(alone_pair))
                    missing = self._await_titles(want, None, 0.0)
                    if missing:
                        raise RuntimeError(f"syncd sync: {missing} new titles not downloaded")
            self.say(
                f"{count} remote changes run {r}: daemon {row.daemon[-1]:.2f} s "
                f"(its pass began {row.daemon_log[-1]:.2f} s after the answer), "
                f"standalone {row.standalone[-1]:.2f} s"
            )
        return row

    def _daemon_changes(
        self, pair: Path, count: int, title: str
    ) -> tuple[float, float, list[str], float]:
        daemon = Daemon(pair, self.live)
        daemon.wait_line("ready:")  # its start-up pass also takes the other side's changes
        # The start-up pass may have begun before the watch was in place: the first pass
        # asked for looks at every file, and the watch vouches from then on (as in
        # sync_bench.SyncdSide.daemon).  `syncd sync` asks the running daemon.
        begun = len(daemon.read())
        sync(pair)
        if not any("asked" in reasons for _, reasons in daemon.passes(begun)):
            raise RuntimeError(f"`syncd sync` did not ask the daemon; {daemon.log}")
        daemon.wait_idle()
        want = self._targets(pair, count, title)
        settle()
        since = len(daemon.read())
        if self.freeze:
            daemon.signal(signal.SIGSTOP)
        try:
            request = self._change(want)
        finally:
            t0, w0 = time.perf_counter(), time.time()
            if self.freeze:
                daemon.signal(signal.SIGCONT)
        missing = self._await_titles(want, daemon, TIMEOUT)
        took = time.perf_counter() - t0
        if missing:
            raise RuntimeError(f"syncd run: {missing} new titles not downloaded in {TIMEOUT:.0f} s")
        daemon.wait_idle()  # not measured
        if any("clock jumped" in line for line in daemon.lines[since:]):
            self.say("the daemon took the request's pause for a suspend (see --no-freeze)")
        passes = daemon.passes(since)
        if not passes:
            raise RuntimeError(f"syncd run: the files changed, but no pass in {daemon.log}?")
        push = stamp(daemon.lines[passes[0][0]]) - w0
        daemon.stop()
        return took, push, [reasons for _, reasons in passes[1:]], request

    def _targets(self, pair: Path, count: int, title: str) -> dict[Path, tuple[str, str]]:
        """The next ``count`` events (wrapping around at N), as {file: (id, new title)};
        each title ends in ``#index#``, so none is a prefix of another."""
        if self.cursor + count > self.n:
            self.cursor = 0
        chosen = set(self.ids[self.cursor : self.cursor + count])
        self.cursor += count
        want: dict[Path, tuple[str, str]] = {}
        for path in ics_files(collection(pair)):
            m = UID_RE.search(path.read_bytes())
            rid = self.uids.get(m.group(1).decode().strip()) if m else None
            if rid in chosen:
                want[path] = (rid, f"{title} #{self.index[rid]}#")
        if len(want) != len(chosen):
            raise RuntimeError(f"{pair}: found the files of {len(want)} of {len(chosen)} events")
        return want

    def _change(self, want: dict[Path, tuple[str, str]]) -> float:
        """One CalendarEvent/set updating every title in ``want``; seconds it took."""
        update = {rid: {"title": title} for rid, title in want.values()}
        started = time.perf_counter()
        ((name, body, _),) = seed.jmap_call(
            self.user, [["CalendarEvent/set", {"accountId": self.user.name, "update": update}, "u"]]
        )
        if name != "CalendarEvent/set" or body.get("notUpdated"):
            raise RuntimeError(f"updating titles failed: {name}: {str(body)[:500]}")
        return time.perf_counter() - started

    @staticmethod
    def _await_titles(
        want: dict[Path, tuple[str, str]], daemon: Daemon | None, timeout: float
    ) -> int:
        """Until each file holds its new title (only the files still to see are read
        again, every POLL seconds), or ``timeout``; how many are still missing."""
        pending = {path: f"SUMMARY:{title}".encode() for path, (_, title) in want.items()}
        deadline = time.monotonic() + timeout
        while True:
            for path, needle in list(pending.items()):
                try:
                    if needle in path.read_bytes():
                        del pending[path]
                except FileNotFoundError:
                    pass
            if not pending or time.monotonic() >= deadline:
                return len(pending)
            if daemon is not None:
                daemon.check_alive("while the changes came down")
            time.sleep(POLL)


# ---------------------------------------------------------------------- report


def fmt(xs: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


def spread(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def table(n: int, runs: int, rows: dict[str, Row], extra: dict[str, str], how: str) -> str:
    out = [
        f"N = {n}, {runs} run(s); seconds, median (min-max); {how}",
        "",
        "| row | daemon | standalone | daemon / standalone |",
        "|---|--:|--:|--:|",
    ]
    for name, row in rows.items():
        ratio = statistics.median(row.daemon) / statistics.median(row.standalone)
        out.append(f"| {name} | {spread(row.daemon)} | {spread(row.standalone)} | {ratio:.2f} |")
        out.append(f"| {extra[name]} | {spread(row.daemon_log)} | - | - |")
    out.append("")
    for name, row in rows.items():
        by_run = [f"{d / s:.2f}" for d, s in zip(row.daemon, row.standalone, strict=True)]
        after = ["none" if not a else ", ".join(a) for a in row.daemon_after]
        out.append(f"{name}, run by run (first to go: {', '.join(row.order)}):")
        out.append(f"  daemon / standalone {' '.join(by_run)}")
        out.append(f"  the daemon's passes after the measured one: {'; '.join(after)}")
        for side, took in row.requests.items():
            if took:
                out.append(f"  the request (not measured), {side}: {fmt(took)} s")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, nargs="+", default=[10000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--changes", type=int, default=1000, help="remote changes per run")
    ap.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the daemon running while the server takes the changes (its pass then "
        "begins before the request is answered, and its figure leaves that part out)",
    )
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (and logs)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.changes < 1 or min(args.n) < 1:
        ap.error("--n, --runs and --changes must be at least 1")
    if os.geteuid() != 0 or not harness.is_installed():
        ap.error("needs root and the Cyrus chroot (`python3 contrib/cyrus/harness.py install`)")

    # Measure syncd as installed: compiled once, not in every pass (as sync_bench.py).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "syncd")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # SIGTERM, and SIGINT even where started in the background (which ignores it), end
    # the run through the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results: dict[int, dict[str, Row]] = {}
    out = []
    with scratchfs.scratch("auto", keep=args.keep) as (work, where):
        print(f"[daemon_big] work directory {work}: {where}", file=sys.stderr, flush=True)
        live: list[Daemon] = []
        server = harness.CyrusServer.start()
        try:
            bench = Bench(work, server, live, not args.no_freeze)
            for n in args.n:
                bench.seed(n)
                first, daemon_pair, alone_pair = bench.first_download(args.runs)
                changes = min(args.changes, n)
                changed = bench.remote_changes(args.runs, changes, daemon_pair, alone_pair)
                rows = {"first download": first, f"{changes:,} remote changes": changed}
                extra = {
                    "first download": "  in the daemon's log: pass (start) -> ready:",
                    f"{changes:,} remote changes": "  answer -> the daemon's pass begins (log)",
                }
                results[n] = rows
                how = f"the daemon {'left running' if args.no_freeze else 'stopped'} during the request"
                out.append(table(n, args.runs, rows, extra, how))
                print(out[-1], file=sys.stderr, flush=True)
        finally:  # before the directory goes: the daemons watch it
            for daemon in live:
                daemon.stop()
            server.stop()
            server.remove()
    if args.json:
        args.json.write_text(
            json.dumps(
                {str(n): {k: asdict(v) for k, v in rows.items()} for n, rows in results.items()},
                indent=1,
            )
        )
    print(f"vdirs on {where}")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
