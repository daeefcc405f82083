"""`syncd check`: is this setup going to work, and if not, what to do about it.

It loads the config, resolves each account's credentials, connects, reads the
capabilities that matter (calendars, tasks, push), lists the calendars and checks
the pairs' ``collections`` against them, and checks that every vdir root and the
state directory can be written.  Each finding is one line: what is right or wrong,
and for a problem, how to fix it.  It changes nothing (a probe file is created and
removed in each directory) and never prints a secret.

Exit status: 0 when nothing is wrong (warnings allowed), 1 on a problem, 2 when
the config itself cannot be used.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from syncd.config import Account, Config, ConfigError, Pair, journal_file, load_config
from syncd.connect import credential_headers, make_transport
from syncd.jmap.errors import AuthError, JmapError, SessionError
from syncd.jmap.session import CALENDARS, Session, discover
from syncd.jmap.transport import Transport
from syncd.logsetup import redact

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    level: str
    subject: str
    message: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.level:4}  {self.subject}: {self.message}"
        if self.fix:
            text += f" -> {self.fix}"
        return redact(text)


class Checker:
    def __init__(
        self,
        out: TextIO | None = None,
        *,
        timeout: float = 15.0,
        transport_factory: Callable[[Account], Transport] | None = None,
    ):
        self.out = out or sys.stdout
        self.timeout = timeout
        self.transport_factory = transport_factory
        self.findings: list[Finding] = []

    def add(self, level: str, subject: str, message: str, fix: str | None = None) -> None:
        finding = Finding(level, subject, message, fix)
        self.findings.append(finding)
        print(finding.line(), file=self.out, flush=True)

    @property
    def problems(self) -> int:
        return sum(1 for f in self.findings if f.level == FAIL)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == WARN)

    # -- the config ----------------------------------------------------------------------

    def load(self, path: Path | None) -> Config | None:
        try:
            config = load_config(path)
        except ConfigError as exc:
            fix = "fix the file (the README's Configuration section shows every key)"
            if "no config file there" in str(exc):
                message, fix = str(exc).split(". ", 1)[0], fix.replace("fix", "create", 1)
            else:
                message = str(exc)
            self.add(FAIL, "config", message, fix)
            return None
        self.add(
            OK,
            "config",
            f"{config.path}: {len(config.accounts)} account(s), {len(config.pairs)} pair(s)",
        )
        literal = [
            a.name
            for a in config.accounts.values()
            if a.password_source and a.password_source.kind == "literal"
        ]
        if literal:
            try:
                loose = stat.S_IMODE(config.path.stat().st_mode) & 0o077
            except OSError:
                loose = 0
            if loose:
                self.add(
                    WARN,
                    "config",
                    f"holds a plain password (account {', '.join(literal)}) and other users "
                    "can read it",
                    f"chmod 600 {config.path}, or use password_command with a password manager",
                )
        unused = sorted(set(config.accounts) - {p.account for p in config.pairs.values()})
        for name in unused:
            self.add(INFO, f"account {name}", "no pair uses it")
        return config

    # -- accounts ------------------------------------------------------------------------

    async def account(self, config: Config, account: Account) -> Session | None:
        subject = f"account {account.name}"
        pairs = [p for p in config.pairs.values() if p.account == account.name]
        try:
            secret = account.resolve_secret()
        except ConfigError as exc:
            self.add(FAIL, subject, _strip_prefix(str(exc), account.name), _secret_fix(account))
            return None
        src = account.password_source
        if secret is None:
            self.add(INFO, subject, "no credentials configured; connecting without any")
        else:
            if src is None or src.kind == "literal":
                origin = "the config file"
            elif src.kind == "env":
                origin = f"${src.value}"
            else:
                origin = f"password_command ({src.value[0]})"
            how = f"user {account.username}" if account.username else "a bearer token"
            self.add(OK, subject, f"credentials for {how} resolved from {origin}")

        headers = credential_headers(account, secret)
        transport = (
            self.transport_factory(account)
            if self.transport_factory
            else make_transport(account, oneshot=True, timeout=self.timeout)
        )
        try:
            try:
                session = await discover(
                    transport, account.url, headers, account_id=account.account_id
                )
            except AuthError as exc:
                self.add(
                    FAIL,
                    subject,
                    str(exc),
                    "check username and password"
                    + (
                        f" (run the password_command yourself: {' '.join(src.value)})"
                        if src and src.kind == "command"
                        else ""
                    )
                    + "; with a token, leave username out",
                )
                return None
            except SessionError as exc:
                self.add(FAIL, subject, str(exc), _session_fix(account, str(exc)))
                return None
            self.add(
                OK,
                subject,
                f"connected to {session.url} (JMAP account {session.account_id})",
            )
            self._capabilities(subject, session, pairs)
            if not session.has_calendars:
                return None
            await self._calendars(subject, transport, headers, session, pairs)
            return session
        finally:
            await transport.aclose()

    def _capabilities(self, subject: str, session: Session, pairs: list[Pair]) -> None:
        if session.has_calendars:
            self.add(OK, subject, f"calendars: offered ({CALENDARS})")
        else:
            self.add(
                FAIL,
                subject,
                "calendars: not offered; the server has " + ", ".join(sorted(session.capabilities)),
                "syncd needs a server with JMAP Calendars (Stalwart, Cyrus 3.12+, ...)",
            )
        wants_tasks = [p.name for p in pairs if p.types and "tasks" in p.types]
        if session.has_tasks:
            self.add(OK, subject, "tasks: offered")
        elif wants_tasks:
            self.add(
                FAIL,
                subject,
                f"tasks: not offered, but pair {', '.join(wants_tasks)} asks for tasks",
                "remove tasks from the pair's types",
            )
        else:
            self.add(INFO, subject, "tasks: not offered by this server (events only)")
        if session.event_source_url:
            self.add(OK, subject, "push: offered (eventSourceUrl); `syncd run` hears changes")
        else:
            poll = min((p.poll_interval for p in pairs), default=60.0)
            self.add(
                WARN,
                subject,
                f"push: not offered; `syncd run` polls every {poll:.0f} s instead",
                "lower poll_interval in the pair for quicker updates",
            )

    async def _calendars(
        self,
        subject: str,
        transport: Transport,
        headers: dict[str, str],
        session: Session,
        pairs: list[Pair],
    ) -> None:
        from syncd.jmap.client import JmapClient
        from syncd.jmap.session import CORE

        client = JmapClient(transport, session, headers, using=(CORE, CALENDARS))
        try:
            got = await client.call("Calendar/get", {"accountId": session.account_id})
        except JmapError as exc:
            self.add(FAIL, subject, f"listing calendars failed: {exc}", "run `syncd -vv check`")
            return
        cals: list[dict[str, Any]] = list(got.get("list") or [])
        ro = [
            str(c.get("name"))
            for c in cals
            if not (c.get("myRights") or {}).get("mayWriteAll", True)
        ]
        self.add(
            OK,
            subject,
            f"{len(cals)} calendar(s)"
            + (f", read-only: {', '.join(ro)}" if ro else "")
            + "; `syncd discover` lists them",
        )
        known = {str(c.get("id")) for c in cals} | {str(c.get("name")) for c in cals}
        for pair in pairs:
            if pair.collections == "all":
                continue
            for wanted in pair.collections:
                if wanted not in known:
                    names = ", ".join(sorted(str(c.get("name")) for c in cals)) or "(none)"
                    self.add(
                        FAIL,
                        f"pair {pair.name}",
                        f"collections names {wanted!r}, which is no calendar of the account",
                        f"use a name or id that exists: {names}",
                    )

    # -- local side ----------------------------------------------------------------------

    def pair(self, config: Config, pair: Pair, session: Session | None) -> None:
        subject = f"pair {pair.name}"
        root = pair.local
        if not root.exists():
            self.add(
                FAIL,
                subject,
                f"the vdir root {root} does not exist",
                f"create it: mkdir -p {root} (or mount the disk it lives on)",
            )
        elif not root.is_dir():
            self.add(FAIL, subject, f"the vdir root {root} is not a directory", "fix local:")
        else:
            problem = _write_probe(root)
            if problem:
                self.add(
                    FAIL,
                    subject,
                    f"cannot write in the vdir root {root} ({problem})",
                    f"make it writable for this user: chown -R $USER {root}",
                )
            else:
                subdirs = sorted(
                    p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                )
                bad = [(d, _write_probe(d)) for d in subdirs]
                bad = [(d, why) for d, why in bad if why]
                for d, why in bad:
                    self.add(
                        FAIL,
                        subject,
                        f"cannot write in {d} ({why})",
                        f"make it writable for this user: chown -R $USER {d}",
                    )
                if not bad:
                    self.add(
                        OK,
                        subject,
                        f"{root} is writable ({len(subdirs)} collection director"
                        f"{'y' if len(subdirs) == 1 else 'ies'})",
                    )
        self._state(config, pair, session)
        self._other_syncers(pair)

    def _other_syncers(self, pair: Pair) -> None:
        """vdirsyncer configured for the same directory: two syncers on one vdir fight."""
        for conf, timer in _vdirsyncer_setups():
            paths = _vdirsyncer_paths(conf)
            if not any(_same_dir(p, pair.local) for p in paths):
                continue
            running = " and its timer is enabled" if timer else ""
            self.add(
                WARN,
                f"pair {pair.name}",
                f"vdirsyncer ({conf}) also syncs {pair.local}{running}",
                "stop it before syncd runs: systemctl --user disable --now vdirsyncer.timer "
                "(see contrib/MIGRATING-from-vdirsyncer.md)",
            )

    def _state(self, config: Config, pair: Pair, session: Session | None) -> None:
        subject = f"pair {pair.name}"
        state = config.state_dir
        probe_dir = state
        while not probe_dir.exists() and probe_dir != probe_dir.parent:
            probe_dir = probe_dir.parent
        problem = _write_probe(probe_dir) if probe_dir.is_dir() else "not a directory"
        if problem:
            self.add(
                FAIL,
                subject,
                f"cannot write the journal under {state} ({problem})",
                "set state_dir to a directory this user can write",
            )
            return
        journal = journal_file(config, pair)
        if not journal.exists():
            self.add(INFO, subject, "never synced; the first `syncd sync` pairs items by UID")
            return
        bound = _journal_account(journal)
        if session is not None and bound is not None:
            now = f"{session.account_id}@{session.api_url}"
            if bound != now:
                self.add(
                    FAIL,
                    subject,
                    f"the journal belongs to JMAP account {bound}, the config now points at {now}",
                    f"if that is intended: syncd sync --allow-account-change {pair.name}",
                )
                return
        self.add(OK, subject, f"journal {journal}")


def _vdirsyncer_setups() -> list[tuple[Path, bool]]:
    """vdirsyncer's config files, each with whether its systemd timer is enabled."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    timer = (base / "systemd" / "user" / "timers.target.wants" / "vdirsyncer.timer").exists()
    out = []
    for conf in (
        Path(os.environ["VDIRSYNCER_CONFIG"]) if os.environ.get("VDIRSYNCER_CONFIG") else None,
        base / "vdirsyncer" / "config",
        Path.home() / ".vdirsyncer" / "config",
    ):
        if conf is not None and conf.is_file() and conf not in [c for c, _ in out]:
            out.append((conf, timer))
    return out


