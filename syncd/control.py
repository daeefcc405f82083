"""``syncd sync`` asks a running daemon for its passes (the client's side, and the protocol).

A ``syncd sync`` of its own must stat every file of the vdir, because an edit made in
place moves no directory's mtime: at 50,000 files that is as long as the rest of a
quiet pass, and it grows with the calendar.  A daemon serving the same configuration
already knows what changed on disk, from its watcher.  So when one runs, ``syncd sync``
asks it, over a Unix socket, for one pass of each pair that starts after the question
arrived, and prints what that pass did.  The daemon first makes sure its watcher has
reported every change made before the question (syncd.vdir.watch.VdirWatcher.barrier):
an edit saved a moment before ``syncd sync`` is in the pass, as it would be in a pass of
its own.  Such a pass costs what changed, at any size.

The daemon answers only for the configuration it runs: same file bytes and same state
directory.  Anything else (no daemon, an older configuration, a daemon stopping,
``--dry-run`` and the other options a daemon's pass does not take) runs the pass here,
as before: the passes' lock keeps the two from syncing a pair at once.

Kept to the standard library, so that a ``syncd sync`` the daemon answers loads little
more than its configuration (syncd.config) before it asks.  The protocol is one JSON
line each way per connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from syncd.paths import default_runtime_dir

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on the BSDs
MAX_MESSAGE = 16 * 1024 * 1024
CONNECT_TIMEOUT = 2.0
SLOW_AFTER = 2.0  # seconds without an answer before a terminal is told who works


def socket_path(config_path: Path) -> Path | None:
    """The control socket of the daemon running ``config_path``; None where the path
    would not fit in a socket address (the daemon then serves no socket, and every
    ``syncd sync`` runs its own pass)."""
    key = hashlib.sha256(os.fsencode(Path(config_path).resolve())).hexdigest()[:16]
    path = default_runtime_dir() / f"control-{key}.sock"
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def sync_request(
    digest: str, state_dir: Path, pairs: Sequence[str], verbose: bool
) -> dict[str, Any]:
    return {
        "op": "sync",
        "config": digest,
        "state_dir": str(state_dir),
        "pairs": list(pairs),
        "verbose": verbose,
    }


def refusal(request: Any, digest: str, state_dir: Path, pair_names: Sequence[str]) -> str | None:
    """PURE.  Why the daemon (running a configuration of ``digest``, state in
    ``state_dir``, with ``pair_names``) will not answer ``request``; None if it will."""
    if not isinstance(request, dict) or request.get("op") != "sync":
        return f"the running daemon (pid {os.getpid()}) does not know this request"
    if request.get("config") != digest:
        return (
            f"the running daemon (pid {os.getpid()}) read the configuration file before it "
            "was last changed (reload it: systemctl --user reload syncd)"
        )
    if request.get("state_dir") != str(state_dir):
        return (
            f"the running daemon (pid {os.getpid()}) keeps its journals in {state_dir}, "
            f"this command in {request.get('state_dir')} (is $XDG_STATE_HOME set differently?)"
        )
    pairs = request.get("pairs")
    if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
        return "the request names no pairs"
    unknown = [p for p in pairs if p not in pair_names]
    if unknown:
        return f"the running daemon (pid {os.getpid()}) has no pair named {', '.join(unknown)}"
    return None


def reply(status: int, lines: Sequence[tuple[bool, str]], pid: int) -> dict[str, Any]:
    """``lines``: (to stderr?, text), in the order ``syncd sync`` prints them."""
    return {"status": status, "lines": [[err, text] for err, text in lines], "pid": pid}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(data: bytes) -> dict[str, Any] | None:
    """One message, or None for anything that is not one."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def ask(
    path: Path,
    request: dict[str, Any],
    on_slow: Callable[[], None] | None = None,
    slow_after: float = SLOW_AFTER,
) -> dict[str, Any] | None:
    """Send ``request`` to the daemon at ``path`` and wait for its answer, as long as
    its pass takes; None when no daemon answers (no socket, a stale one, a daemon that
    stopped before it answered).  ``on_slow`` is called once if no answer has come
    after ``slow_after`` seconds (a long pass: say who is doing it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(os.fsencode(path))
        except OSError:  # no socket, or nobody listening on it any more
            return None
        try:
            sock.sendall(encode(request))
            sock.shutdown(socket.SHUT_WR)
            chunks: list[bytes] = []
            size = 0
            if on_slow is not None:
                sock.settimeout(slow_after)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    on_slow()
                else:
                    chunks.append(chunk)
                    size += len(chunk)
                    if not chunk:
                        return None
            sock.settimeout(None)  # a pass takes what it takes; Ctrl-C ends the wait
            while size <= MAX_MESSAGE:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError:
            return None
        data = b"".join(chunks)
        return decode(data) if data.endswith(b"\n") else None
    finally:
        with contextlib.suppress(OSError):
            sock.close()
