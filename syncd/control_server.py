"""The daemon's side of syncd.control: a Unix socket on which ``syncd sync`` asks for passes.

One connection, one request, one answer.  The socket is made with mode 0600 in the
user's runtime directory (0700), so only the user's own commands reach it; a request can
only ask for passes the daemon would run anyway.  A socket left by a daemon that died is
replaced; one a live daemon of the same configuration listens on is left to it, and this
daemon serves none (its passes and the other's still take turns on the passes' lock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.buffered import BufferedByteReceiveStream

from syncd import control
from syncd.sync.result import PassResult, report_lines

if TYPE_CHECKING:
    from syncd.daemon import Daemon, PairRunner

log = logging.getLogger("syncd.control")

READ_TIMEOUT = 10.0  # a client that connects and says nothing is dropped


async def serve_control(daemon: Daemon) -> None:
    """Answer ``syncd sync`` on the control socket until cancelled."""
    path = control.socket_path(daemon.config.path)
    if path is None:
        log.info("control: the socket's path would be too long; `syncd sync` runs its own passes")
        return
    try:
        listener = await _listen(path)
    except OSError as exc:
        log.warning(
            "control: cannot listen on %s (%s); `syncd sync` runs its own passes",
            path,
            exc.strerror,
        )
        return
    if listener is None:
        return
    mine = os.stat(path).st_ino
    log.info("control: `syncd sync` asks this daemon at %s", path)
    daemon.answers_sync = True
    daemon._write_status_file()  # `syncd status` tells at once
    try:
        await listener.serve(lambda stream: _answer(daemon, stream))
    finally:  # (cancelled: no await may come before the unlink)
        daemon.answers_sync = False
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == mine:  # not a later daemon's
                os.unlink(path)
        with anyio.CancelScope(shield=True), contextlib.suppress(OSError):
            await listener.aclose()


async def _listen(path: Path) -> anyio.abc.SocketListener | None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        if await anyio.to_thread.run_sync(_alive, path):
            log.warning(
                "control: another daemon of this configuration answers on %s; it takes "
                "`syncd sync`'s requests",
                path,
            )
            return None
        os.unlink(path)  # left by a daemon that ended without removing it
    return await anyio.create_unix_listener(path, mode=0o600)


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(os.fsencode(path))
        except OSError:
            return False
    return True


async def _answer(daemon: Daemon, stream: anyio.abc.SocketStream) -> None:
    async with stream:
        try:
            with anyio.fail_after(READ_TIMEOUT):
                line = await BufferedByteReceiveStream(stream).receive_until(
                    b"\n", control.MAX_MESSAGE
                )
        except (TimeoutError, anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound):
            return
        except (anyio.BrokenResourceError, OSError):
            return
        request = control.decode(line)
        answer = await answer_request(daemon, request)
        with contextlib.suppress(anyio.BrokenResourceError, OSError):
            await stream.send(control.encode(answer))


async def answer_request(daemon: Daemon, request: object) -> dict:
    """The answer to one request: every requested pair's pass, run at once."""
    names = [r.pair.name for r in daemon.runners]
    why = control.refusal(request, daemon.config.digest, daemon.config.state_dir, names)
    if why is not None:
        log.info("control: refused a request: %s", why)
        return {"refused": why}
    assert isinstance(request, dict)
    wanted = request["pairs"] or names
    runners = {r.pair.name: r for r in daemon.runners}
    outcomes: dict[str, list[PassResult | str | None]] = {}

    async def one(runner: PairRunner) -> None:
        outcomes[runner.pair.name] = await runner.pass_on_request()

    async with anyio.create_task_group() as tg:
        for name in wanted:
            tg.start_soon(one, runners[name])
    if any(not outcomes[name] or outcomes[name][-1] is None for name in wanted):
        return {"refused": f"the running daemon (pid {os.getpid()}) is stopping"}
    status, lines = 0, []
    for name in wanted:
        pair_status, pair_lines = pair_report(name, outcomes[name], bool(request.get("verbose")))
        status = max(status, pair_status)
        lines += pair_lines
    return control.reply(status, lines, os.getpid())


def pair_report(
    name: str, outcomes: list[PassResult | str | None], verbose: bool
) -> tuple[int, list[tuple[bool, str]]]:
    """PURE.  What ``syncd sync`` prints about ``name``, and its exit status, from the
    passes run for its request: the last in full, as a pass of the command's own would
    be; an earlier one (begun while the watcher caught up) by its summary, when it
    changed something, since the caller's changes may be in it."""
    *earlier, last = outcomes
    lines = [(False, o.summary()) for o in earlier if isinstance(o, PassResult) and o.changes]
    if isinstance(last, PassResult):
        lines += report_lines(name, last, verbose, dry_run=False)
        return (0 if last.ok else 1), lines
    return 1, [*lines, (True, f"syncd: {name}: {last}")]
