"""YAML config -> frozen dataclasses, with errors that name the file and the key.

Validation is strict (an unknown key is an error with a suggestion) because a
typo in a sync tool's config silently does the wrong thing to someone's data.
Secrets are wrapped in ``Secret`` so that they never print.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import logging
import os
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from syncd.convert.dialect import AUTO
from syncd.convert.dialect import SETTINGS as JSCALENDAR_SETTINGS
from syncd.errors import SyncdError
from syncd.paths import default_config_path, default_state_dir

log = logging.getLogger("syncd.config")

OVERLAP_RULES = ("remote-wins", "local-wins", "newest", "keep-both")
TYPES = ("events", "tasks")


class ConfigError(SyncdError):
    """A config problem; the message names the file and the key path."""


class Secret:
    """A password or token that prints as asterisks; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class PasswordSource:
    kind: Literal["literal", "env", "command"]
    value: Secret | str | tuple[str, ...]

    def __repr__(self) -> str:
        shown = "********" if self.kind == "literal" else self.value
        return f"PasswordSource({self.kind}, {shown!r})"


@dataclass(frozen=True)
class Account:
    name: str
    url: str
    username: str | None
    password_source: PasswordSource | None
    account_id: str | None
    ca_bundle: str | None
    allow_insecure_http: bool
    # JSCalendar of the server's objects: auto, rfc8984 (1.0) or jscalendarbis (2.0)
    jscalendar: str = AUTO

    def resolve_secret(self) -> Secret | None:
        """The password or token, from where the config says; errors never show it."""
        src = self.password_source
        if src is None:
            return None
        if src.kind == "literal":
            assert isinstance(src.value, Secret)
            return src.value
        if src.kind == "env":
            value = os.environ.get(str(src.value))
            if value is None:
                raise ConfigError(
                    f"account {self.name}: password_env names ${src.value}, which is not set"
                )
            return Secret(value)
        argv = list(src.value)  # type: ignore[arg-type]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except FileNotFoundError:
            raise ConfigError(
                f"account {self.name}: password_command {argv[0]!r} was not found"
            ) from None
        except subprocess.TimeoutExpired:
            raise ConfigError(f"account {self.name}: password_command took over 60 s") from None
        if proc.returncode != 0:
            raise ConfigError(
                f"account {self.name}: password_command {argv[0]!r} failed with exit status "
                f"{proc.returncode}"
            )
        lines = proc.stdout.splitlines()
        if not lines or not lines[0].strip():
            raise ConfigError(f"account {self.name}: password_command printed nothing")
        return Secret(lines[0].strip())


@dataclass(frozen=True)
class ConflictPolicy:
    merge: bool = True
    overlap: str = "remote-wins"


@dataclass(frozen=True)
class Pair:
    name: str
    account: str
    local: Path
    collections: Literal["all"] | tuple[str, ...]
    conflict: ConflictPolicy
    types: tuple[str, ...] | None
    delete_share: float
    delete_min_items: int
    poll_interval: float
    debounce: float
    safety_interval: float = 1800.0


@dataclass(frozen=True)
class Config:
    path: Path
    accounts: Mapping[str, Account]
    pairs: Mapping[str, Pair]
    state_dir: Path
    # The file's bytes as read, hashed: a daemon answers a `syncd sync` only for the
    # configuration it runs (syncd.control).
    digest: str = ""


def journal_file(config: Config, pair: Pair, kind: str = "events") -> Path:
    """Where a pair's journal for one kind of data lives; creates nothing (``status`` and
    ``check`` only read).  Task lists have a directory of their own, so no pair name can
    clash with another pair's task journal."""
    base = config.state_dir / "tasks" if kind == "tasks" else config.state_dir
    return base / f"{pair.name}.sqlite3"


def never_synced(config: Config, pair: Pair) -> bool:
    """No journal of either type yet: the pair's next pass brings everything the server
    has.  (A server that offers one type never makes the other's journal, so one is
    enough.)  A pass that stopped before its first commit leaves a journal: its next
    pass is still a first pass, and says so itself (``PairSync._pass``)."""
    return not any(journal_file(config, pair, kind).exists() for kind in TYPES)


def journal_path(config: Config, pair: Pair, kind: str = "events") -> Path:
    """``journal_file``, with its private directories made, for a pass that writes."""
    path = journal_file(config, pair, kind)
    ensure_private_dir(config.state_dir)
    ensure_private_dir(path.parent)
    return path


def ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o700)
    except OSError:
        pass


