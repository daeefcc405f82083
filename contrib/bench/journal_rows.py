"""What recording a first download's journal rows costs, in process, by how they are put.

    python3 contrib/bench/journal_rows.py [--n 10000] [--runs 5] [--ids cyrus|opaque]
                                          [--scratch auto|loop|tmp]

A first download into an empty directory is swapped in whole (syncd.sync.engine,
``VdirCollection.begin_whole``), and only then are its rows recorded: in chunks of
``COMMIT_EVERY``, by the main process alone on one core, the last thing the pass does.
This puts N such rows (the benchmark's events, ``seed.make_events``, with a served base
of about 1.1 KB each and random UIDs, as most calendars have) into a fresh journal, in
``COMMIT_EVERY`` chunks, five ways:

- ``served order, temp files``: in the order the server sent them (random by UID), with
  SQLite's temp files on disk, as before session 25;
- ``served order``: SQLite's temp files in memory (``journal.TEMP_STORE``);
- ``by UID``: that, the rows sorted by UID first;
- ``by UID, checkpoints beside``: that, the WAL's checkpoints on a thread beside
  (``Journal.checkpoints_beside``), as in session 25;
- ``by UID, beside, INSERT``: that, with a plain INSERT instead of the upsert
  (``Journal.add_items``): what syncd does now.

``--ids cyrus``: server ids made of the UID, as Cyrus makes them (so sorting by UID
sorts them too); ``--ids opaque``: ids unrelated to the UID.  The ways take turns, on a
fresh journaled ext4 where one can be made (``scratchfs.py``).  Prints, for each way, the
median wall and CPU seconds from the first row to the journal's close, and the bytes the
process wrote meanwhile (Linux's ``/proc/self/io``).  Needs no server.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "contrib" / "bench"))
sys.path.insert(0, str(REPO))
import scratchfs  # noqa: E402
import seed  # noqa: E402

from syncd.journal import ItemRow, Journal, served_base  # noqa: E402
from syncd.sync.engine import COMMIT_EVERY  # noqa: E402
from syncd.vdir.names import item_filename  # noqa: E402

WAYS = (
    "served order, temp files",
    "served order",
    "by UID",
    "by UID, checkpoints beside",
    "by UID, beside, INSERT",
)


def first_download_rows(n: int, ids: str) -> list[ItemRow]:
    """Rows as ``PairSync._row`` makes them for a download, in a server's order."""
    rng = random.Random(25)
    rows = []
    for i, ev in enumerate(seed.make_events(n)):
        uid = str(uuid.UUID(int=rng.getrandbits(128)))
        obj = seed.to_jscal(ev)
        obj["uid"] = uid
        if ids == "cyrus":
            remote_id = "E" + base64.urlsafe_b64encode(uid.encode()).decode().rstrip("=")
        else:
            remote_id = f"e{rng.getrandbits(64):016x}"
        obj["id"] = remote_id
        etag = (1_000_000 + i, 1100 + i % 400, 1_765_000_000_000_000_000 + i)
        digest = f"{rng.getrandbits(256):064x}"
        rows.append(
            ItemRow(
                "cal", uid, item_filename(uid), remote_id, etag, digest, None, None,
                served_base(obj),
            )
        )  # fmt: skip
    return rows


def bytes_written() -> int:
    try:
        with open("/proc/self/io") as io:
            return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))
    except OSError:
        return 0


def put(rows: list[ItemRow], way: str, directory: Path) -> tuple[float, float, int]:
    shutil.rmtree(directory, ignore_errors=True)
    journal = Journal(directory / "pair.sqlite3")
    if way.endswith("temp files"):
        journal.db.execute("PRAGMA temp_store=DEFAULT")
    if way.startswith("by UID"):
        rows = sorted(rows, key=lambda row: row.uid)
    beside = "beside" in way
    put_rows = journal.add_items if way.endswith("INSERT") else journal.put_items
    os.sync()
    written, wall, cpu = bytes_written(), time.perf_counter(), time.process_time()
    with journal.checkpoints_beside() if beside else contextlib.nullcontext():
        for start in range(0, len(rows), COMMIT_EVERY):
            with journal.transaction():
                put_rows(rows[start : start + COMMIT_EVERY])
    journal.close()
    return (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        bytes_written() - written,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ids", choices=("cyrus", "opaque"), default="cyrus")
    parser.add_argument("--scratch", choices=("auto", "loop", "tmp"), default="auto")
    args = parser.parse_args()
    rows = first_download_rows(args.n, args.ids)
    got: dict[str, list[tuple[float, float, int]]] = {way: [] for way in WAYS}
    with scratchfs.scratch(args.scratch) as (work, what):
        print(f"[journal_rows] N = {args.n}, ids: {args.ids}, on {what}")
        for run in range(args.runs):
            for way in WAYS if run % 2 == 0 else WAYS[::-1]:
                got[way].append(put(rows, way, work / "state"))
    print(f"{'way':<28} {'wall s':>7} {'CPU s':>7} {'written MB':>11}")
    for way, runs in got.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        mb = statistics.median(r[2] for r in runs) / 1e6
        print(f"{way:<28} {wall:7.3f} {cpu:7.3f} {mb:11.1f}")


if __name__ == "__main__":
    main()
