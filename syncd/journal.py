"""The SQLite journal: what both sides looked like after the last sync.

One file per pair, WAL mode, created 0600.  It is the common base of the
three-way comparison, the record of which JMAP account the pair belongs to,
the place intents are written before side effects (so a crash can be settled),
and the conflict log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.convert.canon import MEMBERSHIP, SERVER_SET, canonical
from syncd.errors import SyncdError
from syncd.vdir import fingerprint

log = logging.getLogger("syncd.journal")

# 2: a row's base may be kept as served (``served_base``); a syncd that knows only 1 would
# read such a base as a canonical object, so it refuses the journal instead.
SCHEMA_VERSION = 2
# What every pass reads of every row: answered from the items_scan index alone.
LISTING_QUERY = "SELECT uid, filename, local_etag FROM items WHERE collection = ?"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS states (type TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    remote_id TEXT PRIMARY KEY,
    dirname TEXT NOT NULL UNIQUE,
    name TEXT,
    color TEXT,
    kind TEXT NOT NULL DEFAULT 'calendar',
    detached TEXT
);
CREATE TABLE IF NOT EXISTS items (
    collection TEXT NOT NULL,
    uid TEXT NOT NULL,
    filename TEXT NOT NULL,
    remote_id TEXT,
    local_etag TEXT,
    local_hash TEXT,
    remote_hash TEXT,
    remote_updated TEXT,
    base TEXT,
    synced_at REAL,
    PRIMARY KEY (collection, uid)
);
CREATE UNIQUE INDEX IF NOT EXISTS items_file ON items (collection, filename);
CREATE INDEX IF NOT EXISTS items_remote ON items (remote_id);
-- What every pass reads of every row (Journal.items), without touching the rows, whose
-- base makes them a page each: 0.19 -> 0.09 s for 50,000 items.  Made on first open
-- of an older journal too (about 0.2 s for 50,000).
CREATE INDEX IF NOT EXISTS items_scan ON items (collection, filename, uid, local_etag);
-- Rows without an etag (ItemRows.any_without_etag), found without reading every row: a
-- daemon pass that looks only at the files its watcher named must know there are none.
CREATE INDEX IF NOT EXISTS items_without_etag ON items (collection, uid) WHERE local_etag IS NULL;
-- The fingerprint (syncd.vdir.fingerprint) of each collection's (filename, local_etag)
-- rows, stored after a pass; any change to those rows drops it, so a stored one always
-- describes the rows as they are: an update or a delete by the triggers, whatever wrote
-- it (sqlite3 by hand too); a new row by Journal.put_items, the one statement that
-- inserts rows.  An insert trigger ran once per row: a third of the CPU of putting
-- 10,000 rows (0.18 -> 0.12 s), in the part of a first download that runs on one core.
-- A journal an earlier syncd made has that trigger; it goes (the code does its work).
CREATE TABLE IF NOT EXISTS listing_fingerprints (
    collection TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
DROP TRIGGER IF EXISTS items_fingerprint_insert;
CREATE TRIGGER IF NOT EXISTS items_fingerprint_update
AFTER UPDATE OF collection, filename, local_etag ON items BEGIN
    DELETE FROM listing_fingerprints WHERE collection IN (OLD.collection, NEW.collection);
END;
CREATE TRIGGER IF NOT EXISTS items_fingerprint_delete AFTER DELETE ON items BEGIN
    DELETE FROM listing_fingerprints WHERE collection = OLD.collection;
END;
CREATE TABLE IF NOT EXISTS pending_remote (
    remote_id TEXT PRIMARY KEY,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    collection TEXT NOT NULL,
    uid TEXT NOT NULL,
    detail TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    uid TEXT NOT NULL,
    rule TEXT NOT NULL,
    local TEXT,
    remote TEXT,
    result TEXT,
    decided_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS item_errors (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    side TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (collection, key, side)
);
CREATE TABLE IF NOT EXISTS passes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    ok INTEGER,
    summary TEXT
);
"""


class JournalError(SyncdError):
    """The journal cannot be used as it is (wrong account, corrupt, newer schema)."""


Etag = tuple[int, int, int]


def etag_to_text(etag: Etag | None) -> str | None:
    return None if etag is None else f"{etag[0]}:{etag[1]}:{etag[2]}"


