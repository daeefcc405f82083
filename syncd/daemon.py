"""The long-running side: one task group, a scheduler per pair, push and watching per account.

Every trigger (push, a file change, a timer, a clock jump, a failed pass's retry) only
marks a pair dirty and wakes its scheduler; the scheduler debounces, runs one pass at a
time and runs exactly one more if anything arrived meanwhile.  So bursts cost one pass,
and nothing needs locking.

A pass the server asked for (push, poll) does not stat every file when the watcher has
seen every change under the vdir since a pass that did, and reported none
(``local_scan_needed``): at 50,000 items that stat is most of a pass.  Any file event,
any problem in a pass, a watch that may have missed events, and the periodic safety
pass make the next pass look at every file again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from syncd import memory
from syncd.config import Account, Config, Pair
from syncd.connect import connect
from syncd.control_server import serve_control
from syncd.errors import SyncdError
from syncd.gctune import rare_collections
from syncd.jmap.client import JmapClient
from syncd.jmap.errors import AuthError, JmapError
from syncd.jmap.push import Backoff, PushSubscriber, PushUnavailable, eventsource_url
from syncd.jmap.transport import Transport
from syncd.notify import Notifier
from syncd.sync.engine import PassOptions
from syncd.sync.pair import run_pair
from syncd.sync.result import PassResult
from syncd.vdir.watch import VdirWatcher

log = logging.getLogger("syncd.daemon")

STOP_GRACE = 4.0  # seconds a pass in flight may take to finish on SIGTERM
MAX_DEBOUNCE = 3.0  # a steady stream of file events still gets a pass this often
STATE_TYPES = ("Calendar", "CalendarEvent", "TaskList", "Task")
CLOCK_JUMP = 20.0
# Reasons for a pass that say nothing about the vdir: such a pass may skip the stat of
# every file (see local_scan_needed).  "asked": a `syncd sync` asked for the pass, after
# the watcher reported every change made before it (VdirWatcher.barrier), so what
# changed on disk is among the reasons already; "asked-look": the same without that word.
REMOTE_REASONS = frozenset({"push", "poll", "reconnected", "asked"})
CLOCK_CHECK = 5.0  # how often the clocks are compared  # wall-clock moved this much more than the monotonic clock: a resume


def local_scan_needed(
    reasons: set[str], trusted_since: float | None, clean_scan_started: float | None
) -> bool:
    """PURE.  Must this pass stat every file, or can it take the vdir as the journal left it?

    It can only when all of these hold: the pass was asked for by the server alone (a
    file event, a retry, the start, a resume or the safety timer all mean looking); the
    watcher has seen every change since ``trusted_since``; and a pass that looked at
    every file started after that (``clean_scan_started``) and every pass since ended
    without a problem, so nothing it saw waits for a retry.  Events are reported for
    everything after the watch began, so no event since that pass started means nothing
    changed on disk since it looked."""
    if not reasons or not reasons <= REMOTE_REASONS:
        return True
    return not watch_vouches(trusted_since, clean_scan_started)


def watch_vouches(trusted_since: float | None, clean_scan_started: float | None) -> bool:
    """PURE.  The watch has seen every change since a clean pass began to look at every
    file (see ``local_scan_needed``)."""
    return (
        trusted_since is not None
        and clean_scan_started is not None
        and clean_scan_started >= trusted_since
    )


ASKED = frozenset({"asked", "asked-look"})  # a `syncd sync` waits for this pass

MAX_NAMED_FILES = 1000  # more file events than this between passes: look at every file


def files_to_look_at(
    reasons: set[str],
    trusted_since: float | None,
    clean_scan_started: float | None,
    paths: set[str] | None,
    root: str,
) -> dict[str, set[str]] | None:
    """PURE.  For a pass asked for by file events (and perhaps the server): the item files
    the watcher named, by collection directory, when they are all this pass needs to
    look at; None when it must look at every file.

    The same trust as ``local_scan_needed`` (a watch that saw everything since a clean
    pass that looked), and every event named an item file directly in a collection
    directory: a directory made, moved or removed, a metadata file, the root itself
    (what the watcher reports when it may have missed events) or too many names mean
    looking at every file."""
    if "local" not in reasons or not reasons <= REMOTE_REASONS | {"local"}:
        return None
    if not watch_vouches(trusted_since, clean_scan_started):
        return None
    if not paths or len(paths) > MAX_NAMED_FILES:
        return None
    named: dict[str, set[str]] = {}
    prefix = root.rstrip("/") + "/"
    for path in paths:
        if not path.startswith(prefix):
            return None
        parts = path[len(prefix) :].split("/")
        if len(parts) != 2 or not parts[1].endswith(".ics") or parts[0][:1] in ("", "."):
            return None
        named.setdefault(prefix + parts[0], set()).add(parts[1])
    return named


@dataclass
class PairRunner:
    """Runs passes for one pair when asked, one at a time."""

    daemon: Daemon
    pair: Pair
    account: AccountRunner
    dirty: bool = True  # the start-up pass
    reasons: set[str] = field(default_factory=lambda: {"start"})
    passes: int = 0
    last: PassResult | None = None
    last_error: str | None = None
    failures: int = 0
    in_pass: bool = False
    _wake: anyio.Event = field(default_factory=anyio.Event)
    _last_trigger: float = 0.0
    _pass_scope: anyio.CancelScope | None = None
    first_pass_done: anyio.Event = field(default_factory=anyio.Event)
    watcher: VdirWatcher | None = None
    # When the last pass that looked at every file started, while every pass since has
    # ended without a problem; None otherwise (see local_scan_needed).
    clean_scan_started: float | None = None
    scans_skipped: int = 0  # passes that took the vdir as the journal left it
    scans_named: int = 0  # passes that looked only at the files the watcher named
    # Paths the watcher reported since the last pass began (None: too many to name).
    changed_paths: set[str] | None = field(default_factory=set)
    begun: int = 0  # passes begun (``passes``: passes ended)
    # What the last pass that ended came to: its result, or why it failed (None: it was
    # cancelled).  What a `syncd sync` that asked for it prints (pass_on_request).
    outcome: PassResult | str | None = None
    recent: deque[tuple[int, PassResult | str | None]] = field(
        default_factory=lambda: deque(maxlen=16)
    )  # (number, outcome) of the last passes
    _ended: anyio.Event = field(default_factory=anyio.Event)

    def trigger(self, reason: str) -> None:
        self.dirty = True
        self.reasons.add(reason)
        self._last_trigger = time.monotonic()
        self._wake.set()

    def local_change(self, path: str) -> None:
        log.debug("%s: local change at %s", self.pair.name, path)
        if self.changed_paths is not None:
            self.changed_paths.add(path)
            if len(self.changed_paths) > MAX_NAMED_FILES:
                self.changed_paths = None  # a burst: the next pass looks at every file
        self.trigger("local")

    async def run(self) -> None:
        self._wake.set()
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            if not self.dirty:
                continue
            if "local" in self.reasons and not self.reasons & ASKED:
                await self._debounce()  # a save is several file events; push is not
            self.dirty = False
            reasons, self.reasons = self.reasons, set()
            await self._one_pass(reasons)

    async def _debounce(self) -> None:
        """Wait until events have been quiet for ``debounce`` (a save is several events)."""
        started = time.monotonic()
        while True:
            quiet_until = self._last_trigger + self.pair.debounce
            now = time.monotonic()
            if now >= quiet_until or now - started >= MAX_DEBOUNCE or self.reasons & ASKED:
                return  # (a `syncd sync` waiting: its barrier has the save's events in)
            await anyio.sleep(min(quiet_until, started + MAX_DEBOUNCE) - now)

    async def _one_pass(self, reasons: set[str]) -> None:
        log.info("%s: pass (%s)", self.pair.name, ", ".join(sorted(reasons)))
        self.in_pass = True
        self.begun += 1
        self.outcome = None
        try:
            # Shielded: a stop request lets the pass finish (up to STOP_GRACE), so the
            # journal always matches what was written.
            with anyio.CancelScope(shield=True) as scope:
                self._pass_scope = scope
                before = memory.resident()
                with rare_collections():  # syncd.gctune
                    await self._guarded_pass(reasons)
                memory.after_pass(before)
                if not any(r.in_pass for r in self.daemon.runners if r is not self):
                    memory.stop_forkserver()  # no pass has workers now
        finally:
            self._pass_scope = None
            self.in_pass = False
            self.passes += 1
            self.recent.append((self.begun, self.outcome))
            self.first_pass_done.set()
            self._ended.set()
            self._ended = anyio.Event()
            self.daemon.pass_finished(self)

    async def pass_on_request(self) -> list[PassResult | str | None]:
        """One pass that begins after this call and after the watcher has reported every
        change made on disk before it; what every pass begun since this call came to
        (see ``outcome``), that one last.

        The pass in flight, if any, does not count: it may have looked before a file
        the caller saved.  One that begins while the watcher catches up (its events
        asked for it) does, as the caller's changes may be in it.  Requests that arrive
        together share a pass."""
        arrived = self.begun
        vouched = self.watcher is not None and await self.watcher.barrier()
        after = self.begun
        self.trigger("asked" if vouched else "asked-look")
        while self.passes <= after:
            await self._ended.wait()
        return [outcome for number, outcome in self.recent if number > arrived]

    async def _guarded_pass(self, reasons: set[str] | None = None) -> None:
        started = time.monotonic()
        reasons = reasons or set()
        trusted_since = self.watcher.trusted_since if self.watcher else None
        scan = local_scan_needed(reasons, trusted_since, self.clean_scan_started)
        paths, self.changed_paths = self.changed_paths, set()
        named = files_to_look_at(
            reasons, trusted_since, self.clean_scan_started, paths, str(self.pair.local)
        )
        previous_clean, self.clean_scan_started = self.clean_scan_started, None
        try:
            client = await self.account.client()
            # A first pass's workers start with it: the forkserver they come from is
            # stopped once no pass runs (memory.stop_forkserver), small account or big.
            options = PassOptions(local_unchanged=not scan, local_named=named, early_workers=True)
            result = await run_pair(self.daemon.config, self.pair, client, options)
            self.account.note_state(result.states)
        except (SyncdError, JmapError, OSError) as exc:
            self.failures += 1
            self.last_error = self.outcome = str(exc)
            if isinstance(exc, AuthError):
                self.account.drop_client()
            delay = min(300.0, 2.0 * 2 ** min(self.failures, 8))
            log.error("%s: pass failed: %s (retrying in %.0f s)", self.pair.name, exc, delay)
            self.daemon.later(delay, lambda: self.trigger("retry"))
            return
        self.last = self.outcome = result
        self.last_error = None
        self.failures = 0
        if not scan:
            self.scans_skipped += 1
        elif named is not None:
            self.scans_named += 1
        if result.ok:  # a problem (a file changed under the pass, a refusal) looks again
            # A pass that looked only at named files vouches for nothing more than the
            # clean pass before it: the watch vouched for the rest.
            self.clean_scan_started = started if scan and named is None else previous_clean
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "%s", result.summary())
        for problem in result.errors + [e for c in result.collections for e in c.errors]:
            log.warning("%s: %s", self.pair.name, problem)
        for coll in result.collections:
            if coll.blocked:
                log.warning("%s: %s", self.pair.name, coll.blocked)

    def request_stop(self) -> None:
        if self._pass_scope is not None:
            self._pass_scope.deadline = min(
                self._pass_scope.deadline, anyio.current_time() + STOP_GRACE
            )

    def status_line(self) -> str:
        if self.last_error:
            return f"{self.pair.name}: error: {self.last_error}"
        if self.last is None:
            return f"{self.pair.name}: starting"
        return self.last.summary()


@dataclass
class AccountRunner:
    """One account's connection, push stream (or polling) and its pairs."""

    daemon: Daemon
    account: Account
    pairs: list[PairRunner] = field(default_factory=list)
    _client: JmapClient | None = None
    _lock: anyio.Lock = field(default_factory=anyio.Lock)
    push: PushSubscriber | None = None
    push_state: str = "not started"
    known_states: dict[str, str] = field(default_factory=dict)

    async def client(self) -> JmapClient:
        async with self._lock:
            if self._client is None:
                factory = self.daemon.transport_factory
                transport = factory(self.account) if factory else None
                self._client = await connect(self.account, transport=transport)
            return self._client

    def note_state(self, states: dict[str, str | None]) -> None:
        """The states our last pass reached: a push announcing exactly these is our echo."""
        self.known_states.update({k: v for k, v in states.items() if v is not None})

    def is_echo(self, changed: dict[str, str]) -> bool:
        return bool(changed) and all(self.known_states.get(t) == s for t, s in changed.items())

    def drop_client(self) -> None:
        self._client = None

    def trigger_all(self, reason: str) -> None:
        for runner in self.pairs:
            runner.trigger(reason)

    async def run_push(self) -> None:
        """Push while the server can; else poll ``/changes`` at the pairs' poll interval."""
        backoff = Backoff(base=2, cap=300)
        while True:
            try:
                client = await self.client()
                break
            except (SyncdError, JmapError) as exc:
                self.push_state = f"cannot connect: {exc}"
                await anyio.sleep(backoff.next_delay())
        template = client.session.event_source_url
        if not template:
            self.push_state = "polling (the server offers no push)"
            await self._poll()
            return
        types = ["Calendar", "CalendarEvent"]
        if client.session.has_tasks and any(
            r.pair.types is None or "tasks" in r.pair.types for r in self.pairs
        ):
            types += ["TaskList", "Task"]  # only when a pair of this account syncs tasks
        ping = 30
        url = eventsource_url(template, types, ping)
        account_id = client.account_id

        def on_change(changed: dict[str, dict[str, str]]) -> None:
            ours = {t: s for t, s in (changed.get(account_id) or {}).items() if t in types}
            if ours and not self.is_echo(ours):
                log.debug("push: state change %s", ours)
                self.trigger_all("push")

        self.push = PushSubscriber(
            url=url,
            headers=dict(client.headers),
            on_change=on_change,
            on_connect=self._on_connect,
            ping=ping,
            verify=self.account.ca_bundle or True,
        )
        self.push_state = "connecting"
        try:
            await self.push.run()
        except PushUnavailable as exc:
            log.warning("push: %s; polling every %.0f s instead", exc, self._poll_interval())
            self.push_state = f"polling ({exc})"
            self.push = None
            self.daemon._write_status_file()  # `syncd status` tells at once, not after a pass
            await self._poll()

    def _on_connect(self) -> None:
        first = self.push_state == "connecting"
        self.push_state = "connected"
        self.daemon._write_status_file()  # `syncd status` tells at once, not after a pass
        if not first:
            self.trigger_all("reconnected")  # catch up with what the stream missed

    def _poll_interval(self) -> float:
        return min((r.pair.poll_interval for r in self.pairs), default=60.0)

    async def _poll(self) -> None:
        while True:
            await anyio.sleep(self._poll_interval())
            self.trigger_all("poll")


