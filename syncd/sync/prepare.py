"""Converting many server objects at once, on every core, while they arrive.

A first download (or any pass that brings thousands of server objects) spends nearly
all of its time in two pure functions per object: ``jscal_to_ics`` (the file) and
``canonical`` (the comparable form).  Both depend on the object alone, so each batch
goes to worker processes as soon as the server's answer arrives, while the server sends
the next: the files of its objects that are new to the journal (nothing to merge back)
to the file workers, one per core; the canonical forms of those the pass will compare
(objects the journal knows, or all of them when the vdir holds files the journal does
not know) to a worker of their own, so that routing, which waits for them, never waits
behind files.  A first download into an empty vdir compares nothing, so it makes no
canonical forms at all (syncd.sync.plan.RemoteVersion).

The main process meanwhile waits on the event loop (the daemon keeps pinging systemd
and reading its push stream) and writes files.  The workers come from a
``forkserver``: forking the main process itself is not safe once it has threads (the
HTTP transport's, the daemon's file watcher); a forkserver starts clean and hands out
workers that already have the converter loaded.  Anything that goes wrong in a worker,
or with the pool itself, only means the object is converted in the main process as
before, where its error is reported the usual way: the pool is a speed-up, never a
second source of results.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pool's modules load only for a pass that uses one (~7 ms)
    from concurrent.futures import Future, ProcessPoolExecutor

import anyio

from syncd.convert.canon import canon_text, canonical, comparable_of
from syncd.journal import served_base
from syncd.sync.workers import forkserver_context, start_worker

log = logging.getLogger("syncd.prepare")

# Below this many objects a pool costs more (start, pickling) than it saves.
MIN_OBJECTS = 1000
CHUNK = 250  # objects per task: small enough to balance, big enough to amortise pickling


@dataclass(frozen=True)
class Canon:
    """An object's comparable form, as ``engine.remote_version`` would compute it."""

    text: str
    comparable: str


def canon_of(obj: dict[str, Any]) -> Canon | None:
    """PURE; None on any error (the main process redoes it and reports in context)."""
    try:
        text = canon_text(canonical(obj))
    except Exception:  # noqa: BLE001 - reported by the main process's own attempt
        return None
    return Canon(text, comparable_of(text))