def etag_from_text(text: str | None) -> Etag | None:
    if not text:
        return None
    a, b, c = text.split(":")
    return int(a), int(b), int(c)


class JsonOnDemand:
    """A dataclass field holding a JSON column, decoded on first read.

    A pass loads every row of a collection to compare etags, but needs the base object
    of only the few items that changed: decoding all of them made a no-change pass cost
    O(items) in ``json.loads`` (0.35 s at 10,000).  Assigning a ``str`` stores the column
    text; anything else is stored as the value itself.  ``decode`` turns the text into
    the value (``json.loads`` unless told otherwise).
    """

    def __init__(self, decode: Callable[[str], Any] = json.loads) -> None:
        self.decode = decode

    def __set_name__(self, owner: type, name: str) -> None:
        self.raw, self.decoded = f"_{name}_raw", f"_{name}_decoded"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return None  # the dataclass default
        d = obj.__dict__
        if self.decoded not in d:
            raw = d.get(self.raw)
            if isinstance(raw, _BaseLoader):
                raw = raw()
            d[self.decoded] = self.decode(raw) if isinstance(raw, str) else raw
        return d[self.decoded]

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.raw] = value
        obj.__dict__.pop(self.decoded, None)

    def text(self, obj: Any) -> str | None:
        """The JSON text to store: the text given, if the field was given one (a big
        first download then encodes each base once, not twice)."""
        d = obj.__dict__
        if self.decoded not in d and isinstance(d.get(self.raw), str):
            return str(d[self.raw])
        value = self.__get__(obj)
        return None if value is None else json.dumps(value, sort_keys=True)


# The base of a row written from a server object whose canonical form was not needed
# (syncd.sync.plan.RemoteVersion): the object as served, after this prefix.  A first
# download needs no object's canonical form (there is nothing to compare it with), and
# making 10,000 of them was a third of its work; a later pass makes one when it compares
# or merges that item.  JSON text never starts with "s", so the two forms cannot mix.
SERVED = "served:"


def served_base(obj: dict[str, Any]) -> str:
    """The base column for ``obj`` kept as served, less the server-set and membership
    properties the canonical form drops first (a fifth of its size); its canonical
    form is made when read."""
    kept = {k: v for k, v in obj.items() if k not in SERVER_SET and k not in MEMBERSHIP}
    return SERVED + _served_json(kept)


# One encoder for every served base (``json.dumps`` with arguments makes one per call),
# without the check for cycles, which a parsed server object cannot have: a served base
# in 14.1 us instead of 15.6, in the conversion workers of a first download.
_served_json = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False
).encode


def decode_base(text: str) -> dict[str, Any] | None:
    """A base column's object: its canonical form, made now for one kept as served.

    A served object the canonical form cannot be made of (the server sent something
    syncd cannot read) reads as no base: that item is then compared and merged as one
    never synced, which asks the conflict rules instead of failing the pass."""
    if not text.startswith(SERVED):
        return json.loads(text)  # type: ignore[no-any-return]
    try:
        return canonical(json.loads(text[len(SERVED) :]))
    except Exception as exc:  # noqa: BLE001 - any failure means the same: no usable base
        log.warning(
            "a journal base cannot be read (%s: %s); treated as none", type(exc).__name__, exc
        )
        return None


class _BaseLoader:
    """Reads one row's base column when it is first needed (see ``Journal.items``)."""

    __slots__ = ("db", "collection", "uid")

    def __init__(self, db: sqlite3.Connection, collection: str, uid: str) -> None:
        self.db, self.collection, self.uid = db, collection, uid

    def __call__(self) -> str | None:
        row = self.db.execute(
            "SELECT base FROM items WHERE collection = ? AND uid = ?", (self.collection, self.uid)
        ).fetchone()
        return row[0] if row else None


@dataclass(frozen=True)
class ItemRow:
    """One item as last synced: the common base of both sides."""

    collection: str
    uid: str
    filename: str
    remote_id: str | None
    local_etag: Etag | None
    local_hash: str | None
    remote_hash: str | None
    remote_updated: str | None
    # For a row written from a server object nobody compared (``served_base``),
    # ``remote_hash`` is None and both are made from the base when first needed.
    base: dict[str, Any] | None = JsonOnDemand(decode_base)  # type: ignore[assignment]


_BASE: JsonOnDemand = ItemRow.__dict__["base"]


