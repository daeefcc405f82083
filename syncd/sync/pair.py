"""One pass of a whole pair: its calendars, then its task lists (when both sides have them).

A pair's ``types`` (``events``, ``tasks``; default: whatever the server offers) choose
what it carries.  Both live under the same vdir root, as khal and todoman expect
(``path = ~/.local/share/calendars/*`` in both): a calendar is a directory of VEVENT
files, a task list a directory of VTODO files, side by side.  Each type runs through
the same engine with its own journal (calendars in ``state_dir/PAIR.sqlite3`` as
before, task lists in ``state_dir/tasks/PAIR.sqlite3``), so JMAP ids of the two types
can never collide and a server without tasks leaves the calendar side exactly as it was.

Which directory belongs to which type: the one whose journal has it; a directory no
journal knows yet is a task list if its items are VTODOs only, a calendar if any is a
VEVENT.  An empty new directory waits for its first item when the pair carries both
types (``mkdir`` then ``todo new -l``), and belongs to the only type otherwise.  A task
list directory is never read, written or deleted while tasks cannot be synced (a
server without ``urn:ietf:params:jmap:tasks``, or a pair with ``types: [events]``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncd.config import Config, Pair, journal_path
from syncd.errors import SyncdError
from syncd.jmap.client import JmapClient
from syncd.jmap.errors import JmapError
from syncd.jmap.session import Session
from syncd.journal import Journal
from syncd.passlock import lock_path, pair_lock
from syncd.sync.engine import PairSync, PassOptions
from syncd.sync.remote import CALENDARS, TASKS, DataType
from syncd.sync.result import PassResult
from syncd.vdir.storage import VdirRoot

log = logging.getLogger("syncd.sync")

EVENTS = "events"
TASK_TYPE = "tasks"
DTYPES: dict[str, DataType] = {EVENTS: CALENDARS, TASK_TYPE: TASKS}
STATE_TYPES = {EVENTS: ("Calendar", "CalendarEvent"), TASK_TYPE: ("TaskList", "Task")}
# Journal meta key in the pair's main journal: what the server said about tasks last pass.
TASKS_META = "tasks_on_server"
TASKS_UNAVAILABLE = "tasks are not available on this server (no urn:ietf:params:jmap:tasks)"

_VEVENT = re.compile(rb"^BEGIN:VEVENT\r?$", re.MULTILINE | re.IGNORECASE)
_VTODO = re.compile(rb"^BEGIN:VTODO\r?$", re.MULTILINE | re.IGNORECASE)
_PEEK_BYTES = 1 << 20


def type_journal_path(config: Config, pair: Pair, kind: str) -> Path:
    return journal_path(config, pair, kind)


@dataclass(frozen=True)
class Carried:
    """What a pair syncs with this server, and what it would but the server lacks."""

    types: tuple[str, ...]
    missing: tuple[str, ...]
    explicit: bool  # the config named the types

    @property
    def both(self) -> bool:
        return EVENTS in self.types and TASK_TYPE in self.types


def carried(pair: Pair, session: Session) -> Carried:
    offered = {EVENTS: session.has_calendars, TASK_TYPE: session.has_tasks}
    wanted = pair.types if pair.types is not None else (EVENTS, TASK_TYPE)
    return Carried(
        types=tuple(t for t in wanted if offered[t]),
        missing=tuple(t for t in wanted if not offered[t]),
        explicit=pair.types is not None,
    )


def classify_dir(path: Path) -> str | None:
    """``events`` if any item is a VEVENT, ``tasks`` if all are VTODOs, None if empty."""
    saw_todo = False
    try:
        names = sorted(p.name for p in path.iterdir())
    except OSError:
        return None
    for name in names:
        if name.startswith(".") or not name.endswith(".ics"):
            continue
        try:
            with open(path / name, "rb") as f:
                data = f.read(_PEEK_BYTES)
        except OSError:
            continue
        if _VEVENT.search(data):
            return EVENTS
        if _VTODO.search(data):
            saw_todo = True
    return TASK_TYPE if saw_todo else None


def _dirnames(path: Path) -> set[str]:
    if not path.exists():
        return set()
    journal = Journal(path)
    try:
        return {row.dirname for row in journal.collections()}
    finally:
        journal.close()


@dataclass
class Partition:
    """The root's directories as seen by one type's pass."""

    exclude: frozenset[str]  # not this type's
    waiting: list[str]  # empty new directories, type unknown yet
    left_alone: list[str]  # task lists while tasks cannot be synced


def partition(root: Path, kind: str, which: Carried, own: set[str], other: set[str]) -> Partition:
    try:
        dirs = set(VdirRoot(root).collections())
    except SyncdError:
        return Partition(frozenset(), [], [])  # the pass itself reports the missing root
    exclude = set(other) - own
    waiting: list[str] = []
    left_alone: list[str] = []
    for name in sorted(dirs - own - other):
        found = classify_dir(root / name)
        if found is None:
            if which.both:
                waiting.append(name)
                exclude.add(name)
            continue  # the only type takes it, as before
        if found != kind:
            exclude.add(name)
            if found == TASK_TYPE and TASK_TYPE not in which.types:
                left_alone.append(name)
    return Partition(frozenset(exclude), waiting, left_alone)


async def run_pair(
    config: Config,
    pair: Pair,
    client: JmapClient,
    options: PassOptions | None = None,
    *,
    echo: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> PassResult:
    """Sync every type the pair carries; one combined result, recorded in each journal.

    A pass that writes holds the pair's lock (syncd.passlock) throughout, waiting for
    another process's pass of the same pair to end first (``on_wait`` is told)."""
    options = options or PassOptions()
    main_path = journal_path(config, pair)
    if options.dry_run:
        return await _pair_pass(config, pair, client, options, echo, progress, main_path)
    async with pair_lock(lock_path(main_path), pair.name, on_wait):
        return await _pair_pass(config, pair, client, options, echo, progress, main_path)


