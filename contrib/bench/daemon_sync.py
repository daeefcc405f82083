"""What a `syncd sync` with nothing to do costs while `syncd run` serves the configuration,
by calendar size.

    python3 contrib/bench/daemon_sync.py [--n 1000 50000] [--runs 15]

For each N: seeds N events into a fresh Cyrus account (contrib/cyrus/harness.py), syncs
them into a fresh vdir with `syncd sync`, and starts `syncd run` on it.  Then, with every
daemon running, times `syncd -v sync` (a child process, interpreter start included) for
each N in turn, alternating which N goes first, after `os.sync()` and a pause: the
command asks the daemon for its pass (syncd.control).  Each pass is checked to be the
daemon's.  Prints the median and every run, in seconds.  Needs root (the Cyrus chroot).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "contrib" / "cyrus"))
sys.path.insert(0, str(REPO / "contrib" / "bench"))
sys.path.insert(0, str(REPO))
import harness  # noqa: E402
import seed  # noqa: E402
from daemon_pass import write_config  # noqa: E402

from syncd import control  # noqa: E402


def syncd(config: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "syncd", "-c", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        **kwargs,
    )


def _measure(
    server: harness.CyrusServer,
    work: Path,
    sizes: list[int],
    runs: int,
    daemons: list[subprocess.Popen[bytes]],
) -> dict[int, list[float]]:
    configs: dict[int, Path] = {}
    for n in sizes:
        user = server.add_user(f"ds{n}")
        seed.seed_jmap(user, seed.make_events(n))
        seed.jmap_warm(user, sorted(seed.jmap_ids(user)))
        config = configs[n] = write_config(work / f"n{n}", user)
        syncd(config, "sync", check=True)
        with open(work / f"daemon-{n}.log", "wb") as log:
            daemons.append(
                subprocess.Popen(
                    [sys.executable, "-m", "syncd", "-c", str(config), "-v", "run"],
                    stdout=log,
                    stderr=log,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )
            )
    for config in configs.values():
        path = control.socket_path(config)
        while path is None or not path.exists():
            time.sleep(0.1)
        syncd(config, "sync", check=True)  # the first asked pass may look at every file
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for r in range(runs):
        for n in sizes if r % 2 == 0 else sizes[::-1]:
            os.sync()
            time.sleep(0.5)
            started = time.perf_counter()
            done = syncd(configs[n], "-v", "sync")
            times[n].append(time.perf_counter() - started)
            if done.returncode != 0 or "the running daemon (pid" not in done.stderr:
                raise RuntimeError(f"not the daemon's pass: {done.stderr}")
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 50000])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "syncd")], check=True)
    server = harness.CyrusServer.start()
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="syncd-daemon-sync-") as work:
            try:
                times = _measure(server, Path(work), args.n, args.runs, daemons)
            finally:  # before the directory goes: they watch it
                for proc in daemons:
                    proc.terminate()
                    proc.wait(30)
    finally:
        server.stop()
        server.remove()
    for n in args.n:
        runs = " ".join(f"{t:.3f}" for t in times[n])
        print(f"N = {n}: median {statistics.median(times[n]):.3f} s ({runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
