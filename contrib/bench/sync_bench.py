"""Benchmark: syncd against Cyrus (JMAP) next to vdirsyncer against Radicale (CalDAV).

    python3 contrib/bench/sync_bench.py                     # N = 1000 and 10000, 3 runs
    python3 contrib/bench/sync_bench.py --n 1000 --runs 5
    python3 contrib/bench/sync_bench.py --n 50000 --only syncd
    python3 contrib/bench/sync_bench.py --n 10000 --profile /tmp/prof   # + pyinstrument
    python3 contrib/bench/sync_bench.py --peer xandikos     # vdirsyncer against Xandikos

Needs root (the Cyrus harness runs the server in its chroot, see contrib/cyrus/harness.py)
and, for the comparison, vdirsyncer and its CalDAV server (radicale, or xandikos with
``--peer xandikos``): taken from --venv (default $XDG_CACHE_HOME/syncd-bench/venv, made
with `pip install vdirsyncer radicale` when missing, the peer added when it is missing).

Every measured pass is the real command line in a child process (`python3 -m syncd -c
CONFIG sync`, `vdirsyncer -c CONFIG sync`), interpreter start included, forked by a small
launcher that reports its wait4 (see LAUNCHER).  Per pass: wall time, CPU time (user+sys of
that child), peak RSS of that child, HTTP
requests and bytes (both directions, headers included) counted by a proxy in front of each
server (contrib/bench/proxy.py), and the CPU time of the whole machine (/proc/stat: the
server's and the kernel's work too).  Each figure is the median of --runs passes.  The
sides take turns for their first downloads (``first_downloads``), and the table ends
with that row's ratio run by run.  See contrib/bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "contrib" / "cyrus"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import scratchfs  # noqa: E402
import seed  # noqa: E402
from proxy import CountingProxy  # noqa: E402

SCENARIOS = [
    "first download",
    "no change",
    "no change, daemon running",
    "1 remote change",
    "100 remote changes",
    "1 local change",
    "100 local changes",
    "adopt existing vdir",
    "first upload",
]


@dataclass
class Measure:
    wall: float
    cpu: float
    rss_mb: float
    requests: int
    nbytes: int
    machine_cpu: float = 0.0  # every process and the kernel: the server's work included


def machine_busy() -> float:
    """CPU seconds the whole machine spent not idle, from /proc/stat (0 elsewhere).

    The pass's own CPU leaves out the server that answers it (Cyrus, Radicale) and the
    kernel's work for both; on a small machine they compete for the same cores, so this
    is the figure that says how much work a pass costs in all."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# Runs one measured command and reports its own wall time, CPU and peak RSS.  Peak RSS
# cannot be read from this process's wait4: the child is spawned by vfork + exec, and
# Linux carries the spawning process's high-water mark into the child's ru_maxrss
# through exec, so every pass "peaked" at least at this benchmark's own size (about 100 MB
# with 50,000 seeded events in memory).  A small launcher, started without site, forks
# the command from its own fresh address space: the floor is the launcher's few MB.
LAUNCHER = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    json.dump({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


QUIET_CORES = 0.1  # busy core-seconds per second below which the machine counts as quiet
QUIET_WAIT_MAX = 15.0  # seconds settle() waits at most


def settle() -> float:
    """Write back what earlier steps left dirty and wait for the machine to go quiet;
    seconds waited.  Seeding leaves Cyrus's or Radicale's files to be written back, and
    each first download 10,000 new files: without this, the first passes after a seed
    measured that writeback too (session 14: 3.03 and 2.92 s, then 2.62 and 2.53)."""
    t0 = time.monotonic()
    os.sync()
    while time.monotonic() - t0 < QUIET_WAIT_MAX:
        busy0, w0 = machine_busy(), time.monotonic()
        time.sleep(0.25)
        if (machine_busy() - busy0) / (time.monotonic() - w0) < QUIET_CORES:
            break
    return time.monotonic() - t0


def run_child(cmd: list[str], proxy: CountingProxy, log: Path, env: dict | None = None) -> Measure:
    """Run one pass in a child process, on a quiet machine; measure it from the outside."""
    settle()
    req0, bytes0 = proxy.snapshot()
    with tempfile.NamedTemporaryFile(suffix=".json") as report, open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        busy0 = machine_busy()
        launcher = [sys.executable, "-S", "-I", "-c", LAUNCHER, report.name, *cmd]
        proc = subprocess.run(launcher, stdout=out, stderr=out, env=env)
        busy = machine_busy() - busy0
        got = json.loads(Path(report.name).read_text() or "{}")
    cpu = got.get("cpu", 0.0) + reap_orphans()
    req1, bytes1 = proxy.snapshot()
    if proc.returncode != 0 or not got:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}; log {log}:\n{tail}")
    return Measure(got["wall"], cpu, got["maxrss_kb"] / 1024, req1 - req0, bytes1 - bytes0, busy)


def become_subreaper() -> None:
    """Orphans of a measured pass (syncd's conversion workers come from a forkserver that
    outlives the pass by a moment) are handed to this process, so their CPU is counted."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _orphans() -> list[int]:
    """Our children that we did not start: a measured pass's leftovers."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        # a zombie's command line is empty: any zombie child of ours is a leftover too
        if int(fields[1]) == me and (b"multiprocessing" in cmdline or fields[0] == "Z"):
            found.append(int(stat.parent.name))
    return found


def reap_orphans(timeout: float = 10.0) -> float:
    """Wait for a pass's orphans; their CPU seconds (with their own reaped children)."""
    cpu, deadline = 0.0, time.monotonic() + timeout
    while True:
        pending = _orphans()
        for pid in pending:
            try:
                got, _, ru = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if got:
                cpu += ru.ru_utime + ru.ru_stime
        if not pending or time.monotonic() > deadline:
            return cpu
        time.sleep(0.02)


SUMMARY = re.compile(rb"^SUMMARY[^:\r\n]*:[^\r\n]*", re.M)


def edit_local_file(path: Path, title: str) -> None:
    """What an editor or khal does: rewrite the file with a new SUMMARY."""
    data = path.read_bytes()
    new, count = SUMMARY.subn(b"SUMMARY:" + title.encode(), data, count=1)
    assert count == 1, path
    path.write_bytes(new)


def ics_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.suffix == ".ics" and not p.name.startswith(".")
    )