async def _pair_pass(
    config: Config,
    pair: Pair,
    client: JmapClient,
    options: PassOptions,
    echo: Callable[[str], None] | None,
    progress: Callable[[int, int], None] | None,
    main_path: Path,
) -> PassResult:
    which = carried(pair, client.session)
    result = PassResult(pair=pair.name)
    main = Journal(main_path)
    try:
        pass_id = None if options.dry_run else main.start_pass()
        try:
            await _run_types(config, pair, client, options, echo, which, result, progress)
        except BaseException as exc:
            if pass_id is not None:
                main.finish_pass(pass_id, False, f"{pair.name}: failed: {exc}")
            raise
        if not options.dry_run:
            main.set_meta(TASKS_META, "available" if client.session.has_tasks else "not available")
        if pass_id is not None:
            main.finish_pass(pass_id, result.ok, result.summary())
    finally:
        main.close()
    return result


async def _run_types(
    config: Config,
    pair: Pair,
    client: JmapClient,
    options: PassOptions,
    echo: Callable[[str], None] | None,
    which: Carried,
    result: PassResult,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    if TASK_TYPE in which.missing:
        result.notes.append(f"{pair.name}: {TASKS_UNAVAILABLE}; local task lists are left alone")
    for n, kind in enumerate(which.types):
        own_path = type_journal_path(config, pair, kind)
        other_kind = TASK_TYPE if kind == EVENTS else EVENTS
        other = _dirnames(type_journal_path(config, pair, other_kind))
        journal = Journal(own_path)
        try:
            part = partition(
                pair.local, kind, which, {r.dirname for r in journal.collections()}, other
            )
            for name in part.waiting:
                note = (
                    f"{pair.name}: {name} is empty; it becomes a calendar or a task list "
                    "with its first item"
                )
                if note not in result.notes:  # both passes see it
                    result.notes.append(note)
            if part.left_alone:
                result.notes.append(
                    f"{pair.name}: task list directories left alone: {', '.join(part.left_alone)}"
                )
            sync = PairSync(
                config,
                pair,
                client,
                journal,
                dtype=DTYPES[kind],
                echo=echo,
                progress=progress,
                exclude_dirs=part.exclude,
            )
            pass_id = None
            if kind != EVENTS and not options.dry_run:
                pass_id = journal.start_pass()
            try:
                got = await sync.run(options)
            except (SyncdError, JmapError) as exc:
                if pass_id is not None:
                    journal.finish_pass(pass_id, False, str(exc))
                if n == 0:
                    raise  # nothing was synced: the pass failed, as before
                result.errors.append(f"{pair.name}: {DTYPES[kind].label}s: {exc}")
                continue
            if pass_id is not None:
                journal.finish_pass(pass_id, got.ok, got.summary())
            result.collections += got.collections
            result.errors += got.errors
            result.http_requests += got.http_requests
            for t in STATE_TYPES[kind]:
                result.states[t] = journal.get_state(t)
        finally:
            journal.close()
    for note in result.notes:
        log.info("%s", note)
