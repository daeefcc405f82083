"""What one pass of the daemon costs after one change, by calendar size.

    python3 contrib/bench/daemon_pass.py [--n 1000 50000] [--runs 10]

For each N: seeds N events into a fresh Cyrus account (contrib/cyrus/harness.py), syncs
them into a fresh vdir with `syncd sync`, then, in one warm process as the daemon is:

* changes one event on the server and runs one pass, alternating the daemon's pass when
  its watcher saw nothing on disk (no file is stat'ed, PassOptions.local_unchanged)
  with a pass that stats every file (what every daemon pass did before);
* edits one file in place and runs one pass, alternating the daemon's pass that looks
  at the file its watcher named (PassOptions.local_named) with one that stats every
  file.

Prints the median wall and CPU time of each, and their ratio.  Needs root (the Cyrus
chroot).
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
import anyio  # noqa: E402
import harness  # noqa: E402
import seed  # noqa: E402

from syncd.config import load_config  # noqa: E402
from syncd.connect import connect  # noqa: E402
from syncd.sync.engine import PassOptions  # noqa: E402
from syncd.sync.pair import run_pair  # noqa: E402


def write_config(d: Path, user: harness.CyrusUser) -> Path:
    (d / "vdir").mkdir(parents=True)
    path = d / "config.yaml"
    path.write_text(
        "accounts:\n  home:\n"
        f"    url: http://127.0.0.1:{user.server.http_port}\n"
        f"    username: {user.name}\n    password: {user.password}\n"
        "pairs:\n  cal:\n    account: home\n"
        f"    local: {d / 'vdir'}\n    collections: all\n    conflict: remote-wins\n"
        f"state_dir: {d / 'state'}\n"
    )
    path.chmod(0o600)
    return path


async def passes(config_path: Path, user: harness.CyrusUser, ids: list[str], runs: int):
    config = load_config(config_path)
    pair = config.pairs["cal"]
    client = await connect(config.accounts[pair.account], state_dir=config.state_dir)
    await run_pair(config, pair, client, PassOptions())  # settled, connection warm
    collection = next(p for p in pair.local.iterdir() if p.is_dir())
    files = sorted(p.name for p in collection.glob("*.ics"))
    times: dict[str, list[tuple[float, float]]] = {}
    for r in range(2 * runs):
        watched = (r % 2 == 0) == ((r // 2) % 2 == 0)  # ABBA: neither side always first
        for change in ("remote", "local"):
            if change == "remote":
                seed.jmap_call(
                    user,
                    [
                        [
                            "CalendarEvent/set",
                            {"accountId": user.name, "update": {ids[r]: {"title": f"r{r}"}}},
                            "u",
                        ]
                    ],
                )
                options = PassOptions(local_unchanged=watched)
            else:
                name = files[r]
                path = collection / name
                text = path.read_text()
                with open(path, "w") as f:  # in place, as an editor may
                    f.write(text.replace("SUMMARY:", f"SUMMARY:edited {r} ", 1))
                named = {str(collection): {name}} if watched else None
                options = PassOptions(local_named=named)
            wall, cpu = time.perf_counter(), time.process_time()
            result = await run_pair(config, pair, client, options)
            key = f"{change} {'watched' if watched else 'stat all'}"
            times.setdefault(key, []).append(
                (time.perf_counter() - wall, time.process_time() - cpu)
            )
            moved = sum(
                c.downloaded if change == "remote" else c.uploaded for c in result.collections
            )
            if not result.ok or moved != 1:
                raise RuntimeError(f"unexpected {change} pass: {result.summary()}")
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 50000])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    server = harness.CyrusServer.start()
    try:
        with tempfile.TemporaryDirectory(prefix="syncd-daemon-pass-") as work:
            for n in args.n:
                user = server.add_user(f"dp{n}")
                seed.seed_jmap(user, seed.make_events(n))
                ids = sorted(seed.jmap_ids(user))
                seed.jmap_warm(user, ids)
                config_path = write_config(Path(work) / f"n{n}", user)
                subprocess.run(
                    [sys.executable, "-m", "syncd", "-c", str(config_path), "sync"],
                    check=True,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                    stdout=subprocess.DEVNULL,
                )
                times = anyio.run(passes, config_path, user, ids, args.runs)
                med = {
                    k: [statistics.median(x[i] for x in v) * 1000 for i in (0, 1)]
                    for k, v in times.items()
                }
                print(f"N = {n}: median of {args.runs} passes each", flush=True)
                for change, what in (("remote", "saw nothing"), ("local", "named the file")):
                    w, a = med[f"{change} watched"], med[f"{change} stat all"]
                    print(
                        f"  one {change} change: watcher {what}: wall {w[0]:5.0f} ms, "
                        f"CPU {w[1]:5.0f} ms; every file stat'ed: wall {a[0]:5.0f} ms, "
                        f"CPU {a[1]:5.0f} ms; ratio wall {w[0] / a[0]:.2f}, CPU {w[1] / a[1]:.2f}",
                        flush=True,
                    )
    finally:
        server.stop()
        server.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
