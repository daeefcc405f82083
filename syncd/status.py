"""`syncd status` and `syncd conflicts`: read the journals, safely while the daemon runs.

`status` opens each journal read-only (SQLite ``mode=ro`` plus ``query_only``): in WAL
mode a reader sees the last committed pass without blocking the daemon's writer, and
it never creates, migrates or prunes anything.  A pair that was never synced gets no
journal from being looked at.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from syncd.config import Config, Pair, journal_file
from syncd.journal import Journal

CONFLICT_DAYS = 30.0
DAEMON_STALE = 3 * 3600.0  # a daemon.json this old with no live pid says nothing


def open_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write: safe next to the daemon, harmless on a bad file."""
    db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=10)
    db.execute("PRAGMA query_only = ON")
    return db


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _scan_files(path: Path, known: dict[str, str | None]) -> tuple[int | None, int]:
    """Items in a collection directory now (not dot files: temporaries), and how many of
    them are local changes the next pass will carry: new files, files whose
    (mtime, size, inode) moved since the journal, and files gone.  Only ``stat``."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return None, 0
    count = changed = 0
    seen: set[str] = set()
    for e in entries:
        if e.name.startswith(".") or not e.name.endswith((".ics", ".vcf")):
            continue
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        count += 1
        seen.add(e.name)
        if known.get(e.name) != f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}":
            changed += 1
    changed += sum(1 for name in known if name not in seen)
    return count, changed


def pair_status(config: Config, name: str) -> dict[str, Any]:
    pair = config.pairs[name]
    path = journal_file(config, pair)
    out: dict[str, Any] = {
        "pair": name,
        "account": pair.account,
        "local": str(pair.local),
        "journal": str(path),
    }
    daemon = _daemon_info(config, name)
    if daemon is not None:
        out["daemon"] = daemon
    if not path.exists():
        out["state"] = "never synced"
        out["attention"] = []
        return out
    try:
        with contextlib.closing(open_readonly(path)) as db:
            _read_journal(db, pair, out)
    except sqlite3.Error as exc:
        out["state"] = f"the journal cannot be read ({exc})"
    _add_tasks(config, pair, out)
    out["attention"] = _attention(out)
    return out


def _add_tasks(config: Config, pair: Pair, out: dict[str, Any]) -> None:
    """Task lists (their own journal, see syncd.sync.pair) and whether the server has tasks."""
    if pair.types is not None and "tasks" not in pair.types:
        out["tasks"] = "not synced by this pair (types: " + ", ".join(pair.types) + ")"
        return
    try:
        db = open_readonly(Path(out["journal"]))
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'tasks_on_server'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        row = None
    if row is not None:
        out["tasks"] = "available" if row[0] == "available" else "not available on this server"
    path = journal_file(config, pair, "tasks")
    if not path.exists():
        return
    part: dict[str, Any] = {}
    try:
        with contextlib.closing(open_readonly(path)) as db:
            _read_journal(db, pair, part)
    except sqlite3.Error as exc:
        out.setdefault("errors", []).append(
            {
                "collection": "task lists",
                "item": "-",
                "side": "local",
                "reason": str(exc),
                "attempts": 1,
                "last_seen": None,
            }
        )
        return
    out.setdefault("collections", []).extend(part.get("collections", []))
    out.setdefault("errors", []).extend(part.get("errors", []))
    out["conflicts"] = out.get("conflicts", 0) + part.get("conflicts", 0)
    out["pending_remote"] = out.get("pending_remote", 0) + part.get("pending_remote", 0)
    out.setdefault("pending", []).extend(part.get("pending", []))
    out["interrupted"] = out.get("interrupted", 0) + part.get("interrupted", 0)


def _read_journal(db: sqlite3.Connection, pair: Pair, out: dict[str, Any]) -> None:
    tables = _tables(db)
    if "passes" not in tables or "collections" not in tables:
        out["state"] = "never synced"
        return
    last = db.execute(
        "SELECT started, finished, ok, summary FROM passes ORDER BY id DESC LIMIT 1"
    ).fetchone()
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
    last_ok = db.execute(
        "SELECT finished FROM passes WHERE ok = 1 ORDER BY id DESC LIMIT 1"
    ).fetchone()
    out["last_ok_pass"] = _iso(last_ok[0]) if last_ok else None
    since = time.time() - CONFLICT_DAYS * 86400
    errors = db.execute(
        "SELECT collection, key, side, reason, attempts, last_seen FROM item_errors "
        "ORDER BY collection, key"
    ).fetchall()
    conflicts = db.execute(
        "SELECT id, collection, uid, rule, result, decided_at FROM conflicts "
        "WHERE decided_at >= ? ORDER BY id",
        (since,),
    ).fetchall()
    collections = []
    for remote_id, dirname, cname, kind, detached in db.execute(
        "SELECT remote_id, dirname, name, kind, detached FROM collections ORDER BY dirname"
    ).fetchall():
        synced, on_server = db.execute(
            "SELECT COUNT(*), COUNT(remote_id) FROM items WHERE collection = ?", (remote_id,)
        ).fetchone()
        known = dict(
            db.execute(
                "SELECT filename, local_etag FROM items WHERE collection = ?", (remote_id,)
            ).fetchall()
        )
        local_files, local_changes = _scan_files(pair.local / dirname, known)
        collections.append(
            {
                "dir": dirname,
                "remote_id": remote_id,
                "name": cname,
                "kind": kind,
                "items": synced,  # paired in the journal after the last pass
                "local_files": local_files,
                "local_changes": local_changes,  # to be carried by the next pass
                "server_items": on_server,  # as the server had them at the last pass
                "errors": sum(1 for e in errors if e[0] == remote_id),
                "conflicts": sum(1 for c in conflicts if c[1] == remote_id),
                "detached": detached,
            }
        )
    out["collections"] = collections
    by_dir = {c["remote_id"]: c["dir"] for c in collections}
    pending = db.execute(
        "SELECT remote_id, reason, attempts, next_try FROM pending_remote ORDER BY remote_id"
    ).fetchall()
    out["pending_remote"] = len(pending)
    out["pending"] = [
        {"remote_id": r[0], "reason": r[1], "attempts": r[2], "next_try": _iso(r[3])}
        for r in pending
    ]
    intents = db.execute("SELECT kind, collection, uid FROM intents ORDER BY id").fetchall()
    out["interrupted"] = len(intents)  # settled at the start of the next pass
    out["errors"] = [
        {
            "collection": by_dir.get(e[0], e[0]),
            "item": e[1],
            "side": e[2],
            "reason": e[3],
            "attempts": e[4],
            "last_seen": _iso(e[5]),
        }
        for e in errors
    ]
    out["conflicts"] = len(conflicts)
    out["recent_conflicts"] = [
        {
            "id": c[0],
            "collection": by_dir.get(c[1], c[1]),
            "uid": c[2],
            "rule": c[3],
            "result": c[4],
            "decided": _iso(c[5]),
        }
        for c in conflicts[-5:]
    ]


def _daemon_info(config: Config, name: str) -> dict[str, Any] | None:
    """What the daemon last wrote about this pair, and whether it still runs."""
    path = config.state_dir / "daemon.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    info = data.get(name) if isinstance(data, dict) else None
    if not isinstance(info, dict):
        return None
    info = dict(info)
    info["running"] = _alive(info.get("pid"))
    if not info["running"] and time.time() - float(info.get("updated") or 0) > DAEMON_STALE:
        return None
    if info.get("updated"):
        info["updated"] = _iso(float(info["updated"]))
    info["push_connected"] = bool(info["running"]) and info.get("push") == "connected"
    # A daemon that read the file before its last edit still syncs the old settings, and
    # `syncd sync` runs its own passes rather than ask it (syncd.control).
    info["config_current"] = info.get("config") in (None, config.digest)
    info["answers_sync"] = bool(
        info["running"] and info.get("answers_sync") and info["config_current"]
    )
    return info


def _attention(p: dict[str, Any]) -> list[str]:
    """What a user should look at, with what to do about it."""
    notes = []
    state = p.get("state")
    if state and state != "never synced":
        notes.append(state)
    last = p.get("last_pass")
    if last and last.get("ok") is False:
        notes.append("the last pass had problems: run `syncd sync -v` to see them")
    if p.get("interrupted"):
        notes.append(
            f"{p['interrupted']} operation(s) of an interrupted pass; the next pass settles them"
        )
    daemon = p.get("daemon")
    if daemon and daemon.get("running"):
        push = str(daemon.get("push") or "")
        if push != "connected" and not push.startswith("polling (the server offers no push)"):
            notes.append(
                f"push is not connected ({push}); changes on the server arrive at the next poll"
            )
        if daemon.get("error"):
            notes.append(f"the daemon's last pass failed: {daemon['error']}")
        if not daemon.get("config_current", True):
            notes.append(
                "the daemon runs the configuration as it was before its last edit: reload it "
                "(systemctl --user reload syncd, or send it SIGHUP)"
            )
    for c in p.get("collections", []):
        if c["local_files"] is None and not c["detached"]:
            notes.append(f"{c['dir']}: the local directory is missing")
    return notes


def print_status(config: Config, *, as_json: bool = False) -> int:
    report = [pair_status(config, name) for name in config.pairs]
    needs_attention = any(p["attention"] or p.get("errors") for p in report)
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 1 if needs_attention else 0
    for p in report:
        print(f"{p['pair']}: account {p['account']} <-> {p['local']}")
        _print_daemon(p.get("daemon"))
        if p.get("state"):
            print(f"  {p['state']}; run `syncd sync {p['pair']}` (or `syncd check` first)")
            for note in p["attention"]:
                print(f"  ! {note}")
            continue
        last = p.get("last_pass")
        if last:
            if last["finished"] is None:
                result = "running (or interrupted)"
            else:
                result = "ok" if last["ok"] else "FAILED"
            print(f"  last pass:  {last['started']}  {result}  {last['summary'] or ''}".rstrip())
            if not last["ok"] and p.get("last_ok_pass"):
                print(f"  last good:  {p['last_ok_pass']}")
        else:
            print("  last pass:  none recorded")
        if p.get("tasks"):
            print(f"  tasks:      {p['tasks']}")
        colls = p.get("collections", [])
        if colls:
            print(f"  {'COLLECTION':24} {'LOCAL':>6} {'SERVER':>6} {'ERR':>4} {'CONFL':>5}  NAME")
            for c in colls:
                local = "-" if c["local_files"] is None else str(c["local_files"])
                extra = f" ({c['detached']})" if c["detached"] else ""
                print(
                    f"  {c['dir']:24} {local:>6} {c['server_items']:>6} {c['errors']:>4} "
                    f"{c['conflicts']:>5}  {c['name'] or ''}{extra}"
                )
        waiting = sum(c.get("local_changes") or 0 for c in colls if not c["detached"])
        if waiting:
            print(f"  pending:    {waiting} local change(s) the next pass sends")
        if p.get("pending_remote"):
            reasons = sorted({x["reason"] or "?" for x in p["pending"]})
            print(
                f"  pending:    {p['pending_remote']} server item(s) to fetch again "
                f"({', '.join(reasons)})"
            )
        for e in p.get("errors", []):
            print(
                f"  error:      {e['collection']}/{e['item']} ({e['side']} side, "
                f"{e['attempts']}x): {e['reason']}"
            )
        if p.get("conflicts"):
            print(
                f"  conflicts:  {p['conflicts']} in the last {CONFLICT_DAYS:.0f} days, decided "
                "by the pair's rule; see `syncd conflicts`"
            )
        for note in p["attention"]:
            print(f"  ! {note}")
    return 1 if needs_attention else 0


def _print_daemon(daemon: dict[str, Any] | None) -> None:
    if not daemon:
        print("  daemon:     not running (start it with `syncd run` or the systemd unit)")
        return
    if not daemon["running"]:
        print(f"  daemon:     not running (last seen {daemon.get('updated')})")
        return
    print(
        f"  daemon:     running (pid {daemon.get('pid')}), push {daemon.get('push')}, "
        f"{daemon.get('passes')} pass(es) since start"
        + ("; `syncd sync` asks it for its passes" if daemon.get("answers_sync") else "")
    )


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
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
    journals = [
        (name, path)
        for name, pair in config.pairs.items()
        for path in (
            journal_file(config, pair),
            journal_file(config, pair, "tasks"),
        )
        if path.exists()
    ]
    for name, path in journals:
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