def _vdirsyncer_paths(conf: Path) -> list[Path]:
    """The ``path`` of every storage (filesystem storages name the vdir root)."""
    try:
        text = conf.read_text(errors="replace")
    except OSError:
        return []
    found = re.findall(r"""^\s*path\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    return [Path(os.path.expandvars(os.path.expanduser(p))) for p in found]


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _strip_prefix(message: str, account: str) -> str:
    prefix = f"account {account}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _secret_fix(account: Account) -> str:
    src = account.password_source
    if src is None:
        return "set password_command, password_env or password"
    if src.kind == "env":
        return f"export {src.value} in the environment syncd runs in (the systemd unit too)"
    if src.kind == "command":
        return f"run it yourself to see why: {' '.join(src.value)}"  # type: ignore[arg-type]
    return "fix the password in the config"


def _session_fix(account: Account, message: str) -> str:
    if "TLS" in message:
        return "set ca_bundle to the server's CA certificate, or fix the server's certificate"
    if "could not connect" in message or "timed out" in message:
        return (
            f"check that {account.url} is right and the server is reachable from here "
            "(network, DNS, firewall, VPN)"
        )
    if "no JMAP session" in message:
        return (
            "point url at the server's base URL (autodiscovery through /.well-known/jmap) "
            "or at its JMAP session URL"
        )
    if "account_id" in message:
        return "set account_id in the account"
    return "check the url"


def _write_probe(directory: Path) -> str | None:
    """Create and remove a dot file (khal and todoman ignore those); the reason, or None."""
    try:
        fd, name = tempfile.mkstemp(prefix=".syncd-check-", dir=directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    try:
        os.unlink(name)
    except OSError as exc:
        return f"created a file but cannot remove it: {exc.strerror}"
    return None


def _journal_account(path: Path) -> str | None:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'account'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


async def check(
    path: Path | None,
    out: TextIO | None = None,
    *,
    timeout: float = 15.0,
    transport_factory: Callable[[Account], Transport] | None = None,
) -> int:
    out = out or sys.stdout
    checker = Checker(out, timeout=timeout, transport_factory=transport_factory)
    config = checker.load(path)
    if config is None:
        return 2
    sessions: dict[str, Session | None] = {}
    used = {p.account for p in config.pairs.values()}
    for name, account in config.accounts.items():
        if name in used:
            sessions[name] = await checker.account(config, account)
    for pair in config.pairs.values():
        checker.pair(config, pair, sessions.get(pair.account))
    if checker.problems:
        print(
            f"{checker.problems} problem(s), {checker.warnings} warning(s)",
            file=out,
        )
        return 1
    print(
        f"no problems ({checker.warnings} warning(s)); next: `syncd sync`, then `syncd run` "
        "or the systemd unit",
        file=out,
    )
    return 0


def run(args: Any) -> int:
    import anyio

    return anyio.run(lambda: check(args.config, timeout=args.timeout))
