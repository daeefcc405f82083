"""`syncd status` and `syncd conflicts`: read the journals, safely while the daemon runs.

SQLite in WAL mode lets these readers see the last committed pass without
blocking the daemon's writer.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

from syncd.config import Config, journal_path
from syncd.journal import Journal


def pair_status(config: Config, name: str) -> dict[str, Any]:
    pair = config.pairs[name]
    path = journal_path(config, pair)
    out: dict[str, Any] = {"pair": name, "account": pair.account, "local": str(pair.local)}
    if not path.exists():
        out["state"] = "never synced"
        return out
    journal = Journal(path)
    try:
        last = journal.last_pass()
        out["last_pass"] = (
            None
            if last is None
            else {
                "started": _iso(last[0]),
                "finished": _iso(last[1]) if last[1] else None,
                "ok": bool(last[2]) if last[2] is not None else None,
                "summary": last[3],
            }
        )
        out["collections"] = [
            {
                "dir": c.dirname,
                "remote_id": c.remote_id,
                "name": c.name,
                "items": journal.count_items(c.remote_id),
                "detached": c.detached,
            }
            for c in journal.collections()
        ]
        out["pending_remote"] = len(journal.pending_remote(now=float("inf")))
        out["errors"] = [
            {"collection": e[0], "item": e[1], "side": e[2], "reason": e[3], "attempts": e[4]}
            for e in journal.errors()
        ]
        out["conflicts"] = len(journal.conflicts())
        daemon = config.state_dir / "daemon.json"
        if daemon.exists():
            with contextlib.suppress(OSError, ValueError):
                out["daemon"] = json.loads(daemon.read_text()).get(name)
    finally:
        journal.close()
    return out


def print_status(config: Config, *, as_json: bool = False) -> int:
    report = [pair_status(config, name) for name in config.pairs]
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    for p in report:
        print(f"{p['pair']} (account {p['account']}, {p['local']})")
        if p.get("state"):
            print(f"  {p['state']}")
            continue
        last = p.get("last_pass")
        if last:
            print(
                f"  last pass: {last['started']} {'ok' if last['ok'] else 'FAILED'}: {last['summary']}"
            )
        for c in p.get("collections", []):
            extra = f" ({c['detached']})" if c["detached"] else ""
            print(f"  {c['dir']:24} {c['items']:6} items  {c['name']}{extra}")
        if p.get("pending_remote"):
            print(f"  {p['pending_remote']} server item(s) waiting to be fetched again")
        for e in p.get("errors", []):
            print(f"  error ({e['side']}, {e['attempts']}x): {e['item']}: {e['reason']}")
        if p.get("conflicts"):
            print(f"  {p['conflicts']} recorded conflict(s): see `syncd conflicts`")
        daemon = p.get("daemon")
        if daemon:
            alive = _alive(daemon.get("pid"))
            print(
                f"  daemon: {'running' if alive else 'not running'} (pid {daemon.get('pid')}), "
                f"push {daemon.get('push')}, {daemon.get('passes')} pass(es) since start"
            )
    return 0


def _alive(pid: Any) -> bool:
    import os

    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def print_conflicts(config: Config, action: str, conflict_id: int | None) -> int:
    found = False
    for name, pair in config.pairs.items():
        path = journal_path(config, pair)
        if not path.exists():
            continue
        journal = Journal(path)
        try:
            if action == "show":
                if conflict_id is None:
                    print(
                        "syncd: conflicts show needs an ID (see `syncd conflicts`)", file=sys.stderr
                    )
                    return 2
                row = journal.conflict(conflict_id)
                if row is None:
                    continue
                found = True
                print(f"conflict {row[0]} in {name}/{row[1]}: {row[2]} ({row[3]}), {row[6]}")
                print("--- local version")
                print(_pretty(row[4]))
                print("--- remote version")
                print(_pretty(row[5]))
            else:
                for row in journal.conflicts():
                    found = True
                    print(
                        f"{row[0]:5} {_iso(row[5])} {name}/{row[1]} {row[2]}: {row[3]} -> {row[4]}"
                    )
        finally:
            journal.close()
    if action == "show" and not found:
        print(f"syncd: no conflict with ID {conflict_id}", file=sys.stderr)
        return 1
    if not found:
        print("no conflicts recorded in the last 30 days")
    return 0


def _pretty(text: str | None) -> str:
    if not text:
        return "(none)"
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"