class Daemon:
    """All pairs of one config in one task group; ``run`` returns when cancelled."""

    def __init__(
        self,
        config: Config,
        notifier: Notifier | None = None,
        transport_factory: Callable[[Account], Transport] | None = None,
    ) -> None:
        self.config = config
        self.transport_factory = transport_factory  # tests plug in a fake server here
        self.notifier = notifier or Notifier()
        self.accounts: dict[str, AccountRunner] = {}
        self.runners: list[PairRunner] = []
        for pair in config.pairs.values():
            acc = self.accounts.get(pair.account)
            if acc is None:
                acc = AccountRunner(self, config.accounts[pair.account])
                self.accounts[pair.account] = acc
            runner = PairRunner(self, pair, acc)
            acc.pairs.append(runner)
            self.runners.append(runner)
        self.ready = False
        self._tg: anyio.abc.TaskGroup | None = None
        self.on_pass: Callable[[PairRunner], None] | None = None  # for tests and status
        self.answers_sync = False  # listening on the control socket (syncd.control_server)

    def later(self, delay: float, action: Callable[[], None]) -> None:
        if self._tg is not None:
            self._tg.start_soon(_after, delay, action)

    def pass_finished(self, runner: PairRunner) -> None:
        status = "; ".join(r.status_line() for r in self.runners)
        if not self.ready and all(r.first_pass_done.is_set() for r in self.runners):
            self.ready = True
            self.notifier.ready(status)
            log.info("ready: %s", status)
        elif self.ready:
            self.notifier.status(status)
        self._write_status_file()
        if self.on_pass is not None:
            self.on_pass(runner)

    def _write_status_file(self) -> None:
        """``state_dir/daemon.json``: what `syncd status` shows about the running daemon."""
        data = {
            r.pair.name: {
                "pid": os.getpid(),
                "updated": time.time(),
                "push": (
                    "reconnecting"  # the stream was lost since it connected
                    if r.account.push is not None
                    and r.account.push_state == "connected"
                    and not r.account.push.connected
                    else r.account.push_state
                ),
                "passes": r.passes,
                "last": r.status_line(),
                "error": r.last_error,
                "config": self.config.digest,  # `status`: a config edited since it was read
                "answers_sync": self.answers_sync,  # `syncd sync` asks this daemon
            }
            for r in self.runners
        }
        path = self.config.state_dir / "daemon.json"
        tmp = path.with_name(".daemon.json.tmp")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, path)
        except OSError as exc:  # a full disk must not stop syncing
            log.warning("could not write %s: %s", path, exc)

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.notifier.watchdog_loop)
            tg.start_soon(self._clock_watch)
            for runner in self.runners:
                tg.start_soon(runner.run)
                tg.start_soon(self._safety_timer, runner)
                runner.watcher = VdirWatcher(runner.pair.local, runner.local_change)
                tg.start_soon(runner.watcher.run)
            for acc in self.accounts.values():
                tg.start_soon(acc.run_push)
            tg.start_soon(serve_control, self)

    def request_stop(self) -> None:
        for runner in self.runners:
            runner.request_stop()

    async def _safety_timer(self, runner: PairRunner) -> None:
        """A cheap pass now and then, in case a push or a file event was lost."""
        while True:
            await anyio.sleep(runner.pair.safety_interval)
            runner.trigger("periodic")

    async def _clock_watch(self) -> None:
        """After a suspend the wall clock jumps ahead of the monotonic one: catch up."""
        wall, mono = time.time(), time.monotonic()
        while True:
            await anyio.sleep(CLOCK_CHECK)
            now_wall, now_mono = time.time(), time.monotonic()
            drift = (now_wall - wall) - (now_mono - mono)
            if math.fabs(drift) > CLOCK_JUMP or now_mono - mono > CLOCK_CHECK + CLOCK_JUMP:
                log.info("clock jumped %.0f s (suspend and resume?): reconnecting", drift)
                for acc in self.accounts.values():
                    if acc.push is not None:
                        acc.push.reconnect()
                    acc.trigger_all("resume")
            wall, mono = now_wall, now_mono


async def _after(delay: float, action: Callable[[], None]) -> None:
    await anyio.sleep(delay)
    action()