def grep_title(directory: Path, title: str) -> bool:
    needle = title.encode()
    return any(needle in p.read_bytes() for p in ics_files(directory))


def file_states(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Each item file's inode, mtime and size: a file rewritten, even with the same
    bytes, shows as changed (what ``syncd.adopt`` calls "left exactly as they were")."""
    states = {}
    for p in ics_files(directory):
        st = p.stat()
        states[p.name] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return states


# --------------------------------------------------------------------------- syncd


class SyncdSide:
    label = "syncd"

    def __init__(self, work: Path, profile: Path | None) -> None:
        self.work = work
        self.server = harness.CyrusServer.start()
        self.proxy = CountingProxy(self.server.http_port)
        self.log = work / "syncd.log"
        self.profile = profile
        self.users: dict[int, harness.CyrusUser] = {}
        self.ids: dict[int, list[str]] = {}
        self.caldav: dict[int, list[bytes]] = {}  # Cyrus's CalDAV rendering (adopt_pair)
        self.serial = 0

    def close(self) -> None:
        self.proxy.close()
        self.server.stop()
        self.server.remove()

    def seed(self, n: int, events: list[seed.Event]) -> float:
        user = self.server.add_user(f"dl{n}")
        took = seed.seed_jmap(user, events)
        self.users[n] = user
        self.ids[n] = sorted(seed.jmap_ids(user))
        assert len(self.ids[n]) == n, len(self.ids[n])
        # Fill Cyrus's JSCalendar cache, as a server in use would have it (not measured;
        # Radicale's item cache is warmed the same way on the other side).  Without it
        # the first of the first downloads measured Cyrus converting every event.
        seed.jmap_warm(user, self.ids[n])
        return took

    def _pair(self, user: harness.CyrusUser, tag: str) -> Path:
        d = self.work / f"syncd-{tag}"
        if d.exists():
            shutil.rmtree(d)
        (d / "vdir").mkdir(parents=True)
        (d / "config.yaml").write_text(
            "accounts:\n"
            "  home:\n"
            f"    url: http://127.0.0.1:{self.proxy.port}\n"
            f"    username: {user.name}\n"
            f"    password: {user.password}\n"
            "pairs:\n"
            "  cal:\n"
            "    account: home\n"
            f"    local: {d / 'vdir'}\n"
            "    collections: all\n"
            "    conflict: remote-wins\n"
            f"state_dir: {d / 'state'}\n"
        )
        (d / "config.yaml").chmod(0o600)
        return d

    def download_pair(self, n: int, run: int) -> Path:
        return self._pair(self.users[n], f"dl{n}-{run}")

    def sync(self, pair: Path, profile_as: str | None = None) -> Measure:
        cmd = [sys.executable, "-m", "syncd", "-c", str(pair / "config.yaml"), "sync"]
        if profile_as and self.profile:
            self.profile.mkdir(parents=True, exist_ok=True)
            out = self.profile / f"{profile_as}.txt"
            # syncd's own entry point ends the process with os._exit (syncd.cli.run),
            # before a profiler could write its report: main() is called instead.
            cmd = [
                sys.executable,
                "-m",
                "pyinstrument",
                "-r",
                "text",
                "-o",
                str(out),
                "-c",
                "import sys; from syncd.cli import main; sys.exit(main())",
                *cmd[3:],
            ]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        return run_child(cmd, self.proxy, self.log, env)

    @contextlib.contextmanager
    def daemon(self, pair: Path) -> Iterator[None]:
        """`syncd run` on ``pair`` for the body: a `syncd sync` then asks it for its pass
        (syncd.control).  Its requests go through the proxy and count; its CPU is in the
        machine's figure, not the command's."""
        sys.path.insert(0, str(REPO))
        from syncd import control

        config = pair / "config.yaml"
        socket_path = control.socket_path(config)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "ab") as out:
            out.write(f"\n$ syncd -c {config} -v run\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "syncd", "-c", str(config), "-v", "run"],
                stdout=out,
                stderr=out,
                env=env,
            )
        try:
            status = pair / "state" / "daemon.json"
            deadline = time.monotonic() + 300
            while not (
                socket_path is not None
                and socket_path.exists()
                and status.exists()
                and json.loads(status.read_text() or "{}").get("cal", {}).get("passes", 0) >= 1
            ):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"syncd run did not get ready; log {self.log}")
                time.sleep(0.1)
            # The start-up pass may have begun before the watch was in place: the first
            # pass asked for looks at every file, and the watch vouches from then on.
            self.sync(pair)
            yield
        finally:
            proc.terminate()
            proc.wait(30)

    def collection_dir(self, pair: Path) -> Path:
        dirs = [p for p in (pair / "vdir").iterdir() if p.is_dir()]
        assert len(dirs) == 1, dirs
        return dirs[0]

    def count_local(self, pair: Path) -> int:
        return len(ics_files(self.collection_dir(pair)))

    def remote_change(self, n: int, pair: Path, indexes: list[int], title: str) -> None:
        user = self.users[n]
        update = {self.ids[n][i]: {"title": f"{title} {i}"} for i in indexes}
        ((name, body, _),) = user.jmap(
            [["CalendarEvent/set", {"accountId": user.name, "update": update}, "u"]]
        )
        assert name == "CalendarEvent/set" and not body.get("notUpdated"), body

    def remote_has_title(self, n: int, index: int, title: str) -> bool:
        user = self.users[n]
        ((_, body, _),) = user.jmap(
            [
                [
                    "CalendarEvent/get",
                    {"accountId": user.name, "ids": [self.ids[n][index]], "properties": ["title"]},
                    "g",
                ]
            ]
        )
        return body["list"][0]["title"] == title

    def uid_index(self, n: int, uid: str) -> int:
        import base64

        rid = "EB-" + base64.urlsafe_b64encode(uid.encode()).decode().rstrip("=")
        return self.ids[n].index(rid)

    def upload_pair(self, n: int, run: int, events: list[seed.Event]) -> tuple[Path, object]:
        self.serial += 1
        user = self.server.add_user(f"up{n}x{self.serial}")
        pair = self._pair(user, f"up{n}-{run}")
        seed.write_vdir(pair / "vdir" / "Default", events)
        return pair, user

    def count_remote_upload(self, handle: object) -> int:
        return len(seed.jmap_ids(handle))

    def adopt_pair(
        self, n: int, run: int, layout: Path, events: list[seed.Event], downloaded: Path
    ) -> Path:
        """A fresh pair (empty state_dir, so an empty journal) on the seeded user, whose
        vdir already holds the N events' files in ``layout`` (where the first download
        put its collection): the vdir a vdirsyncer user brings when moving to syncd, as
        vdirsyncer would have filled it from this server: Cyrus's CalDAV rendering of
        each event (seed.caldav_files; fetched once, not measured), not syncd's own."""
        pair = self._pair(self.users[n], f"ad{n}-{run}")
        if n not in self.caldav:
            self.caldav[n] = seed.caldav_files(self.users[n])
            assert len(self.caldav[n]) == n, len(self.caldav[n])
        target = pair / layout
        target.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(self.caldav[n]):
            (target / f"caldav-{i:06d}.ics").write_bytes(data)
        return pair

    def count_remote(self, n: int) -> int:
        return len(seed.jmap_ids(self.users[n]))

    ADOPTED = re.compile(r"^adopted .*: (\d+) of (\d+) existing file\(s\) paired", re.M)
    LEFT = re.compile(r"^\s+(\d+) left exactly as they were", re.M)
    SENT = re.compile(r"^\s+(\d+) local-only item\(s\) sent.*?, (\d+) server-only", re.M)
    PASS_LINE = re.compile(r"^cal: .*; up (\d+), down (\d+)", re.M)

    def adoption_problems(self, n: int, output: str) -> list[str]:
        """What the adoption pass's own report (syncd.adopt, printed by `syncd sync` after
        a first pass over existing files) says went other than "all N paired, none
        rewritten, nothing sent or fetched".  The "cal: ...; up U, down D" line is only
        printed when the pass changed something, so its absence is fine."""
        problems = []
        adopted, left, sent = (r.search(output) for r in (self.ADOPTED, self.LEFT, self.SENT))
        if not adopted or adopted.groups() != (str(n), str(n)):
            problems.append(f"not all {n} files paired: {adopted and adopted.group(0)!r}")
        if not left or left.group(1) != str(n):
            problems.append(f"not all {n} files left as they were: {left and left.group(0)!r}")
        if not sent or sent.groups() != ("0", "0"):
            problems.append(f"items sent or fetched: {sent and sent.group(0)!r}")
        for m in self.PASS_LINE.finditer(output):
            if m.groups() != ("0", "0"):
                problems.append(f"the pass changed items: {m.group(0)!r}")
        if "not paired:" in output or "differed from the server" in output:
            problems.append("some files not paired or rewritten")
        return problems