def bytes_hash(data: bytes) -> str:
    """A file's digest, as the journal keeps it (``local_hash``)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Made:
    """What a worker makes of an object new to the journal: its file, the file's digest,
    and its journal base as served (``syncd.journal.served_base``: encoding it was a
    tenth of the main process's work in a first download)."""

    data: bytes
    served: str
    digest: str


def made_of(obj: dict[str, Any]) -> Made:
    """PURE: an object's file, and what the journal keeps of it."""
    from syncd.convert.ical_out import jscal_to_ics

    data = jscal_to_ics([obj])
    return Made(data, served_base(obj), bytes_hash(data))


def render_of(obj: dict[str, Any]) -> Made | None:
    """PURE: the file of an object that has none yet; None on any error, as above."""
    try:
        return made_of(obj)
    except Exception:  # noqa: BLE001 - as above
        return None


Chunk = bytes | list[dict[str, Any]]  # a chunk of objects on its way to a worker


def pack_chunk(objs: list[dict[str, Any]]) -> Chunk:
    """A chunk as it goes to a worker: ``marshal``'s bytes, which the pool then pickles
    as one string.  An object parsed from JSON holds only what marshal writes (dicts,
    lists, strings, numbers, booleans, None), and writing it costs the main process
    half of pickling it (1.6 us a Cyrus event instead of 3.5; contrib/bench/README.md,
    Session 29); reading it back is no dearer in the worker.  Anything marshal cannot
    write goes as it is, pickled by the pool."""
    try:
        return marshal.dumps(objs)
    except ValueError:
        return objs


def _unpack_chunk(chunk: Chunk) -> list[dict[str, Any]]:
    return marshal.loads(chunk) if isinstance(chunk, bytes) else chunk  # type: ignore[no-any-return]


def _canon_chunk(chunk: Chunk) -> list[Canon | None]:
    return [canon_of(obj) for obj in _unpack_chunk(chunk)]


def _render_chunk(chunk: Chunk) -> list[Made | None]:
    return [render_of(obj) for obj in _unpack_chunk(chunk)]


class _Slot:
    """Where one object's results will be: its chunk's futures and its place in them."""

    __slots__ = ("obj", "canon", "canon_index", "render", "render_index", "seq")

    def __init__(self, obj: dict[str, Any], seq: int) -> None:
        self.obj, self.seq = obj, seq
        self.canon: Future[Any] | None = None
        self.render: Future[Any] | None = None
        self.canon_index = self.render_index = 0


class Preparer:
    """Conversion workers for one pass.  ``feed`` batches as they arrive, ``seal`` when the
    fetch is complete, then read results; ``close`` always.

    ``wants_file(obj)`` says whether an object's file should be made in advance (it is new
    to the journal, so there is no previous file to merge back); ``wants_canon(obj)``
    whether its canonical form should (the pass will compare it).
    """

    def __init__(
        self,
        wants_file: Callable[[dict[str, Any]], bool],
        workers: int,
        wants_canon: Callable[[dict[str, Any]], bool] = lambda obj: True,
    ) -> None:
        self.wants_file = wants_file
        self.wants_canon = wants_canon
        self.workers = workers
        # Files and canonical forms in pools of their own: routing waits for every
        # canonical form, and in one queue they would wait behind the files of the
        # batches before them.
        self.pool: ProcessPoolExecutor | None = None  # files: one process per worker
        self.canon_pool: ProcessPoolExecutor | None = None  # canonical forms: 1, if needed
        self._context: Any = None  # the forkserver's, for a canonical-form pool started later
        self.slots: dict[str, _Slot] = {}
        self.results: dict[Future[Any], list[Any]] = {}  # a done chunk's results, read once
        self.waiting: list[dict[str, Any]] = []  # fed before there were enough to start
        self.broken = workers < 2
        self.unneeded = False  # started early for a fetch that turned out small
        self._starting: threading.Thread | None = None  # started by expect()/start_early()

    def expect(self, count: int) -> None:
        """The fetch will bring ``count`` objects.  With enough of them the workers start
        now, in a thread, while the server prepares its first answer, instead of when
        that answer arrives: a forkserver and two workers loading the converter block
        for about 0.2 s, and the event loop goes on asking for the page meanwhile.  With
        too few, workers ``start_early`` began are not used."""
        if count < MIN_OBJECTS:
            self.unneeded = self.pool is not None or self._starting is not None
            return
        self.unneeded = False
        self._begin()

    def start_early(self) -> None:
        """Start the workers before the server says how many objects it has: on a pair's
        first pass, which brings everything the server holds.  Their start then overlaps
        the server's first answers (its listing of every id, then the first page), when
        only the server works, instead of following them: 0.05-0.1 s of a first download
        of 10,000 events (contrib/bench/README.md, Session 22).  A first pass that turns out
        small (``expect``) leaves them unused; it pays their start once, on the other
        core."""
        self._begin()

    def _begin(self) -> None:
        if self.broken or self.pool is not None or self._starting:
            return
        self._starting = threading.Thread(target=self._warm, name="syncd-workers", daemon=True)
        self._starting.start()

    def _warm(self) -> None:
        pool = self._start()
        try:
            if pool is not None:
                # A pool spawns a worker per task waiting; each loads the converters as it
                # starts (syncd.sync.workers.start_worker), so the task itself is nothing.
                for _ in range(self.workers):
                    pool.submit(os.getpid)
        except (OSError, RuntimeError) as exc:
            log.info("conversion workers failed (%s); converting in the main process", exc)
            self.broken = True

    def _started(self) -> None:
        """Wait for a start ``expect`` began (before anything touches the pools)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def feed(self, objs: Sequence[dict[str, Any]]) -> None:
        if self.unneeded:  # checked first: the loop does not wait for a start not needed
            return
        self._started()
        if self.broken:
            return
        self.waiting.extend(objs)
        if self.pool is None and len(self.waiting) < MIN_OBJECTS:
            return
        self._submit()

    def _start(self) -> ProcessPoolExecutor | None:
        if self.pool is None and not self.broken:
            try:
                from concurrent.futures import ProcessPoolExecutor

                ctx = forkserver_context()
                self.pool = ProcessPoolExecutor(
                    self.workers, mp_context=ctx, initializer=start_worker, initargs=(os.getpid(),)
                )
                self._context = ctx
            except (OSError, RuntimeError, ImportError, ValueError) as exc:
                log.info("no conversion workers (%s); converting in the main process", exc)
                self.broken = True
        return self.pool

    def _canon_pool(self) -> ProcessPoolExecutor:
        if self.canon_pool is None:
            from concurrent.futures import ProcessPoolExecutor

            self.canon_pool = ProcessPoolExecutor(
                1, mp_context=self._context, initializer=start_worker, initargs=(os.getpid(),)
            )
        return self.canon_pool

    def _submit(self) -> None:
        """Each chunk's canonical forms the pass will compare and the files of its objects
        new to the journal: the workers convert while the server is still sending; the
        canonical forms (which routing waits for) have a worker of their own, never
        queued behind files."""
        pool = self._start()
        objs, self.waiting = self.waiting, []
        if pool is None:
            return
        try:
            for start in range(0, len(objs), CHUNK):
                slots = []
                for obj in objs[start : start + CHUNK]:
                    slot = _Slot(obj, len(self.slots))
                    self.slots[str(obj.get("id"))] = slot
                    slots.append(slot)
                compared = [slot for slot in slots if self.wants_canon(slot.obj)]
                if compared:
                    forms = self._canon_pool().submit(
                        _canon_chunk, pack_chunk([s.obj for s in compared])
                    )
                    for i, slot in enumerate(compared):
                        slot.canon, slot.canon_index = forms, i
                wanted = [slot for slot in slots if self.wants_file(slot.obj)]
                if wanted:
                    files = pool.submit(_render_chunk, pack_chunk([slot.obj for slot in wanted]))
                    for i, slot in enumerate(wanted):
                        slot.render, slot.render_index = files, i
        except (OSError, RuntimeError) as exc:  # a broken pool: the rest is done in-process
            log.info("conversion workers failed (%s); converting in the main process", exc)
            self.broken = True

    def seal(self) -> None:
        """The fetch is complete: submit what is still waiting."""
        if self.unneeded:
            return
        self._started()
        if not self.broken and self.pool is not None and self.waiting:
            self._submit()

    async def canons_ready(self, poll: float = 0.01) -> None:
        """Wait (without blocking the event loop) until every canonical form is back."""
        forms = {id(s.canon): s.canon for s in self.slots.values() if s.canon is not None}
        for future in forms.values():
            while not future.done():
                await anyio.sleep(poll)

    def canon(self, obj: dict[str, Any]) -> Canon | None:
        slot = self._slot(obj)
        if slot is None or slot.canon is None:
            return None
        return self._take(slot.canon, slot.canon_index)

    def order(self, obj: dict[str, Any]) -> int:
        """Where this object's file comes back: writing in this order waits least."""
        slot = self._slot(obj)
        return slot.seq if slot is not None and slot.render is not None else -1

    async def file(self, obj: dict[str, Any], poll: float = 0.005) -> Made | None:
        """The object's file made in advance, waiting for it; None: make it here.  Given
        once: the preparer lets go of it, so that the files already written (and their
        served text) do not stay in memory until the pass ends (30 MB at 10,000)."""
        slot = self._slot(obj)
        if slot is None or slot.render is None:
            return None
        while slot.render not in self.results and not slot.render.done():
            await anyio.sleep(poll)
        made: Made | None = self._take(slot.render, slot.render_index)
        got = self.results.get(slot.render)
        if made is not None and got:
            got[slot.render_index] = None
        return made

    def _slot(self, obj: dict[str, Any]) -> _Slot | None:
        slot = self.slots.get(str(obj.get("id")))
        return slot if slot is not None and slot.obj is obj else None

    def _take(self, future: Future[Any], index: int) -> Any:
        """One object's result from its chunk's future (a future's every call takes a
        lock: each chunk's results are read from it once, not once per object)."""
        got = self.results.get(future)
        if got is None:
            if not future.done():
                return None
            failed = future.cancelled() or future.exception() is not None
            got = self.results[future] = [] if failed else future.result()
        return got[index] if index < len(got) else None

    def close(self) -> None:
        self._started()
        for pool in (self.pool, self.canon_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self.canon_pool = None
