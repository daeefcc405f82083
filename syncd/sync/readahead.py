"""Local files parsed ahead of the scan, on every core, when there are many to read.

A first upload, or the first pass over a vdir another tool filled, reads every file the
journal does not know.  Parsing iCalendar is most of that pass's own work: about 1.8 ms
per event of the benchmark's mix (icalendar's parser, three quarters of it), against
0.1 ms for its canonical form: 18 CPU-seconds for 10,000 files, on one core, before
the first write goes out.  So when the scan will read at least ``MIN_FILES`` files, the
main process reads them (with the vdir's own checks) and worker processes parse them,
in the scan's order, while the main process takes their results one by one.

Like the conversion workers of a big download (syncd.sync.prepare), the workers are a
speed-up, never a second source of results: a file they could not parse, any failure
of the pool, or a file whose bytes are not the ones they parsed is parsed again in the
main process, where its error is reported in context.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from syncd.convert.canon import canon_text, comparable_of
from syncd.sync.workers import forkserver_context, start_worker, worker_count

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

log = logging.getLogger("syncd.readahead")

MIN_FILES = 1000  # below this a pool costs more (its start, about 0.2 s) than it saves
CHUNK = 100  # files per task


@dataclass(frozen=True)
class Parsed:
    """What a file's bytes hold, as ``_look_at`` would make it in the main process.

    The objects come packed (``objs()`` unpacks them): the scan needs them only for an
    item that is new or differs from the server's, and 10,000 files' objects and
    canonical forms, parsed well before the scan reached them, were 60 MB of the main
    process's peak when adopting a vdir (and unpickling them its CPU)."""

    count: int  # the file's items
    kind: str  # the first item's @type
    uid: str  # the first item's UID
    # The hash of the first item's canonical form (engine.content_hash) when there is
    # one item; the form itself stays in the worker.
    comparable: str | None
    packed: bytes

    def objs(self) -> list[dict[str, Any]]:
        return pickle.loads(self.packed)  # type: ignore[no-any-return]

    def first_obj(self) -> dict[str, Any]:
        return self.objs()[0]


def parse_file(data: bytes) -> Parsed | None:
    """PURE; None on any error (the main process parses again and says what is wrong)."""
    from syncd import convert

    try:
        objs = convert.ics_to_jscal(data)
        comparable = (
            comparable_of(canon_text(convert.canonical(objs[0]))) if len(objs) == 1 else None
        )
        first = objs[0]
        return Parsed(
            len(objs),
            str(first.get("@type", "Event")),
            str(first["uid"]),
            comparable,
            pickle.dumps(objs, pickle.HIGHEST_PROTOCOL),
        )
    except Exception:  # noqa: BLE001 - reported by the main process's own attempt
        return None


def _parse_chunk(datas: list[bytes]) -> list[Parsed | None]:
    return [parse_file(data) for data in datas]


@dataclass
class _Ahead:
    data: bytes | None
    error: BaseException | None
    future: Future[list[Parsed | None]] | None = None
    index: int = 0
    etag: str | None = None  # the file's etag when it was read early (``start_early``)


class Readahead:
    """The scan's files, read in order, parsed by workers ahead of the scan.

    ``start(names, read)`` reads every named file with ``read`` (an error is kept and
    raised again when that file's turn comes) and hands the bytes to the workers;
    ``read(name)`` and ``parsed(name, data)`` then stand in for the scan's own read and
    parse; ``close()`` always."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = worker_count() if workers is None else workers
        self.pool: ProcessPoolExecutor | None = None
        self.files: dict[str, _Ahead] = {}
        self.etags: dict[str, str] = {}  # name -> etag text, for files read early

    def start_early(
        self, listing: dict[str, str], read: Callable[[str], bytes]
    ) -> threading.Thread | None:
        """``start`` on a thread, before the pass knows which files it will read: a first
        pass over a vdir another tool filled reads them all, and parsing them while the
        server's answer comes in keeps both cores busy (Session 20).  ``listing``: each
        file's etag as listed before it is read; the scan takes a file's early bytes only
        where its own listing has the same etag (``read``), else reads it again."""
        if len(listing) < MIN_FILES or self.workers < 2:
            return None
        self.etags = listing
        thread = threading.Thread(
            target=self.start, args=(sorted(listing), read), name="syncd-readahead", daemon=True
        )
        thread.start()
        return thread

    def start(self, names: Iterable[str], read: Callable[[str], bytes]) -> bool:
        """Begin, if there are enough files and cores; False: the scan reads as before."""
        names = list(names)
        if len(names) < MIN_FILES or self.workers < 2:
            return False
        try:
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=forkserver_context(),
                initializer=start_worker,
                initargs=(os.getpid(),),
            )
        except (OSError, RuntimeError, ImportError, ValueError) as exc:
            log.info("no parsing workers (%s); parsing in the main process", exc)
            return False
        try:
            for start in range(0, len(names), CHUNK):  # each chunk parsed while the next is read
                chunk: list[_Ahead] = []
                datas: list[bytes] = []
                for name in names[start : start + CHUNK]:
                    try:
                        data = read(name)
                    except Exception as exc:  # noqa: BLE001 - raised again at this file's turn
                        self.files[name] = _Ahead(None, exc, etag=self.etags.get(name))
                        continue
                    self.files[name] = _Ahead(data, None, etag=self.etags.get(name))
                    chunk.append(self.files[name])
                    datas.append(data)
                if chunk:
                    future = self.pool.submit(_parse_chunk, datas)
                    for i, ahead in enumerate(chunk):
                        ahead.future, ahead.index = future, i
        except (OSError, RuntimeError) as exc:  # a broken pool: the rest parsed here
            log.info("parsing workers failed (%s); parsing in the main process", exc)
        return True

    def read(self, name: str, read: Callable[[str], bytes], etag: str | None = None) -> bytes:
        """The file's bytes as read ahead (or its read error, raised); read now if it
        was not among the names, or was read early at another etag than ``etag`` (the
        scan's own listing): it changed since."""
        ahead = self.files.get(name)
        if ahead is not None and ahead.etag is not None and ahead.etag != etag:
            del self.files[name]
            ahead = None
        if ahead is None:
            return read(name)
        if ahead.error is not None:
            raise ahead.error
        assert ahead.data is not None
        return ahead.data

    async def parsed(self, name: str, data: bytes, poll: float = 0.002) -> Parsed | None:
        """The workers' parse of ``data``; None: parse it here.  Given once."""
        ahead = self.files.pop(name, None)
        if ahead is None or ahead.future is None or ahead.data is not data:
            return None
        future = ahead.future
        while not future.done():
            await anyio.sleep(poll)
        if future.cancelled() or future.exception() is not None:
            return None
        got = future.result()
        return got[ahead.index] if ahead.index < len(got) else None

    def close(self) -> None:
        self.files.clear()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