_NAMES_PER_QUERY = 500  # under SQLite's oldest limit on a query's parameters (999)


class ItemRows(MutableMapping[str, ItemRow]):
    """uid -> ItemRow for one collection, each row read and built on first access.

    What a pass compares every file against is each row's file name and etag; the rest
    of a row is read only for the few items that changed.  And a pass whose directory
    matches the journal's fingerprint never needs the listing at all: it is read on the
    first call that needs every row (iteration, ``by_filename``, ``filenames``), and
    single lookups before that are point queries."""

    def __init__(
        self,
        raw: dict[str, tuple[str, str | None]] | None,
        db: sqlite3.Connection | None,
        collection: str = "",
    ) -> None:
        # uid -> (file name, etag text), () for rows set in this pass; None until needed
        self._raw = raw
        self._rows: dict[str, ItemRow] = {}
        self._gone: set[str] = set()  # deleted in this pass before the listing was read
        self._db = db
        self._collection = collection

    def _listing(self) -> dict[str, tuple[str, str | None]]:
        if self._raw is None:
            assert self._db is not None
            rows = self._db.execute(LISTING_QUERY, (self._collection,)).fetchall()
            raw: dict[str, tuple[str, str | None]] = {r[0]: r[1:] for r in rows}
            for uid in self._gone:
                raw.pop(uid, None)
            for uid in self._rows:
                raw.setdefault(uid, ())
            self._raw = raw
        return self._raw

    def read_listing(self) -> None:
        """Read the listing now: a pass about to look up thousands of uids (a first
        download's) then finds the ones with no row without a query each."""
        self._listing()

    def _read(self, uid: str) -> ItemRow | None:
        assert self._db is not None
        r = self._db.execute(
            "SELECT collection, uid, filename, remote_id, local_etag, local_hash, "
            "remote_hash, remote_updated, base IS NOT NULL FROM items "
            "WHERE collection = ? AND uid = ?",
            (self._collection, uid),
        ).fetchone()
        if r is None:
            return None
        loader = _BaseLoader(self._db, r[0], r[1]) if r[8] else None
        row = self._rows[uid] = _item((*r[:8], loader))
        return row

    def __getitem__(self, uid: str) -> ItemRow:
        row = self.get(uid)
        if row is None:
            raise KeyError(uid)
        return row

    def get(self, uid: str, default: Any = None) -> Any:  # type: ignore[override]
        """Without a KeyError raised and caught for each uid the journal does not know
        (``Mapping.get``): a first download looks up 10,000 of them twice."""
        row = self._rows.get(uid)
        if row is not None:
            return row
        if uid in self._gone or (self._raw is not None and uid not in self._raw):
            return default
        row = self._read(uid)
        return default if row is None else row

    def __setitem__(self, uid: str, row: ItemRow) -> None:
        self._rows[uid] = row
        self._gone.discard(uid)
        if self._raw is not None:
            self._raw.setdefault(uid, ())

    def __delitem__(self, uid: str) -> None:
        if uid not in self:
            raise KeyError(uid)
        self._rows.pop(uid, None)
        if self._raw is not None:
            del self._raw[uid]
        else:
            self._gone.add(uid)

    def __contains__(self, uid: object) -> bool:
        if uid in self._rows:
            return True
        if self._raw is not None:
            return uid in self._raw  # without reading the row
        if uid in self._gone or not isinstance(uid, str):
            return False
        assert self._db is not None
        return (
            self._db.execute(
                "SELECT 1 FROM items WHERE collection = ? AND uid = ?", (self._collection, uid)
            ).fetchone()
            is not None
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._listing())

    def __len__(self) -> int:
        if self._raw is not None:
            return len(self._raw)
        # Counted in SQLite, corrected by this pass's rows: a pass that deletes one file
        # (the deletion guard counts) reads no listing.
        assert self._db is not None
        count = int(
            self._db.execute(
                "SELECT COUNT(*) FROM items WHERE collection = ?", (self._collection,)
            ).fetchone()[0]
        )
        stored = {uid for (uid,) in self._where_in("uid", "uid", [*self._rows, *self._gone])}
        return count - len(stored & self._gone) + len(self._rows.keys() - stored)

    def _where_in(self, columns: str, key: str, values: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        """The collection's rows whose ``key`` is one of ``values``, a query per few
        hundred values."""
        assert self._db is not None
        ordered = sorted(values)
        for start in range(0, len(ordered), _NAMES_PER_QUERY):
            chunk = ordered[start : start + _NAMES_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT {columns} FROM items WHERE collection = ? AND {key} IN ({marks})",
                (self._collection, *chunk),
            )

    def filenames(self) -> Iterator[tuple[str, str]]:
        """(uid, file name) of every row, without building the rows."""
        for uid, r in self._listing().items():
            row = self._rows.get(uid)
            yield uid, (row.filename if row is not None else r[0])

    def by_filenames(self, names: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """``by_filename`` for these file names only, with a query per few hundred names
        instead of the whole listing: what a pass that looks at a few files reads."""
        wanted = set(names)
        if self._raw is not None:  # in memory already
            return {k: v for k, v in self.by_filename().items() if k in wanted}
        out: dict[str, tuple[str, str | None]] = {}
        for uid, filename, etag in self._where_in("uid, filename, local_etag", "filename", wanted):
            if uid not in self._gone and uid not in self._rows:
                out[filename] = (uid, etag)
        for uid, row in self._rows.items():  # set in this pass: as they are now
            if row.filename in wanted:
                out[row.filename] = (uid, etag_to_text(row.local_etag))
        return out

    def any_without_etag(self) -> bool:
        """Whether a row has no etag (syncd writes none, but the schema allows it): such a
        row says nothing about its file, so only a look at every file can place it."""
        if any(row.local_etag is None for row in self._rows.values()):
            return True
        if self._raw is not None:
            return any(r and r[1] is None for r in self._raw.values())
        assert self._db is not None
        found = self._db.execute(
            # Named: SQLite would rather scan items_scan, which covers every column asked.
            "SELECT uid FROM items INDEXED BY items_without_etag "
            "WHERE collection = ? AND local_etag IS NULL",
            (self._collection,),
        ).fetchall()
        return any(uid not in self._gone and uid not in self._rows for (uid,) in found)

    def by_filename(self) -> dict[str, tuple[str, str | None]]:
        """file name -> (uid, etag as the journal writes it): what a pass compares every
        file's etag against, built without parsing 50,000 etags."""
        raw = self._listing()
        rows = self._rows
        if not rows:
            return {r[0]: (uid, r[1]) for uid, r in raw.items()}
        out: dict[str, tuple[str, str | None]] = {}
        for uid, r in raw.items():
            row = rows.get(uid)
            if row is None:
                out[r[0]] = (uid, r[1])
            else:
                out[row.filename] = (uid, etag_to_text(row.local_etag))
        return out


@dataclass(frozen=True)
class CollectionRow:
    remote_id: str
    dirname: str
    name: str | None
    color: str | None
    kind: str
    detached: str | None


# SQLite's page cache, in KiB (its default is 2,000).  A first download's batch of
# 2,000 rows touches about 4 MB of pages (the bases and four indexes): with the default
# cache SQLite wrote pages out to the WAL before the commit and read them back, again
# and again.  10,000 rows took 0.32 s to put, 0.22 s with this cache; a first download
# of 10,000 events 0.1-0.2 core-seconds less in the main process (contrib/bench/README.md,
# Session 16).  It costs that pass about 7 MB of peak memory; a quiet pass reads a few
# pages and pays nothing.
CACHE_KIB = 8192

# SQLite's temp files in memory (``PRAGMA temp_store=MEMORY``).  Every upsert of
# ``put_items`` keeps a statement journal (the pages it changes, so that a failing row
# can be undone alone).  Once one statement's passes 64 KiB, SQLite moves it to a file in
# /var/tmp for the rest of the transaction, and every later row writes its pages there:
# a first download of 10,000 events made about 95,000 such writes (192 MB against 46 MB
# for the journal itself), more the bigger the transaction.  In memory the journal holds
# one statement's pages and is emptied after it; putting 10,000 rows took 0.25-0.31 s
# with the files, 0.22-0.27 s without (contrib/bench/journal_rows.py; README, Session
# 25).  Sorts and temp tables stay in memory too: a few MB at 50,000 items.
TEMP_STORE = "MEMORY"


class _CheckpointsBeside:
    """One checkpoint at a time, each on a new thread with its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.wait()  # the one before is done by now, nearly always
        thread = threading.Thread(target=self._run, name="syncd-checkpoint", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: checkpointed here, as SQLite would
            self._run()
        else:
            self.thread = thread

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def _run(self) -> None:
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None, timeout=0)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.debug("%s: a checkpoint beside the pass failed (%s)", self.path, exc)


class Journal:
    """A thin layer over sqlite3; every write happens inside ``transaction()``."""

    _beside: _CheckpointsBeside | None = None

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        try:
            self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit is durable at the next checkpoint; the
            # vdir side fsyncs its directory before we commit, so a crash can only
            # lose journal rows, which the next pass re-derives from both sides.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self.db.execute(f"PRAGMA temp_store={TEMP_STORE}")
            self.db.executescript(SCHEMA)
        except sqlite3.OperationalError as exc:
            # The disk, not the file: full, read-only, an I/O error.  Moving the journal
            # away would only cost a full re-sync, so say what to check instead.
            raise JournalError(
                f"the journal {path} cannot be opened ({exc}); check free space and "
                f"permissions on the disk holding {path.parent}"
            ) from None
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"the journal {path} cannot be opened ({exc}); move it away to start a fresh sync"
            ) from None
        version = self.get_meta("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise JournalError(
                f"the journal {path} was written by a newer syncd (schema {version}); upgrade syncd"
            )
        if version is None or int(version) < SCHEMA_VERSION:
            # Every older journal reads as it is; marked newer so that an older syncd
            # does not read the rows this one may write.
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def checkpoints_beside(self) -> Iterator[None]:
        """Many commits in a row, their WAL checkpoints on a thread beside this one.

        SQLite checkpoints in the commit that takes the WAL past 1,000 pages: it copies
        them into the database file, and the next transaction waits.  After a whole
        first download (``syncd.sync.engine``) the main process records 10,000 rows in
        five commits, alone on one core, and each waited for its checkpoint; here the
        next chunk is put while the last one is copied (a thread of its own with a
        connection of its own: SQLite does that copy without Python's lock): 10,000
        rows in 0.17-0.19 s instead of 0.19-0.20 (contrib/bench/journal_rows.py), and a
        first download's last stretch after the swap 0.30 -> 0.27 s (README, Session
        25).  Session 16 had measured no gain, when the rows were recorded while the
        workers still kept the other core busy.  A checkpoint changes no commit's
        durability (WAL mode), so one that fails is only left to the next."""
        before = self.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._beside = _CheckpointsBeside(self.path)
        try:
            yield
        finally:
            self._beside.wait()
            self._beside = None
            self.db.execute(f"PRAGMA wal_autocheckpoint={int(before)}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; a journal that cannot be written (full disk, I/O error, a lock
        held too long) is a ``JournalError`` saying what to do, never a traceback.
        Nothing is lost then: the state did not move, so the next pass repeats this one."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._write_error(exc) from None
        try:
            yield
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise self._write_error(exc) from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        if self._beside is not None:
            self._beside.start()

    def _write_error(self, exc: sqlite3.OperationalError) -> JournalError:
        text = str(exc)
        if "full" in text:
            advice = f"free some space on the disk holding {self.path.parent}"
        elif "locked" in text or "busy" in text:
            advice = "another syncd process holds it; stop it or wait"
        elif "readonly" in text or "read-only" in text:
            advice = f"make {self.path.parent} writable for this user"
        else:
            advice = "check the disk holding it"
        return JournalError(
            f"the journal {self.path} could not be written ({text}); {advice}. "
            "Nothing was lost: the next pass repeats this one"
        )

    # -- meta and account binding -------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def bind_account(self, account_key: str, *, allow_change: bool) -> None:
        """Tie the journal to one JMAP account, like an archive that remembers its source.

        A journal pointed at another account would read every item as new on one
        side and deleted on the other; that is refused unless asked for, and an
        allowed change starts from a clean base (adopting by UID).
        """
        known = self.get_meta("account")
        if known == account_key:
            return
        if known is not None and not allow_change:
            raise JournalError(
                f"the journal {self.path} belongs to JMAP account {known}, but the config now "
                f"points at {account_key}. If that is intended, run once with "
                "--allow-account-change (items are then paired again by UID)"
            )
        with self.transaction():
            if known is not None:
                for table in ("states", "collections", "items", "pending_remote", "intents"):
                    self.db.execute(f"DELETE FROM {table}")
            self.set_meta("account", account_key)

    # -- states ----------------------------------------------------------------------

    def get_state(self, type_: str) -> str | None:
        row = self.db.execute("SELECT state FROM states WHERE type = ?", (type_,)).fetchone()
        return row[0] if row else None

    def set_state(self, type_: str, state: str | None) -> None:
        if state is None:
            self.db.execute("DELETE FROM states WHERE type = ?", (type_,))
        else:
            self.db.execute(
                "INSERT INTO states (type, state) VALUES (?, ?) "
                "ON CONFLICT(type) DO UPDATE SET state = excluded.state",
                (type_, state),
            )

    # -- collections -----------------------------------------------------------------

    def collections(self) -> list[CollectionRow]:
        rows = self.db.execute(
            "SELECT remote_id, dirname, name, color, kind, detached FROM collections ORDER BY dirname"
        ).fetchall()
        return [CollectionRow(*r) for r in rows]

    def put_collection(self, row: CollectionRow) -> None:
        self.db.execute(
            "INSERT INTO collections (remote_id, dirname, name, color, kind, detached) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(remote_id) DO UPDATE SET "
            "dirname = excluded.dirname, name = excluded.name, color = excluded.color, "
            "kind = excluded.kind, detached = excluded.detached",
            (row.remote_id, row.dirname, row.name, row.color, row.kind, row.detached),
        )

    # -- items -----------------------------------------------------------------------

    def items(self, collection: str) -> ItemRows:
        """Every row of a collection, as plain tuples until a pass asks for one; a row's
        ``base`` is read from the database only when it is needed.  A pass compares
        every file's etag but works on the few items that changed, so building 50,000
        row objects (and decoding their bases) made a no-change pass O(items)."""
        return ItemRows(None, self.db, collection)

    def listing_fingerprint(self, collection: str) -> int | None:
        """The stored fingerprint of the collection's rows; None if a row changed since it
        was stored (or it never was)."""
        r = self.db.execute(
            "SELECT value FROM listing_fingerprints WHERE collection = ?", (collection,)
        ).fetchone()
        return fingerprint.from_text(r[0]) if r else None

    def store_listing_fingerprint(self, collection: str) -> int | None:
        """Compute and keep the fingerprint of the collection's rows, unless one is
        already kept.  A row without a local etag (its file was never written) has no
        directory entry to match, so such a collection gets none and is always compared
        file by file."""
        kept = self.listing_fingerprint(collection)  # None also for one of another format
        if kept is not None:
            return kept
        # In file name order, as the index has them: sorting them is then one pass.
        rows = self.db.execute(
            "SELECT filename, local_etag FROM items WHERE collection = ? ORDER BY filename",
            (collection,),
        ).fetchall()
        if any(r[1] is None for r in rows):
            return None
        value = fingerprint.fingerprint(rows)
        if value is None:  # a listing no directory's fingerprint can express
            return None
        self.db.execute(
            "INSERT OR REPLACE INTO listing_fingerprints (collection, value) VALUES (?, ?)",
            (collection, fingerprint.to_text(value)),
        )
        return value

    def remote_ids_not_trusted(self) -> set[str]:
        """Remote ids of rows without a trusted ``updated`` (syncd.sync.engine)."""
        rows = self.db.execute(
            "SELECT remote_id FROM items WHERE remote_updated IS NULL AND remote_id IS NOT NULL"
        ).fetchall()
        return {r[0] for r in rows}

    def item_by_remote_id(self, remote_id: str) -> ItemRow | None:
        r = self.db.execute(
            "SELECT collection, uid, filename, remote_id, local_etag, local_hash, remote_hash, "
            "remote_updated, base FROM items WHERE remote_id = ?",
            (remote_id,),
        ).fetchone()
        return _item(r) if r else None

    def remote_index(self) -> dict[str, tuple[str, str]]:
        """remote id -> (collection, uid), for routing /changes results."""
        rows = self.db.execute(
            "SELECT remote_id, collection, uid FROM items WHERE remote_id IS NOT NULL"
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def remote_location(self, remote_id: str) -> tuple[str, str] | None:
        """``remote_index().get(remote_id)`` for one id, without reading every row (where
        two rows share an id, the same one wins: the last inserted)."""
        r = self.db.execute(
            "SELECT collection, uid FROM items WHERE remote_id = ? ORDER BY rowid DESC LIMIT 1",
            (remote_id,),
        ).fetchone()
        return (r[0], r[1]) if r else None

    _ADD_ITEM = (
        "INSERT INTO items (collection, uid, filename, remote_id, local_etag, local_hash, "
        "remote_hash, remote_updated, base, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    _PUT_ITEM = (
        _ADD_ITEM + " ON CONFLICT(collection, uid) DO UPDATE SET filename = excluded.filename, "
        "remote_id = excluded.remote_id, local_etag = excluded.local_etag, "
        "local_hash = excluded.local_hash, remote_hash = excluded.remote_hash, "
        "remote_updated = excluded.remote_updated, base = excluded.base, "
        "synced_at = excluded.synced_at"
    )

    def put_item(self, row: ItemRow) -> None:
        self.put_items([row])

    def put_items(self, rows: Iterable[ItemRow]) -> None:
        """Many rows in one statement run (a first download puts 10,000).  The stored
        listing fingerprints of their collections go first (see SCHEMA): dropped before
        the rows change, a crash between leaves none, never a stale one."""
        self._put(self._PUT_ITEM, list(rows))

    def add_items(self, rows: Sequence[ItemRow]) -> None:
        """``put_items`` for rows the journal should not have yet (a whole first download's,
        syncd.sync.engine): a plain INSERT, which SQLite runs in three quarters of the
        upsert's time (10,000 rows: 0.16-0.20 -> 0.12-0.17 s, contrib/bench/journal_rows.py;
        README, Session 26), in the part of a first download that runs on one core.  Should
        one be there after all, the rows are put as ``put_items`` would (the INSERT stops at
        that row and leaves the ones before it in the transaction, to be put again)."""
        try:
            self._put(self._ADD_ITEM, rows)
        except sqlite3.IntegrityError:
            self._put(self._PUT_ITEM, rows)

    def _put(self, statement: str, rows: Sequence[ItemRow]) -> None:
        self.db.executemany(
            "DELETE FROM listing_fingerprints WHERE collection = ?",
            ((collection,) for collection in {row.collection for row in rows}),
        )
        now = time.time()
        self.db.executemany(
            statement,
            (
                (
                    row.collection,
                    row.uid,
                    row.filename,
                    row.remote_id,
                    etag_to_text(row.local_etag),
                    row.local_hash,
                    row.remote_hash,
                    row.remote_updated,
                    _BASE.text(row),
                    now,
                )
                for row in rows
            ),
        )

    def delete_item(self, collection: str, uid: str) -> None:
        self.delete_items(collection, [uid])

    def delete_items(self, collection: str, uids: Iterable[str]) -> None:
        self.db.executemany(
            "DELETE FROM items WHERE collection = ? AND uid = ?", ((collection, u) for u in uids)
        )

    def is_empty(self) -> bool:
        """No item recorded at all (a first pass)."""
        return self.db.execute("SELECT 1 FROM items LIMIT 1").fetchone() is None

    def count_items(self, collection: str | None = None) -> int:
        if collection is None:
            return self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        return self.db.execute(
            "SELECT COUNT(*) FROM items WHERE collection = ?", (collection,)
        ).fetchone()[0]

    # -- remote ids to fetch again ---------------------------------------------------

    def pending_remote(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        rows = self.db.execute(
            "SELECT remote_id FROM pending_remote WHERE next_try <= ?", (now,)
        ).fetchall()
        return [r[0] for r in rows]

    def add_pending_remote(self, ids: Iterable[str], reason: str, *, backoff: bool = True) -> None:
        """Fetch these again next pass; failures back off, guard-held ids do not."""
        now = time.time()
        for rid in ids:
            row = self.db.execute(
                "SELECT attempts FROM pending_remote WHERE remote_id = ?", (rid,)
            ).fetchone()
            attempts = (row[0] if row else 0) + 1
            delay = 0.0 if attempts <= 1 or not backoff else min(3600.0, 30.0 * 2 ** (attempts - 2))
            self.db.execute(
                "INSERT INTO pending_remote (remote_id, reason, attempts, next_try) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(remote_id) DO UPDATE SET reason = excluded.reason, "
                "attempts = excluded.attempts, next_try = excluded.next_try",
                (rid, reason, attempts, now + delay),
            )

    def clear_pending_remote(self, ids: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM pending_remote WHERE remote_id = ?", [(i,) for i in ids])

    # -- intents -----------------------------------------------------------------------

    def add_intent(
        self, kind: str, collection: str, uid: str, detail: dict[str, Any] | None = None
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO intents (kind, collection, uid, detail, created) VALUES (?, ?, ?, ?, ?)",
            (kind, collection, uid, json.dumps(detail or {}), time.time()),
        )
        return int(cur.lastrowid or 0)

    def clear_intent(self, intent_id: int) -> None:
        self.db.execute("DELETE FROM intents WHERE id = ?", (intent_id,))

    def clear_intents(self) -> None:
        self.db.execute("DELETE FROM intents")

    def intents(self) -> list[tuple[int, str, str, str, dict[str, Any]]]:
        rows = self.db.execute(
            "SELECT id, kind, collection, uid, detail FROM intents ORDER BY id"
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}")) for r in rows]

    # -- errors and conflicts ------------------------------------------------------------

    def record_error(self, collection: str, key: str, side: str, reason: str) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO item_errors (collection, key, side, reason, attempts, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT(collection, key, side) DO UPDATE SET "
            "reason = excluded.reason, attempts = attempts + 1, last_seen = excluded.last_seen",
            (collection, key, side, reason, now, now),
        )

    def clear_error(self, collection: str, key: str, side: str) -> None:
        self.db.execute(
            "DELETE FROM item_errors WHERE collection = ? AND key = ? AND side = ?",
            (collection, key, side),
        )

    def clear_errors(self, collection: str, keys: Iterable[str]) -> None:
        """Both sides' errors of these items (they synced); nothing to do, and no statement
        per item, in the usual case of a collection without any."""
        if (
            self.db.execute(
                "SELECT 1 FROM item_errors WHERE collection = ? LIMIT 1", (collection,)
            ).fetchone()
            is None
        ):
            return
        self.db.executemany(
            "DELETE FROM item_errors WHERE collection = ? AND key = ?",
            ((collection, key) for key in keys),
        )

    def errors(self) -> list[tuple[str, str, str, str, int]]:
        return self.db.execute(
            "SELECT collection, key, side, reason, attempts FROM item_errors ORDER BY collection, key"
        ).fetchall()

    def record_conflict(
        self,
        collection: str,
        uid: str,
        rule: str,
        local: str | None,
        remote: str | None,
        result: str,
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO conflicts (collection, uid, rule, local, remote, result, decided_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (collection, uid, rule, local, remote, result, time.time()),
        )
        return int(cur.lastrowid or 0)

    def conflicts(self, keep_days: float = 30.0) -> list[tuple[int, str, str, str, str, float]]:
        self.db.execute(
            "DELETE FROM conflicts WHERE decided_at < ?", (time.time() - keep_days * 86400,)
        )
        return self.db.execute(
            "SELECT id, collection, uid, rule, result, decided_at FROM conflicts ORDER BY id"
        ).fetchall()

    def conflict(self, conflict_id: int) -> tuple[Any, ...] | None:
        return self.db.execute(
            "SELECT id, collection, uid, rule, local, remote, result, decided_at FROM conflicts "
            "WHERE id = ?",
            (conflict_id,),
        ).fetchone()

    # -- passes --------------------------------------------------------------------------

    def start_pass(self) -> int:
        cur = self.db.execute("INSERT INTO passes (started) VALUES (?)", (time.time(),))
        self.db.execute("DELETE FROM passes WHERE id < ?", ((cur.lastrowid or 0) - 100,))
        return int(cur.lastrowid or 0)

    def finish_pass(self, pass_id: int, ok: bool, summary: str) -> None:
        self.db.execute(
            "UPDATE passes SET finished = ?, ok = ?, summary = ? WHERE id = ?",
            (time.time(), int(ok), summary, pass_id),
        )

    def last_pass(self) -> tuple[float, float | None, int | None, str | None] | None:
        return self.db.execute(
            "SELECT started, finished, ok, summary FROM passes ORDER BY id DESC LIMIT 1"
        ).fetchone()


def _item(r: tuple[Any, ...]) -> ItemRow:
    return ItemRow(
        collection=r[0],
        uid=r[1],
        filename=r[2],
        remote_id=r[3],
        local_etag=etag_from_text(r[4]),
        local_hash=r[5],
        remote_hash=r[6],
        remote_updated=r[7],
        base=r[8] or None,  # decoded when first read
    )