class _Reader:
    """Walks the YAML tree remembering the key path, for messages."""

    def __init__(self, file: Path):
        self.file = file

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {where}: {message}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return value

    def known(self, data: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = (
                    f"; did you mean {close[0]!r}?"
                    if close
                    else f"; known keys: {', '.join(sorted(allowed))}"
                )
                raise self.fail(f"{where}.{key}" if where else str(key), f"unknown key{hint}")

    def string(
        self, data: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}", "is required")
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected a string, got {type(value).__name__}")
        return str(value)

    def number(
        self, data: Mapping[str, Any], key: str, where: str, default: float, *, minimum: float = 0
    ) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}.{key}", f"expected a number, got {type(value).__name__}")
        if value < minimum:
            raise self.fail(f"{where}.{key}", f"must be at least {minimum}")
        return float(value)

    def boolean(self, data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected true or false, got {value!r}")
        return value


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _account(r: _Reader, name: str, raw: Any) -> Account:
    where = f"accounts.{name}"
    data = r.mapping(raw, where)
    r.known(
        data,
        {
            "url",
            "username",
            "password",
            "password_command",
            "password_env",
            "account_id",
            "ca_bundle",
            "allow_insecure_http",
            "jscalendar",
        },
        where,
    )
    url = r.string(data, "url", where, required=True)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise r.fail(f"{where}.url", f"expected an http(s) URL, got {url!r}")
    sources = [
        k for k in ("password", "password_command", "password_env") if data.get(k) is not None
    ]
    if len(sources) > 1:
        raise r.fail(
            where,
            f"give only one of password, password_command, password_env (got {', '.join(sources)})",
        )
    source: PasswordSource | None = None
    if "password" in sources:
        source = PasswordSource("literal", Secret(str(data["password"])))
    elif "password_env" in sources:
        env = r.string(data, "password_env", where)
        source = PasswordSource("env", str(env))
    elif "password_command" in sources:
        cmd = data["password_command"]
        if isinstance(cmd, str):
            cmd = cmd.split()
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
            raise r.fail(
                f"{where}.password_command", "expected a list of strings, e.g. [pass, show, jmap]"
            )
        source = PasswordSource("command", tuple(cmd))
    insecure = r.boolean(data, "allow_insecure_http", where, False)
    if (
        parts.scheme == "http"
        and source is not None
        and not insecure
        and not _is_loopback(parts.hostname)
    ):
        raise r.fail(
            f"{where}.url",
            "refusing to send credentials over plain http:// to a non-loopback host; use https, "
            "or set allow_insecure_http: true if you really mean it",
        )
    ca = r.string(data, "ca_bundle", where)
    if ca is not None:
        ca = os.path.expandvars(os.path.expanduser(ca))
        if not os.path.exists(ca):
            raise r.fail(f"{where}.ca_bundle", f"no such file: {ca}")
    return Account(
        name=name,
        url=url,
        username=r.string(data, "username", where),
        password_source=source,
        account_id=r.string(data, "account_id", where),
        ca_bundle=ca,
        allow_insecure_http=insecure,
        jscalendar=_jscalendar(r, data, where),
    )


def _jscalendar(r: _Reader, data: Mapping[str, Any], where: str) -> str:
    """``jscalendar:``: which JSCalendar the server speaks, when ``auto`` guesses wrong."""
    value = data.get("jscalendar", AUTO)
    if value not in JSCALENDAR_SETTINGS:
        close = difflib.get_close_matches(str(value), JSCALENDAR_SETTINGS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise r.fail(
            f"{where}.jscalendar",
            f"expected one of {', '.join(JSCALENDAR_SETTINGS)} (JSCalendar 1.0 is rfc8984, "
            f"2.0 is jscalendarbis), got {value!r}{hint}",
        )
    return str(value)


def _conflict(r: _Reader, raw: Any, where: str) -> ConflictPolicy:
    if raw is None:
        return ConflictPolicy()
    if isinstance(raw, str):
        if raw == "merge":
            return ConflictPolicy()
        if raw in OVERLAP_RULES:
            return ConflictPolicy(merge=True, overlap=raw)
        raise r.fail(where, f"expected one of merge, {', '.join(OVERLAP_RULES)}, got {raw!r}")
    data = r.mapping(raw, where)
    r.known(data, {"merge", "overlap"}, where)
    overlap = data.get("overlap", "remote-wins")
    if overlap not in OVERLAP_RULES:
        raise r.fail(
            f"{where}.overlap", f"expected one of {', '.join(OVERLAP_RULES)}, got {overlap!r}"
        )
    return ConflictPolicy(merge=r.boolean(data, "merge", where, True), overlap=overlap)


def _types(r: _Reader, raw: Any, where: str) -> tuple[str, ...] | None:
    """``types: [events, tasks]``: what a pair carries; None means what the server offers."""
    if raw is None:
        return None
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise r.fail(where, f"expected a list of {' and/or '.join(TYPES)}, e.g. [events, tasks]")
    if not items:
        raise r.fail(
            where,
            "is empty, so the pair would sync nothing; list events and/or tasks, or "
            "leave the key out to sync whatever the server offers",
        )
    for t in items:
        if t not in TYPES:
            close = difflib.get_close_matches(t, TYPES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise r.fail(where, f"unknown type {t!r}: expected {' and/or '.join(TYPES)}{hint}")
    return tuple(t for t in TYPES if t in items)


def _pair(r: _Reader, name: str, raw: Any, accounts: Mapping[str, Account]) -> Pair:
    where = f"pairs.{name}"
    data = r.mapping(raw, where)
    r.known(
        data,
        {
            "account",
            "local",
            "collections",
            "conflict",
            "types",
            "delete_guard",
            "poll_interval",
            "debounce",
            "safety_interval",
        },
        where,
    )
    account = r.string(data, "account", where, required=True)
    if account not in accounts:
        raise r.fail(
            f"{where}.account",
            f"no account named {account!r}; accounts: {', '.join(accounts) or '(none)'}",
        )
    local = r.string(data, "local", where, required=True)
    assert local is not None and account is not None
    colls = data.get("collections", "all")
    if colls != "all":
        if isinstance(colls, str):
            colls = [colls]
        if not isinstance(colls, list) or not all(isinstance(c, str | int) for c in colls):
            raise r.fail(
                f"{where}.collections", "expected 'all' or a list of calendar names or ids"
            )
        colls = tuple(str(c) for c in colls)
    types = _types(r, data.get("types"), f"{where}.types")
    guard = r.mapping(data.get("delete_guard"), f"{where}.delete_guard")
    r.known(guard, {"share", "min_items"}, f"{where}.delete_guard")
    share = r.number(guard, "share", f"{where}.delete_guard", 0.5)
    if share > 1:
        raise r.fail(f"{where}.delete_guard.share", "is a fraction between 0 and 1")
    return Pair(
        name=name,
        account=account,
        local=Path(os.path.expandvars(os.path.expanduser(local))),
        collections=colls,
        conflict=_conflict(r, data.get("conflict"), f"{where}.conflict"),
        types=types,
        delete_share=share,
        delete_min_items=int(r.number(guard, "min_items", f"{where}.delete_guard", 5)),
        poll_interval=r.number(data, "poll_interval", where, 60.0, minimum=1),
        debounce=r.number(data, "debounce", where, 0.3),
        safety_interval=r.number(data, "safety_interval", where, 1800.0, minimum=10),
    )


def load_config(path: Path | None = None) -> Config:
    file = Path(path) if path is not None else default_config_path()
    r = _Reader(file)
    try:
        data_bytes = file.read_bytes()
        text = data_bytes.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: no config file there. Create it (see the README's Configuration section), "
            "or pass one with -c PATH"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise ConfigError(
            f"{file}: {where}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    data = r.mapping(raw, "top level")
    r.known(data, {"accounts", "pairs", "state_dir"}, "")
    accounts = {
        str(k): _account(r, str(k), v)
        for k, v in r.mapping(data.get("accounts"), "accounts").items()
    }
    pairs = {
        str(k): _pair(r, str(k), v, accounts)
        for k, v in r.mapping(data.get("pairs"), "pairs").items()
    }
    if not pairs:
        raise r.fail("pairs", "no pairs configured; add one (see the README)")
    state = data.get("state_dir")
    if state is not None and not isinstance(state, str):
        raise r.fail("state_dir", "expected a path")
    state_dir = (
        Path(os.path.expandvars(os.path.expanduser(state))) if state else default_state_dir()
    )
    if any(a.password_source and a.password_source.kind == "literal" for a in accounts.values()):
        try:
            if stat.S_IMODE(file.stat().st_mode) & 0o044:
                log.warning(
                    "%s holds a plain password and is readable by others; run: chmod 600 %s "
                    "(or use password_command)",
                    file,
                    file,
                )
        except OSError:
            pass
    return Config(
        path=file,
        accounts=accounts,
        pairs=pairs,
        state_dir=state_dir,
        digest=hashlib.sha256(data_bytes).hexdigest(),
    )
