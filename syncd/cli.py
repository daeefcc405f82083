"""Command-line entry points: sync, discover, run, check, convert, status, conflicts.

Exit status: 0 success, 1 a pass failed or something needs attention, 2 a bad
config or command line.  Imports of the heavier layers happen inside the
commands so that ``syncd --help`` and a no-change ``syncd sync`` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from syncd import __version__

if TYPE_CHECKING:
    from syncd.config import Config

log = logging.getLogger("syncd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd", description="Keep a JMAP account and a local vdir in two-way sync."
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        help="config file (default: $XDG_CONFIG_HOME/syncd/config.yaml)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v, -vv)"
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("sync", help="one full two-way pass, then exit")
    p.add_argument("pairs", nargs="*", metavar="PAIR", help="pairs to sync (default: all)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument(
        "--force-delete", action="store_true", help="allow deletions the deletion guard stopped"
    )
    p.add_argument(
        "--allow-account-change",
        action="store_true",
        help="accept that a pair's journal now points at a different JMAP account",
    )
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="run the pass in this process even when a running daemon serves this config",
    )

    p = sub.add_parser("discover", help="list an account's calendars")
    p.add_argument("account", nargs="?", help="account name (default: all)")

    sub.add_parser("run", help="run as a daemon: push, file watching, periodic passes")

    p = sub.add_parser(
        "check", help="check config, credentials, server, capabilities and directories"
    )
    p.add_argument(
        "--timeout", type=float, default=15.0, help="seconds to wait for the server (15)"
    )

    p = sub.add_parser("status", help="what each pair looks like now")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("conflicts", help="list recorded conflicts, or show one")
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("id", nargs="?", type=int)

    p = sub.add_parser("convert", help="convert between iCalendar and JSCalendar (for debugging)")
    try:
        from syncd.convert.command import add_arguments
    except ImportError:  # pragma: no cover
        pass
    else:
        add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _setup_logging(args.verbose)
    if args.command == "check":
        from syncd.check import run as run_check

        return run_check(args)
    if args.command == "convert":
        from syncd.convert.command import run

        return run(args)
    if args.command == "sync":
        from syncd.gctune import rare_collections
        from syncd.vdir import prefetch

        # Stat every file on the other core while this one loads and connects (or finds
        # that a running daemon does the pass).
        prefetch.start_early(args.config, args.pairs)
        asked = _sync_by_daemon(args)
        if asked is not None:
            return asked
    from syncd.config import ConfigError, load_config
    from syncd.errors import SyncdError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "sync":
            roots = {name: pair.local for name, pair in config.pairs.items()}
            prefetch.remember_roots(config.path, roots)
            names = args.pairs or list(config.pairs)
            if not prefetch.started():  # nothing remembered for this configuration yet
                prefetch.start(roots[n] for n in names if n in roots)
            _start_workers_for_first_pass(config, names)
            try:
                with rare_collections():  # syncd.gctune
                    return _run_async(_sync, config, args)
            finally:
                prefetch.stop()  # a child with listings nobody asked for: ended unread
        if args.command == "discover":
            return _run_async(_discover, config, args)
        if args.command == "run":
            from syncd.service import run_service

            return run_service(config, args)
        if args.command == "status":
            from syncd.status import print_status

            return print_status(config, as_json=args.json)
        if args.command == "conflicts":
            from syncd.status import print_conflicts

            return print_conflicts(config, args.action, args.id)
    except ConfigError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2
    except SyncdError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


def run() -> NoReturn:
    """The ``syncd`` command and ``python -m syncd``: ``main``, then an exit that skips
    the interpreter's teardown.

    Freeing every module and object at exit was 30 ms of a 0.27 s quiet ``syncd sync``
    (strace: from the fingerprint child's reaping to ``exit_group``), paid by every
    pass, every timer tick.  Skipping it loses nothing: when ``main`` returns, every
    file has been renamed into place, every journal committed and closed, every worker
    pool shut down.  Logging and the standard streams are flushed here; an exception or
    ``SystemExit`` (``--help``, a bad option) leaves the ordinary way.  A reader of
    stdout that went away ends the command quietly with status 1, not a traceback."""
    try:
        status = main()
    except BrokenPipeError:  # stdout's reader went away (`syncd status | head -1`)
        _discard_stdout()
        status = 1
    _run_exit_finalizers()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone, or a stream closed
            stream.flush()
    os._exit(status)


def _run_exit_finalizers() -> None:
    """What multiprocessing would do at exit, which ``os._exit`` skips: the workers'
    forkserver listens on a socket in a directory of ``$TMPDIR`` that only its exit hook
    removes, so each pass with workers left one ``pymp-*`` directory behind."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        with contextlib.suppress(Exception):  # a failed clean-up must not change the status
            util._run_finalizers()


def _setup_logging(verbosity: int) -> None:
    try:
        from syncd.logsetup import setup_logging
    except ImportError:  # pragma: no cover
        logging.basicConfig(level=logging.WARNING - 10 * verbosity)
    else:
        setup_logging(verbosity)


def _run_async(func, *args):  # type: ignore[no-untyped-def]
    import anyio

    return anyio.run(func, *args)


def _echo(line: str) -> None:
    """One line of a pass's output.  A reader that went away (``syncd sync | head -1``)
    does not stop the passes half done: the rest of their output goes nowhere."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _discard_stdout()


def _print_lines(lines: Sequence[tuple[bool, str]]) -> None:
    for to_stderr, line in lines:
        if to_stderr:
            print(line, file=sys.stderr)
        else:
            _echo(line)


def _start_workers_for_first_pass(config: Config, names: list[str]) -> None:
    """A pair that never synced is about to bring everything the server has: its
    conversion workers' forkserver starts now, on the other core, while this one loads
    the sync code and connects (syncd.sync.workers.start_forkserver).  After the
    fingerprint child's fork: the spawn starts no thread, but this keeps the fork first."""
    from syncd.config import never_synced
    from syncd.sync.workers import start_forkserver

    if any(never_synced(config, config.pairs[n]) for n in names if n in config.pairs):
        start_forkserver()


def _sync_by_daemon(args: argparse.Namespace) -> int | None:
    """``syncd sync`` answered by the daemon running this configuration, which knows from
    its watcher what changed on disk (syncd.control); None when the pass is to run here:
    no daemon serves this configuration, or the options ask for what only a pass of
    our own does."""
    if args.dry_run or args.force_delete or args.allow_account_change or args.no_daemon:
        return None
    from syncd import control
    from syncd.paths import default_config_path

    path = control.socket_path(args.config or default_config_path())
    if path is None or not path.exists():
        return None
    from syncd.config import ConfigError, load_config
    from syncd.vdir import prefetch

    prefetch.stop()  # a daemon's watcher knows what the child would stat (if it is asked)

    try:
        config = load_config(args.config)
    except ConfigError:
        return None  # the pass of our own says what is wrong with it
    names = args.pairs or list(config.pairs)
    if any(name not in config.pairs for name in names):
        return None  # likewise
    request = control.sync_request(config.digest, config.state_dir, names, bool(args.verbose))

    def say_who() -> None:
        if sys.stderr.isatty():
            print("syncd: the running daemon is doing this pass…", file=sys.stderr, flush=True)

    answer = control.ask(path, request, on_slow=say_who)
    if answer is None:
        return None
    if "refused" in answer:
        print(f"syncd: {answer['refused']}; this pass runs here", file=sys.stderr)
        return None
    log.info("the running daemon (pid %s) did this pass", answer.get("pid"))
    _print_lines([(bool(err), str(line)) for err, line in answer.get("lines") or []])
    return int(answer.get("status", 1))


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that what is still buffered, or still to be said, is
    dropped instead of failing again (the Python documentation's advice for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


async def _sync(config, args) -> int:  # type: ignore[no-untyped-def]
    from syncd.adopt import compare, journal_is_empty, snapshot
    from syncd.connect import connect
    from syncd.errors import SyncdError
    from syncd.jmap.errors import JmapError
    from syncd.progress import Progress
    from syncd.sync.engine import PassOptions
    from syncd.sync.pair import EVENTS, TASK_TYPE, run_pair, type_journal_path
    from syncd.sync.result import report_lines

    names = args.pairs or list(config.pairs)
    unknown = [n for n in names if n not in config.pairs]
    if unknown:
        print(
            f"syncd: no pair named {', '.join(unknown)} in {config.path}; "
            f"pairs: {', '.join(config.pairs) or '(none)'}",
            file=sys.stderr,
        )
        return 2
    options = PassOptions(
        dry_run=args.dry_run,
        force_delete=args.force_delete,
        allow_account_change=args.allow_account_change,
        fingerprints=True,  # computed by the child main() started (syncd.vdir.prefetch)
        early_workers=True,
    )
    status = 0
    clients: dict = {}
    try:
        for name in names:
            pair = config.pairs[name]
            account = config.accounts[pair.account]
            try:
                if pair.account not in clients:
                    clients[pair.account] = await connect(
                        account, oneshot=True, state_dir=config.state_dir
                    )
                client = clients[pair.account]
                journals = [type_journal_path(config, pair, k) for k in (EVENTS, TASK_TYPE)]
                # A first pass over files that are already there adopts them: say how it went.
                adopting = not options.dry_run and all(journal_is_empty(j) for j in journals)
                before = snapshot(pair.local) if adopting else None
                progress = Progress(name)  # drawn only on a terminal, for a long pass
                try:
                    result = await run_pair(
                        config,
                        pair,
                        client,
                        options,
                        echo=_echo,
                        progress=progress,
                        on_wait=lambda message: print(f"syncd: {message}", file=sys.stderr),
                    )
                finally:
                    progress.finish()
                if before is not None and any(before.values()):  # else nothing to adopt
                    for line in compare(pair.local, before, journals, result).lines(pair.local):
                        _echo(line)
            except (SyncdError, JmapError) as exc:
                print(f"syncd: {name}: {exc}", file=sys.stderr)
                status = 1
                continue
            if not options.dry_run:
                log.info(result.summary())
            _print_lines(report_lines(name, result, bool(args.verbose), options.dry_run))
            if not result.ok:
                status = 1
    finally:
        for client in clients.values():
            await client.transport.aclose()
    return status


async def _discover(config, args) -> int:  # type: ignore[no-untyped-def]
    from syncd.connect import connect

    names = [args.account] if args.account else list(config.accounts)
    block: list[str] = []
    for name in names:
        if name not in config.accounts:
            print(f"syncd: no account named {name} in {config.path}", file=sys.stderr)
            return 2
        client = await connect(config.accounts[name], oneshot=True)
        lists: list = []
        try:
            got = await client.call("Calendar/get", {"accountId": client.account_id})
            if client.session.has_tasks:
                lists = (await client.call("TaskList/get", {"accountId": client.account_id})).get(
                    "list"
                ) or []
        finally:
            await client.transport.aclose()
        print(f"account {name} ({client.account_id} at {client.session.api_url})")
        print(
            "  tasks: "
            + (
                f"available ({len(lists)} task list(s), listed below)"
                if client.session.has_tasks
                else "not available on this server (no urn:ietf:params:jmap:tasks); "
                "local task lists are left alone"
            )
        )
        print(
            f"  push: {'available' if client.session.event_source_url else 'not available (polling)'}"
        )
        print(f"  {'ID':26} {'NAME':30} {'COLOR':10} RIGHTS")
        cals = sorted(got.get("list") or [], key=lambda c: str(c.get("name")))
        for cal in cals:
            rights = cal.get("myRights") or {}
            rw = "read-write" if rights.get("mayWriteAll", True) else "read-only"
            print(
                f"  {cal['id']:26} {str(cal.get('name')):30} {str(cal.get('color') or '-'):10} {rw}"
            )
        for tl in sorted(lists, key=lambda c: str(c.get("name"))):
            print(
                f"  {tl['id']:26} {str(tl.get('name')):30} {str(tl.get('color') or '-'):10} task list"
            )
        print()
        example = ", ".join(json.dumps(str(c.get("name"))) for c in cals[:2])
        configured = [p for p, pair in config.pairs.items() if pair.account == name]
        block += [
            f"  {name}-calendars:"
            + (f"  # already configured: {', '.join(configured)}" if configured else ""),
            f"    account: {name}",
            f"    local: ~/.local/share/calendars/{name}",
            "    collections: all" + (f"  # or some of them: [{example}]" if example else ""),
            "    types: [events, tasks]"
            if client.session.has_tasks
            else "    # types: [events, tasks]  # the default: what the server offers",
        ]
    print("# a ready pairs: block (paste it into the config in place of pairs:):")
    print("pairs:")
    for line in block:
        print(line)
    return 0