# --------------------------------------------------------------------------- vdirsyncer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PEERS = ("radicale", "xandikos")  # the CalDAV servers vdirsyncer can be measured against


def ensure_venv(venv: Path, peer: str = "radicale") -> Path:
    """The venv vdirsyncer and its CalDAV server run from, made or completed on first use."""
    missing = [p for p in ("vdirsyncer", peer) if not (venv / "bin" / p).exists()]
    if missing:
        print(f"[bench] installing {' and '.join(missing)} into {venv}", file=sys.stderr)
        if not (venv / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *missing], check=True)
    return venv


class VdirsyncerSide:
    label = "vdirsyncer"
    SERVER = "radicale"  # the CalDAV server's command in the venv
    USER = "bench"

    def __init__(self, work: Path, venv: Path) -> None:
        self.work = work
        self.venv = venv
        self.port = free_port()
        self.log = work / "vdirsyncer.log"
        self.server = self._start_server()
        self.proxy = CountingProxy(self.port)
        self.serial = 0
        self.events: dict[int, list[seed.Event]] = {}
        deadline = time.monotonic() + 20
        while True:
            try:
                self._http("PROPFIND", f"/{self.USER}/", headers={"Depth": "0"})
                break
            except OSError:
                if time.monotonic() > deadline or self.server.poll() is not None:
                    raise RuntimeError(
                        f"the CalDAV server did not start; see {self.server_log.name}"
                    ) from None
                time.sleep(0.2)

    def _start_server(self) -> subprocess.Popen:
        self.storage = self.work / "radicale"
        self.root = self.storage / "collection-root" / self.USER
        self.root.mkdir(parents=True)
        self.server_log = open(self.work / "radicale.log", "ab")  # noqa: SIM115 (closed in close())
        return subprocess.Popen(
            [
                str(self.venv / "bin" / "radicale"),
                f"--server-hosts=127.0.0.1:{self.port}",
                f"--storage-filesystem-folder={self.storage}",
                "--auth-type=none",
                "--logging-level=warning",
            ],
            stdout=self.server_log,
            stderr=self.server_log,
            start_new_session=True,
        )

    def server_version(self) -> str:
        out = subprocess.run(
            [str(self.venv / "bin" / self.SERVER), "--version"], capture_output=True, text=True
        )
        text = out.stdout.strip()  # radicale: "3.9.0"; xandikos: "xandikos 0.4.10"
        return text if text.startswith(self.SERVER) else f"{self.SERVER} {text}"

    def version(self) -> str:
        out = subprocess.run(
            [str(self.venv / "bin" / "vdirsyncer"), "--version"], capture_output=True, text=True
        )
        return f"{out.stdout.strip()}, {self.server_version()}"

    def close(self) -> None:
        self.proxy.close()
        os.killpg(self.server.pid, signal.SIGTERM)
        self.server.wait(10)
        self.server_log.close()

    def _http(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> bytes:
        import base64

        auth = base64.b64encode(f"{self.USER}:x".encode()).decode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body,
            method=method,
            headers={"Authorization": f"Basic {auth}", **(headers or {})},
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.read()

    def _make_collection(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True)
        (d / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR", "D:displayname": name}))
        return d

    def seed(self, n: int, events: list[seed.Event]) -> float:
        t0 = time.perf_counter()
        seed.write_vdir(self._make_collection(f"dl{n}"), events)
        self.events[n] = events
        # Warm Radicale's item cache, as a server in use would have it (not measured).
        self._http("PROPFIND", f"/{self.USER}/dl{n}/", headers={"Depth": "1"})
        return time.perf_counter() - t0

    def _pair(self, collection: str, tag: str) -> Path:
        d = self.work / f"vds-{tag}"
        if d.exists():
            shutil.rmtree(d)
        (d / "vdir").mkdir(parents=True)
        (d / "status").mkdir()
        (d / "config").write_text(
            "[general]\n"
            f'status_path = "{d / "status"}/"\n\n'
            "[pair bench]\n"
            'a = "bench_local"\nb = "bench_remote"\ncollections = null\n'
            'conflict_resolution = "b wins"\n\n'
            "[storage bench_local]\n"
            f'type = "filesystem"\npath = "{d / "vdir"}/"\nfileext = ".ics"\n\n'
            "[storage bench_remote]\n"
            'type = "caldav"\n'
            f'url = "http://127.0.0.1:{self.proxy.port}/{self.USER}/{collection}/"\n'
            f'username = "{self.USER}"\npassword = "x"\n'
        )
        return d

    def discover(self, pair: Path) -> None:
        """`vdirsyncer discover` is a one-time set-up step: run, but not measured."""
        subprocess.run(
            [
                str(self.venv / "bin" / "vdirsyncer"),
                "-c",
                str(pair / "config"),
                "discover",
                "bench",
            ],
            check=True,
            capture_output=True,
        )

    def download_pair(self, n: int, run: int) -> Path:
        pair = self._pair(f"dl{n}", f"dl{n}-{run}")
        self.discover(pair)
        return pair

    def sync(self, pair: Path, profile_as: str | None = None) -> Measure:
        cmd = [str(self.venv / "bin" / "vdirsyncer"), "-c", str(pair / "config"), "sync"]
        return run_child(cmd, self.proxy, self.log)

    def collection_dir(self, pair: Path) -> Path:
        return pair / "vdir"

    def count_local(self, pair: Path) -> int:
        return len(ics_files(pair / "vdir"))

    def remote_change(self, n: int, pair: Path, indexes: list[int], title: str) -> None:
        for i in indexes:
            ev = self.events[n][i]
            ev = seed.Event(**{**ev.__dict__, "title": f"{title} {i}", "sequence": ev.sequence + 1})
            self._http(
                "PUT",
                f"/{self.USER}/dl{n}/{seed.ics_filename(ev)}",
                seed.to_ics(ev).encode(),
                {"Content-Type": "text/calendar; charset=utf-8"},
            )

    def remote_has_title(self, n: int, index: int, title: str) -> bool:
        ev = self.events[n][index]
        return (
            f"SUMMARY:{title}".encode()
            in (self.root / f"dl{n}" / seed.ics_filename(ev)).read_bytes()
        )

    def uid_index(self, n: int, uid: str) -> int:
        return next(i for i, e in enumerate(self.events[n]) if e.uid == uid)

    def upload_pair(self, n: int, run: int, events: list[seed.Event]) -> tuple[Path, object]:
        self.serial += 1
        name = f"up{n}x{self.serial}"
        self._make_collection(name)
        pair = self._pair(name, f"up{n}-{run}")
        seed.write_vdir(pair / "vdir", events)
        self.discover(pair)
        return pair, self.root / name

    def count_remote_upload(self, handle: object) -> int:
        return len(ics_files(handle))  # type: ignore[arg-type]

    def adopt_pair(
        self, n: int, run: int, layout: Path, events: list[seed.Event], downloaded: Path
    ) -> Path:
        """A fresh pair (empty status directory) on the seeded collection, whose vdir
        already holds the N events' files in ``layout``: what a lost or new vdirsyncer
        status meets.  Discovered, not measured, as ``download_pair`` does.

        The files are copies of those vdirsyncer wrote in the first download
        (``downloaded``, not edited yet), not the seeded .ics: Radicale stores those
        bytes but serves them re-serialized (properties reordered, TRIGGER:-PT60M as
        -PT1H, ATTENDEE parameters reordered), and vdirsyncer compares the served text's
        hash (sync.ResolveConflict): 509 of 1000 seeded files differed, and "b wins"
        rewrote them all.  A vdir vdirsyncer filled holds what the server served."""
        pair = self._pair(f"dl{n}", f"ad{n}-{run}")
        (pair / layout).mkdir(parents=True, exist_ok=True)
        for src in ics_files(self.collection_dir(downloaded)):
            (pair / layout / src.name).write_bytes(src.read_bytes())
        self.discover(pair)
        return pair

    def count_remote(self, n: int) -> int:
        """The items in Radicale's own storage (one file per item), read from the disk:
        no request, so nothing counted by the proxy."""
        return len(ics_files(self.root / f"dl{n}"))

    CHANGED = re.compile(r"^(?:Copying \(\w+\)|Deleting) item .*", re.M)

    def adoption_problems(self, n: int, output: str) -> list[str]:
        """vdirsyncer logs every item it copies or deletes (at its default level, INFO);
        with an empty status, an item on both sides with the same hash is only recorded."""
        changed = self.CHANGED.findall(output)
        return [f"{len(changed)} item(s) copied or deleted, e.g. {changed[0]!r}"] if changed else []


class XandikosSide(VdirsyncerSide):
    """vdirsyncer against Xandikos, the other CalDAV server issue 6 names, instead of
    Radicale (``--peer xandikos``).  Xandikos keeps each collection as a git repository
    with a working tree (``TreeGitStore``): it serves what the repository's index holds,
    and a PUT writes the file into the tree and commits it.  Seeding therefore writes the
    N files into a new collection's tree and commits them at once with git (a PUT each
    would be a commit each), then reads every item once over CalDAV, as a server in use
    has them in its caches and the kernel's (not measured).  Everything else (the pairs,
    the files the checks read in the tree) is as for Radicale."""

    SERVER = "xandikos"

    def _start_server(self) -> subprocess.Popen:
        self.storage = self.work / "xandikos"
        self.root = self.storage / self.USER
        self.root.mkdir(parents=True)
        self.server_log = open(self.work / "xandikos.log", "ab")  # noqa: SIM115 (closed in close())
        return subprocess.Popen(
            [
                str(self.venv / "bin" / "xandikos"),
                "serve",
                f"--directory={self.storage}",
                "--listen-address=127.0.0.1",
                f"--port={self.port}",
                f"--current-user-principal=/{self.USER}/",
            ],
            stdout=self.server_log,
            stderr=self.server_log,
            start_new_session=True,
        )

    def _make_collection(self, name: str) -> Path:
        subprocess.run(
            [
                str(self.venv / "bin" / "xandikos"),
                "create-collection",
                f"--directory={self.storage}",
                "--type=calendar",
                f"--name={self.USER}/{name}",
            ],
            check=True,
            capture_output=True,
        )
        return self.root / name

    def seed(self, n: int, events: list[seed.Event]) -> float:
        t0 = time.perf_counter()
        collection = self._make_collection(f"dl{n}")
        seed.write_vdir(collection, events)
        git = ["git", "-C", str(collection), "-c", "user.name=bench", "-c", "user.email=b@x"]
        subprocess.run([*git, "add", "--all", "--", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"{n} events"], check=True)
        self.events[n] = events
        # Every item read once, its etag and its data (not measured).
        self._http(
            "REPORT",
            f"/{self.USER}/dl{n}/",
            b'<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
            b'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/>'
            b'</D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>',
            {"Depth": "1", "Content-Type": "application/xml"},
        )
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- scenarios


UID_RE = re.compile(rb"^UID:([^\r\n]+)", re.M)


def _say(side, n: int, msg: str) -> None:
    print(f"[bench] {side.label} N={n}: {msg}", file=sys.stderr, flush=True)


def first_downloads(sides: list, n: int, runs: int) -> dict[str, tuple[list[Measure], Path]]:
    """Every side's first downloads, the sides taking turns (A B, B A, A B, ...): this
    VM's speed drifts by 30-50 % within an hour, and measured one side after the other,
    a drift between them went into the ratio (session 16: run AS's syncd passes ran in
    a slower stretch than its vdirsyncer passes).  Run r of each side is then a pair
    measured minutes apart at most; ``paired_ratios`` compares them pair by pair.
    Returns each side's measures and its last pair directory (the later scenarios
    work in it).

    Each run downloads into a directory of its own, and nothing is deleted until the
    benchmark ends: on ext4, creating files within minutes of deleting thousands on the
    same filesystem costs up to ten times the kernel time (0.2 s -> 2 s for 10,000
    files here), which made the second and third runs measure the deletion before them."""
    got: dict[str, tuple[list[Measure], Path]] = {}
    for r in range(runs):
        for side in sides if r % 2 == 0 else sides[::-1]:
            pair = side.download_pair(n, r)
            measure = side.sync(pair)
            count = side.count_local(pair)
            assert count == n, f"{side.label}: first download gave {count} files, wanted {n}"
            ms, _ = got.get(side.label, ([], pair))
            got[side.label] = ([*ms, measure], pair)
    for side in sides:
        _say(side, n, f"first download {[round(m.wall, 2) for m in got[side.label][0]]}")
    return got


def paired_ratios(a: list[Measure], b: list[Measure]) -> list[float]:
    """a/b wall time of each interleaved pair of runs (``first_downloads``)."""
    return [x.wall / y.wall for x, y in zip(a, b, strict=True) if y.wall > 0]


def run_scenarios(
    side,
    n: int,
    events: list[seed.Event],
    runs: int,
    profile: bool,
    upload_max: int,
    first: tuple[list[Measure], Path],
    adopt: bool = True,
) -> dict[str, list[Measure]]:
    """The scenarios after the first download (``first``: its measures and the pair
    directory it left), one side at a time."""
    say = lambda msg: _say(side, n, msg)  # noqa: E731
    rows: dict[str, list[Measure]] = {"first download": first[0]}
    pair = first[1]

    rows["no change"] = [side.sync(pair) for _ in range(runs)]
    say(f"no change {[round(m.wall, 2) for m in rows['no change']]}")
    if isinstance(side, SyncdSide):  # vdirsyncer has no daemon
        with side.daemon(pair):
            ms = [side.sync(pair) for _ in range(runs)]
        rows["no change, daemon running"] = ms
        say(f"no change, daemon running {[round(m.wall, 2) for m in ms]}")

    # Run here, before the edits below, though the table lists it after them: adopting
    # needs the server to hold the seeded events as they were, the same as the files.
    if adopt:
        rows["adopt existing vdir"] = ms = adopt_existing(side, n, events, runs, pair)
        say(f"adopt existing vdir {[round(m.wall, 2) for m in ms]}")
    else:
        say("adopt existing vdir skipped (--no-adopt)")

    cursor = 0
    for k in (1, 100):
        ms = []
        for r in range(runs):
            title = f"Remote edit k{k} r{r}"
            if cursor + k > n:  # a small N: edit the same events again, under new titles
                cursor = 0
            indexes = list(range(cursor, min(cursor + k, n)))
            cursor += k
            side.remote_change(n, pair, indexes, title)
            ms.append(side.sync(pair))
            last = f"{title} {indexes[-1]}"
            assert grep_title(side.collection_dir(pair), last), (
                f"{side.label}: {last!r} not downloaded"
            )
        rows[f"{k} remote change{'s' if k > 1 else ''}"] = ms
        say(f"{k} remote {[round(m.wall, 2) for m in ms]}")

    files = ics_files(side.collection_dir(pair))[::-1]
    lcursor = 0
    for k in (1, 100):
        ms = []
        for r in range(runs):
            title = f"Local edit k{k} r{r}"
            if lcursor + k > len(files):  # a small N, as above
                lcursor = 0
            chosen = files[lcursor : lcursor + k]
            lcursor += k
            for path in chosen:
                edit_local_file(path, title)
            ms.append(side.sync(pair))
            uid = UID_RE.search(chosen[-1].read_bytes()).group(1).decode()
            assert side.remote_has_title(n, side.uid_index(n, uid), title), (
                f"{side.label}: {title!r} not uploaded"
            )
        rows[f"{k} local change{'s' if k > 1 else ''}"] = ms
        say(f"{k} local {[round(m.wall, 2) for m in ms]}")

    if profile:
        pair = side.download_pair(n, 99)
        side.sync(pair, profile_as=f"first-download-{n}")
        side.sync(pair, profile_as=f"no-change-{n}")
        say("profiled")

    if upload_max < 0:
        say("first upload skipped (--no-upload)")
        return rows
    if side.label == "vdirsyncer" and n > upload_max:
        say(f"first upload skipped (N > --vds-upload-max {upload_max})")
        return rows
    ms = []
    for r in range(runs):
        pair, handle = side.upload_pair(n, r, events)
        ms.append(side.sync(pair))
        got = side.count_remote_upload(handle)
        assert got == n, f"{side.label}: first upload left {got} items on the server, wanted {n}"
    rows["first upload"] = ms
    say(f"first upload {[round(m.wall, 2) for m in ms]}")
    return rows


def adopt_existing(
    side, n: int, events: list[seed.Event], runs: int, first_pair: Path
) -> list[Measure]:
    """Our users' migration path: a vdir vdirsyncer filled, the server holding the same N
    events, and a first `sync` of a fresh pair (empty journal or status) over them.  It
    must pair every file with its server item and change nothing: afterwards the vdir
    still holds exactly the N files, none rewritten, the server N items, and the pass's
    own output reports nothing sent, fetched, rewritten or unpaired.

    The files go where this side's first download put its collection (syncd: a directory
    under the vdir, named after the calendar; vdirsyncer with ``collections = null``: the
    vdir itself), so that the pass finds them where it would have written them; what
    each side writes there is its ``adopt_pair``'s business.  ``first_pair`` must not
    have been edited yet: the server must still hold what the files say."""
    layout = side.collection_dir(first_pair).relative_to(first_pair)
    ms = []
    for r in range(runs):
        pair = side.adopt_pair(n, r, layout, events, first_pair)
        before = file_states(pair / layout)
        offset = side.log.stat().st_size if side.log.exists() else 0
        ms.append(side.sync(pair))
        with open(side.log, "rb") as f:
            f.seek(offset)
            output = f.read().decode(errors="replace")
        after = file_states(pair / layout)
        problems = side.adoption_problems(n, output)
        if len(after) != n:
            problems.append(f"the vdir holds {len(after)} files, wanted {n}")
        changed = sum(1 for name, st in before.items() if after.get(name) != st)
        if changed:
            problems.append(f"{changed} of the {len(before)} files rewritten or removed")
        extra = sorted(
            p.name
            for p in (pair / "vdir").iterdir()
            if p.is_dir() and not p.name.startswith(".") and p != pair / layout
        )
        if extra:
            problems.append(f"directories made next to {layout}: {extra}")
        remote = side.count_remote(n)
        if remote != n:
            problems.append(f"the server holds {remote} items, wanted {n}")
        if problems:
            raise RuntimeError(
                f"{side.label}: adopting an existing vdir (N={n}, run {r}) did not leave "
                "everything as it was: " + "; ".join(problems) + f"\noutput:\n{output[-3000:]}"
            )
    return ms


def med(ms: list[Measure], attr: str) -> float:
    return statistics.median(getattr(m, attr) for m in ms)


def fmt_bytes(b: float) -> str:
    return f"{b / 1e6:.2f} MB" if b >= 1e6 else f"{b / 1e3:.1f} kB"


def table(n: int, results: dict[str, dict[str, list[Measure]]], runs: int) -> str:
    s, v = results.get("syncd", {}), results.get("vdirsyncer", {})
    head = (
        f"N = {n} (median of {runs})\n\n"
        "| scenario | wall s syncd | wall s vds | wall ratio | CPU s syncd | CPU s vds | CPU ratio "
        "| machine CPU s syncd | machine CPU s vds "
        "| RSS MB syncd | RSS MB vds | requests syncd | requests vds | bytes syncd | bytes vds |\n"
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    )
    lines = []
    for name in SCENARIOS:
        a, b = s.get(name), v.get(name)

        def cell(ms, attr, f="{:.2f}"):
            return f.format(med(ms, attr)) if ms else "-"

        def ratio(attr, a=a, b=b):
            if not a or not b or med(b, attr) == 0:
                return "-"
            return f"{med(a, attr) / med(b, attr):.2f}"

        lines.append(
            f"| {name} | {cell(a, 'wall')} | {cell(b, 'wall')} | {ratio('wall')} "
            f"| {cell(a, 'cpu')} | {cell(b, 'cpu')} | {ratio('cpu')} "
            f"| {cell(a, 'machine_cpu')} | {cell(b, 'machine_cpu')} "
            f"| {cell(a, 'rss_mb', '{:.0f}')} | {cell(b, 'rss_mb', '{:.0f}')} "
            f"| {cell(a, 'requests', '{:.0f}')} | {cell(b, 'requests', '{:.0f}')} "
            f"| {fmt_bytes(med(a, 'nbytes')) if a else '-'} | {fmt_bytes(med(b, 'nbytes')) if b else '-'} |"
        )
    text = head + "\n".join(lines) + "\n"
    a, b = s.get("first download"), v.get("first download")
    if a and b:
        pairs = paired_ratios(a, b)
        text += (
            "\nfirst download, run by run (the sides taking turns): syncd / vdirsyncer "
            + " ".join(f"{r:.2f}" for r in pairs)
            + f"; median {statistics.median(pairs):.2f} ({1 / statistics.median(pairs):.2f}x)\n"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=["syncd", "vdirsyncer"])
    ap.add_argument(
        "--no-upload",
        action="store_true",
        help="skip the first-upload row on both sides (the slowest row; for quick reruns)",
    )
    ap.add_argument(
        "--no-adopt",
        action="store_true",
        help="skip the adopt-existing-vdir row on both sides (a first sync over a vdir "
        "vdirsyncer filled)",
    )
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    ap.add_argument("--venv", type=Path, default=cache / "syncd-bench" / "venv")
    ap.add_argument(
        "--profile",
        type=Path,
        help="also profile syncd's first download and no-change pass (pyinstrument) at the largest N, reports into this directory",
    )
    ap.add_argument(
        "--vds-upload-max",
        type=int,
        default=1000,
        help="skip vdirsyncer's first upload above this N (Radicale takes 65-110 s per 1000 PUTs "
        "here, and more per PUT as the collection grows)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--scratch",
        choices=["auto", "loop", "tmp"],
        default="auto",
        help="where the vdirs go: a fresh journaled ext4, loop-mounted (loop; auto where "
        "possible), or a directory in the temp directory (tmp); see scratchfs.py",
    )
    ap.add_argument(
        "--peer",
        choices=PEERS,
        default="radicale",
        help="the CalDAV server vdirsyncer syncs with: radicale (the default) or xandikos, "
        "the two issue 6 names",
    )
    ap.add_argument("--json", type=Path, help="write all raw measurements here")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    become_subreaper()
    # Measure syncd as installed: pip compiles a package's modules at install time, while a
    # checkout run under PYTHONDONTWRITEBYTECODE=1 would compile them again in every pass
    # (about 0.15 s of a no-change pass).  vdirsyncer's venv was compiled by pip.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "syncd")],
        check=True,
        stdout=subprocess.DEVNULL,
    )

    # SIGTERM (and SIGINT, which a background job ignores) still stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with scratchfs.scratch(args.scratch, keep=args.keep) as (work, where):
        print(f"[bench] work directory {work}: {where}", file=sys.stderr)
        return _run(args, work, where)


def _run(args: argparse.Namespace, work: Path, where: str) -> int:
    sides = []
    try:
        if args.only != "vdirsyncer":
            if os.geteuid() != 0 or not harness.is_installed():
                print(
                    "[bench] the Cyrus server needs root and `python3 contrib/cyrus/harness.py install`",
                    file=sys.stderr,
                )
                return 2
            sides.append(SyncdSide(work, args.profile))
        if args.only != "syncd":
            venv = ensure_venv(args.venv, args.peer)
            peer_side = XandikosSide if args.peer == "xandikos" else VdirsyncerSide
            sides.append(peer_side(work, venv))
            print(f"[bench] {sides[-1].version()}", file=sys.stderr)

        all_results: dict[int, dict[str, dict[str, list[Measure]]]] = {}
        out = []
        for n in args.n:
            events = seed.make_events(n)
            results = {}
            for side in sides:
                took = side.seed(n, events)
                print(
                    f"[bench] {side.label}: seeded {n} events in {took:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
            first = first_downloads(sides, n, args.runs)
            for side in sides:
                profile = side.label == "syncd" and args.profile is not None and n == max(args.n)
                results[side.label] = run_scenarios(
                    side,
                    n,
                    events,
                    args.runs,
                    profile,
                    -1 if args.no_upload else args.vds_upload_max,
                    first[side.label],
                    adopt=not args.no_adopt,
                )
            all_results[n] = results
            out.append(table(n, results, args.runs))
            print(out[-1], file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        str(n): {
                            k: {s: [m.__dict__ for m in ms] for s, ms in v.items()}
                            for k, v in r.items()
                        }
                        for n, r in all_results.items()
                    },
                    indent=1,
                )
            )
        print(f"vdirs on {where}")
        print("\n".join(out))
        return 0
    finally:
        for side in sides:
            side.close()


if __name__ == "__main__":
    sys.exit(main())
