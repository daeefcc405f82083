"""The local side: a vdir root, its collection directories and their `.ics` items.

Every write is atomic (dot-prefixed temp file in the same directory, its data
made durable -- one fsync, or one filesystem flush per batch -- then rename) and checked: a file that changed since syncd last looked is never
overwritten or deleted (``ChangedOnDisk``).  A root that is missing or not a
directory raises ``VdirUnavailable`` -- an unmounted disk must never be read as
"every file was deleted".
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import secrets
import shutil
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from syncd.errors import SyncdError
from syncd.vdir.fingerprint import Look
from syncd.vdir.look import TEMP_PREFIX, TEMP_SUFFIX
from syncd.vdir.look import look as look_directory

Etag = tuple[int, int, int]  # (mtime_ns, size, inode)

DEFAULT_MAX_ITEM_BYTES = 20 * 1024 * 1024
META_KEYS = ("displayname", "color")


class VdirUnavailable(SyncdError):
    """The vdir root cannot be read: missing, not a directory, or not readable."""


class ChangedOnDisk(SyncdError):
    """The file is not what syncd last saw: someone changed it meanwhile."""


class ItemTooLarge(SyncdError):
    """A file over the size limit (a stray attachment dump, a binary)."""


class BadName(SyncdError):
    """A file name that would leave the collection directory."""


class WriteLog:
    """What syncd itself just wrote or deleted, so the watcher can ignore its own echo.

    A path counts as our echo while it is exactly as we left it (same etag, or still
    gone); any later change by someone else makes it a real change again.
    """

    ttl = 60.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Etag | None, float]] = {}
        self._lock = threading.Lock()
        # directory -> writes recorded in it so far: whether it changed since a point
        self.writes_in: dict[str, int] = {}

    def record(self, path: Path | str, etag: Etag | None) -> None:
        now = time.monotonic()
        key = os.fspath(path)
        with self._lock:
            directory = os.path.dirname(key)
            self.writes_in[directory] = self.writes_in.get(directory, 0) + 1
            # Re-inserted at the end, so the dict stays ordered by time and expired
            # entries are always at the front: pruning is amortised O(1) per record
            # (rebuilding the dict on every record past a size made big passes quadratic).
            self._entries.pop(key, None)
            self._entries[key] = (etag, now)
            while self._entries:
                oldest = next(iter(self._entries))
                if now - self._entries[oldest][1] < self.ttl:
                    break
                del self._entries[oldest]

    def record_many(self, directory: str, writes: list[tuple[str, Etag | None]]) -> None:
        """``record`` for a batch in one directory (a first download's 10,000 renames):
        one lock, one clock reading, one count."""
        if not writes:
            return
        now = time.monotonic()
        with self._lock:
            self.writes_in[directory] = self.writes_in.get(directory, 0) + len(writes)
            entries = self._entries
            for key, etag in writes:
                entries.pop(key, None)
                entries[key] = (etag, now)
            while entries:
                oldest = next(iter(entries))
                if now - entries[oldest][1] < self.ttl:
                    break
                del entries[oldest]

    def is_echo(self, path: Path | str) -> bool:
        with self._lock:
            entry = self._entries.get(str(path))
        if entry is None or time.monotonic() - entry[1] > self.ttl:
            return False
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return entry[0] is None
        except OSError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return entry[0] is not None
        return etag_of(st) == entry[0]


own_writes = WriteLog()


def etag_of(st: os.stat_result) -> Etag:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\0" in name or name in ("..", "."):
        raise BadName(f"refusing unsafe file name {name!r}")


class VdirRoot:
    def __init__(self, path: Path):
        self.path = Path(path)

    def check(self) -> None:
        """Refuse to sync against a root that is not there (unmounted, typo, permissions)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise VdirUnavailable(
                f"the vdir root {self.path} does not exist; if it lives on a disk that is not "
                "mounted, mount it; if this is a new setup, create it with: mkdir -p "
                f"{self.path}"
            ) from None
        except OSError as exc:
            raise VdirUnavailable(
                f"the vdir root {self.path} cannot be read: {exc.strerror}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise VdirUnavailable(f"the vdir root {self.path} is not a directory")
        if not os.access(self.path, os.R_OK | os.X_OK):
            raise VdirUnavailable(f"the vdir root {self.path} is not readable by this user")

    def _inside(self, p: Path) -> bool:
        try:
            p.resolve().relative_to(self.path.resolve())
        except (ValueError, OSError):
            return False
        return True

    def collections(self) -> list[str]:
        """Collection directories: not dot-prefixed, not links leading out of the root."""
        self.check()
        out = []
        with os.scandir(self.path) as it:
            for entry in it:
                if entry.name.startswith("."):
                    if entry.name.startswith(WHOLE_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
                        _remove_tree_if_stale(Path(entry.path))  # see begin_whole
                    continue
                if entry.is_symlink() and not self._inside(Path(entry.path)):
                    continue
                if entry.is_dir():
                    out.append(entry.name)
        return sorted(out)

    def collection(self, name: str) -> VdirCollection:
        _check_name(name)
        return VdirCollection(self, name)

    def create_collection(self, name: str) -> VdirCollection:
        _check_name(name)
        own_writes.record(self.path / name, (0, 0, 0))
        (self.path / name).mkdir(mode=0o755, exist_ok=True)
        return VdirCollection(self, name)


STALE_TEMP_SECONDS = 3600


def _remove_if_stale(path: Path) -> None:
    """A temp file left by a pass that was killed: never renamed, so never anyone's data."""
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
            path.unlink()


def holds_at_least(directory: Path | str, count: int, unreadable: bool = False) -> bool:
    """Whether ``directory`` holds ``count`` item files or more (names only, no stat);
    ``unreadable``: the answer when it cannot be listed."""
    try:
        with os.scandir(directory) as entries:
            found = 0
            for entry in entries:
                if entry.name.endswith(".ics") and entry.name[0] != ".":
                    found += 1
                    if found >= count:
                        return True
    except OSError:
        return unreadable
    return False


def _remove_tree_if_stale(path: Path) -> None:
    """A new collection's directory (``begin_whole``) left by a pass that was killed
    before swapping it in: never in place, so never anyone's data."""
    with contextlib.suppress(OSError):
        st = path.lstat()
        if stat.S_ISDIR(st.st_mode) and time.time() - st.st_mtime > STALE_TEMP_SECONDS:
            shutil.rmtree(path)


# Where a new collection is written whole before it is swapped in (``begin_whole``): a
# dot directory in the root, which vdir readers skip (vdirsyncer, khal and todoman list
# collections by glob or skip dot names), with TEMP_SUFFIX for the stale sweep.
WHOLE_PREFIX = f"{TEMP_PREFIX}new-"
# Where files saved into a collection during its whole download are kept when the
# server's file has their name (``commit_whole``): not swept.
KEPT_PREFIX = f"{TEMP_PREFIX}kept-"


@dataclass(frozen=True)
class _Staged:
    tmp: str
    filename: str
    expected: Etag | None
    etag: Etag  # the temp file's; the rename keeps it


# From this many files on, one syncfs beats an fsync each.  Below it, fsyncs: syncfs also
# flushes whatever else is dirty on that filesystem (another program's big download),
# which can make writing one file take a second.
SYNCFS_MIN_FILES = 32


def _flush_to_disk(directory: Path, files: list[str]) -> None:
    """Make the data of ``files`` durable.  On Linux one syncfs(2) of the directory's
    filesystem does it for a big batch in a single journal commit; otherwise, one fsync
    per file."""
    syncfs = _syncfs() if len(files) >= SYNCFS_MIN_FILES else None
    if syncfs is not None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


RENAME_NOREPLACE = 1  # renameat2(2) flag, <linux/fs.h>
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28+, musl 1.2.4+
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def _rename_with(flag: int, src: str, dst: str) -> int | None:
    """renameat2(2) with ``flag``: 0 if done, the errno if refused, None where the
    kernel, the filesystem or the C library cannot (the caller does it another way)."""
    fn = _renameat2()
    if fn is None:
        return None
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flag) == 0:
        return 0
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return None  # not on this filesystem (e.g. some network filesystems)
    return err


def _rename_new(src: str, dst: str) -> bool | None:
    """Rename ``src`` to ``dst`` only if nothing is at ``dst``, in one atomic step: True
    if renamed, False if something is there (left as it is), None where the kernel or
    the filesystem cannot do it (the caller checks, then renames).  A check followed by
    a rename would overwrite a file made between the two."""
    err = _rename_with(RENAME_NOREPLACE, src, dst)
    if err is None or err == 0:
        return None if err is None else True
    if err == errno.EEXIST:
        return False
    raise OSError(err, os.strerror(err), src, None, dst)


RENAME_EXCHANGE = 2  # renameat2(2) flag, <linux/fs.h>


def _exchange(a: str, b: str) -> bool:
    """Swap the entries ``a`` and ``b`` in one atomic step: True if swapped, False where
    the kernel or the filesystem cannot (the caller does it another way)."""
    err = _rename_with(RENAME_EXCHANGE, a, b)
    if err is None or err == 0:
        return err == 0
    raise OSError(err, os.strerror(err), a, None, b)


def _etag_at(path: str) -> Etag | None:
    """The etag of what is at ``path`` itself (a symlink's own), None if nothing is."""
    try:
        return etag_of(os.lstat(path))
    except FileNotFoundError:
        return None


def _remove_temps(staged: list[_Staged]) -> None:
    for item in staged:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(item.tmp)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)  # all of it, but for a full disk or a signal
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def write_temp(path: str, data: bytes, fsync: bool = False) -> Etag:
    """A new file at ``path`` (``O_EXCL``: never someone else's), fsynced only if asked:
    a batch flushes its files together before they are put in place.  Its etag is the
    file's once renamed (a rename keeps inode, size and mtime).  On any error nothing is
    left at ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            _write_all(fd, data)
            if fsync:
                os.fsync(fd)
            return etag_of(os.fstat(fd))
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def _changed(target: Path | str, current: Etag | None, expected: Etag | None) -> ChangedOnDisk:
    if expected is None:
        return ChangedOnDisk(f"{target} already exists; not overwritten")
    if current is None:
        return ChangedOnDisk(f"{target} disappeared since syncd read it; not recreated")
    return ChangedOnDisk(f"{target} changed on disk since syncd read it; not overwritten")


class StagedBatch:
    """The kernel's half of committing a batch: flush, renames, one directory fsync.

    Apart from its collection so that it can run on a helper thread while the pass
    writes the next batch's temp files: in a first download the main process otherwise
    waits on the flush and makes every rename itself, on one core, after the workers are
    done (10,000 files: 0.15 s of flushing and 0.25 s of renames).  It touches nothing
    of the collection's but its path: the batch list and the deletion flag were taken
    from it by ``detach_batch``."""

    def __init__(
        self, coll: VdirCollection, staged: list[_Staged], unlinked: bool, whole: bool = False
    ) -> None:
        self.path, self._dir = coll.path, coll._dir
        self.staged, self.unlinked, self.whole = staged, unlinked, whole

    def run(self) -> dict[str, str]:
        """Returns {filename: why it was not written}; raises what the disk raises, the
        files not yet renamed removed (a full disk gets their space back).  A batch of a
        whole new collection (``begin_whole``) is only flushed: its files are already
        under their names, in the directory ``commit_whole`` swaps in."""
        staged, failed = self.staged, dict[str, str]()
        if self.whole:
            if staged:
                _flush_to_disk(self.path, [s.tmp for s in staged])
            return failed
        renamed = 0
        try:
            if staged:
                _flush_to_disk(self.path, [s.tmp for s in staged])
            # Recorded before any rename, so the watcher never takes one of ours for
            # someone else's change; an entry for a file not renamed matches nothing.
            own_writes.record_many(
                self._dir, [(f"{self._dir}/{s.filename}", s.etag) for s in staged]
            )
            for item in staged:
                target = f"{self._dir}/{item.filename}"
                done = _rename_new(item.tmp, target) if item.expected is None else None
                if done is None:  # an overwrite, or no atomic no-clobber rename here
                    done = _etag_at(target) == item.expected
                    if done:
                        os.replace(item.tmp, target)
                if not done:
                    failed[item.filename] = (
                        f"{target} changed on disk during the pass; not overwritten"
                    )
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(item.tmp)
                renamed += 1
            if staged or self.unlinked:
                _fsync_directory(self.path)
        except BaseException:
            _remove_temps(staged[renamed:])
            raise
        return failed

    def discard(self) -> None:
        """Drop the batch unrun: its temp files are removed, nothing is renamed."""
        if not self.whole:  # a whole collection's files go with its directory
            _remove_temps(self.staged)


class VdirCollection:
    def __init__(self, root: VdirRoot, name: str, max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES):
        self.root = root
        self.name = name
        self.path = root.path / name
        self._dir = str(self.path)  # file paths are joined as text: 10,000 writes, no Path each
        self.max_item_bytes = max_item_bytes
        self.skipped: list[str] = []  # files not listed, with the reason, for reports
        self._batch: list[_Staged] | None = None
        self._unlinked = False  # a delete since the last commit_batch: the directory changed
        self._temp_prefix, self._temps = secrets.token_hex(6), 0  # see _temp_name
        self._whole: str | None = None  # the directory a whole download goes to
        self._whole_staged: list[_Staged] = []  # its files, in batches flushed so far

    def list(self) -> dict[str, Etag]:
        """``*.ics`` items and their etags; dot/temp files and outward links are skipped."""
        self.skipped = []
        out: dict[str, Etag] = {}
        with os.scandir(self.path) as it:
            for entry in it:  # once per file per pass: kept lean
                name = entry.name
                if name[0] == ".":
                    if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                        _remove_if_stale(Path(entry.path))
                    continue
                if not name.endswith(".ics"):
                    continue
                try:
                    if entry.is_symlink():
                        if not self.root._inside(Path(entry.path)):
                            self.skipped.append(f"{name}: symlink pointing outside the vdir")
                            continue
                        st = os.stat(entry.path)
                    else:
                        st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self.skipped.append(f"{name}: {exc.strerror}")
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                out[name] = etag_of(st)
        return out

    def listed(self, name: str) -> tuple[Etag | None, str | None]:
        """What ``list`` gives for this one name: (its etag, None); (None, None) where
        ``list`` has no such item (absent, not a regular file, not an item name); (None,
        why) where ``list`` skips it and says why."""
        if not name or name[0] == "." or "/" in name or not name.endswith(".ics"):
            return None, None
        path = f"{self._dir}/{name}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"{name}: {exc.strerror}"
        if stat.S_ISLNK(st.st_mode):
            if not self.root._inside(Path(path)):
                return None, f"{name}: symlink pointing outside the vdir"
            try:
                st = os.stat(path)
            except OSError as exc:  # a dangling link, as list() says it
                return None, f"{name}: {exc.strerror}"
        if not stat.S_ISREG(st.st_mode):
            return None, None
        return etag_of(st), None

    def look(self) -> Look | None:
        """One stat of every item, as a fingerprint and the listing it hashes; None where
        ``list()`` has more to do than stat (syncd.vdir.look)."""
        return look_directory(self.path)

    def etag(self, filename: str) -> Etag | None:
        _check_name(filename)
        try:
            return etag_of(os.stat(self.path / filename, follow_symlinks=False))
        except FileNotFoundError:
            return None

    def read(self, filename: str) -> bytes:
        _check_name(filename)
        path = self.path / filename
        if path.is_symlink() and not self.root._inside(path):
            raise BadName(f"{path}: symlink pointing outside the vdir; not read")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > self.max_item_bytes:
                raise self._too_large(path, size)
            # What the file holds and one byte more, to see that it grew since the stat.
            # Not a read of the limit: a 20 MB buffer cut down to a 1 kB file took twice
            # as long to read and free, and each one held stays a page mapped on its own
            # (4 kB, and a mapping) for as long as its bytes are kept: a first upload
            # holds thousands (contrib/bench/README.md, Session 28).
            data = f.read(size + 1)
            if len(data) > size:  # grown since: on, to one byte past the limit
                data += f.read(self.max_item_bytes + 1 - len(data))
        if len(data) > self.max_item_bytes:
            raise self._too_large(path, len(data))
        return data

    def _too_large(self, path: Path, size: int) -> ItemTooLarge:
        return ItemTooLarge(
            f"{path}: {size} bytes is over the {self.max_item_bytes}-byte limit for one item; "
            "skipped (is it really one calendar item?)"
        )

    def write(self, filename: str, data: bytes, expected: Etag | None) -> Etag:
        """Atomically put ``data`` at ``filename`` if the file is still as ``expected``.

        ``expected=None`` means the file must not exist yet.  The temp file is
        fsynced; the directory is fsynced once per batch by ``StagedBatch.run``.  Alone, the
        file is checked here and again just before its rename; in a batch, only by
        ``commit_batch`` just before the rename, the check that counts (a check here too
        was 10,000 more ``lstat``s in a first download, on the one core that writes).
        """
        _check_name(filename)
        target = f"{self._dir}/{filename}"  # os.path.join: 4 us a call, three per file
        batch = self._batch
        if batch is None:
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                current = None
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise BadName(f"{target}: is a symlink; syncd does not write through links")
                current = etag_of(st)
            if current != expected:
                raise _changed(target, current, expected)
        if batch is not None and self._whole is not None:
            if expected is not None:
                raise ValueError(f"{target}: a whole download writes new files only")
            path = f"{self._whole}/{filename}"
            try:
                etag = write_temp(path, data)
            except FileExistsError:
                raise ChangedOnDisk(
                    f"{target}: another item of this pass has the same file name"
                ) from None
            batch.append(_Staged(path, filename, expected, etag))
            return etag
        tmp = self._temp_name()
        etag = write_temp(tmp, data, fsync=batch is None)
        if batch is not None:
            batch.append(_Staged(tmp, filename, expected, etag))
            return etag
        try:
            if expected is None:
                own_writes.record(target, etag)  # before the watcher can see it
                done = _rename_new(tmp, target)
                if done is not None:
                    if not done:
                        raise _changed(target, _etag_at(target), expected)
                    return etag
            current = _etag_at(target)
            if current != expected:
                raise _changed(target, current, expected)
            own_writes.record(target, etag)  # before the watcher can see it
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return etag

    def _temp_name(self) -> str:
        """A new temp file's path: a random part per collection object and a count (a
        random name per file cost 5 us in ``secrets``; ``O_EXCL`` refuses a clash)."""
        self._temps += 1
        return f"{self._dir}/{TEMP_PREFIX}{self._temp_prefix}{self._temps:x}{TEMP_SUFFIX}"

    def delete(self, filename: str, expected: Etag) -> None:
        _check_name(filename)
        current = self.etag(filename)
        if current is None:
            return
        if current != expected:
            raise ChangedOnDisk(
                f"{self.path / filename} changed on disk since syncd read it; not deleted"
            )
        own_writes.record(self.path / filename, None)
        os.unlink(self.path / filename)
        self._unlinked = True

    def begin_batch(self) -> None:
        """Stage the following ``write`` calls: their temp files are written now, made
        durable together by one filesystem flush in ``commit_batch``, and only then
        renamed into place -- as safe as one fsync per file (a crash leaves the old file
        or the complete new one, never a torn one), at a fraction of the cost."""
        self._batch = []

    def commit_batch(self) -> dict[str, str]:
        """Flush the staged files, rename each into place if its target is still as
        expected, fsync the directory once.  Returns {filename: why it was not written}."""
        return self.detach_batch().run()

    def detach_batch(self) -> StagedBatch:
        """The batch staged so far, to be committed by ``StagedBatch.run`` (on another
        thread if need be: a big pass writes the next batch's files meanwhile); the
        collection is out of batch mode until ``begin_batch``."""
        staged, self._batch = self._batch or [], None
        unlinked, self._unlinked = self._unlinked, False
        if self._whole is not None:
            self._whole_staged.extend(staged)
        return StagedBatch(self, staged, unlinked, whole=self._whole is not None)

    def abort_batch(self) -> None:
        """Drop what is staged (the pass failed or was cancelled): nothing is renamed."""
        staged, self._batch = self._batch or [], None
        if self._whole is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._whole)
            self._whole, self._whole_staged = None, []
            return
        _remove_temps(staged)

    def begin_whole(self) -> bool:
        """Stage a download that fills this empty collection in a directory of its own
        (a dot directory in the root), under the files' own names, to be swapped in at
        once by ``commit_whole``: no temp names and no renames, one file each, and the
        calendar appears whole to khal.  The rules of a batch hold (nothing is in place
        before its data is durable; see ``begin_batch``) and the journal records the
        rows only after the swap.  False, and nothing changed, where it cannot: the
        directory holds items, is a link, or lies on another filesystem than the root,
        or the kernel cannot swap two directories; then ``begin_batch``."""
        if _renameat2() is None:
            return False
        try:
            st, root = os.lstat(self._dir), os.stat(self.root.path)
            if not stat.S_ISDIR(st.st_mode) or st.st_dev != root.st_dev or self._holds_items():
                return False
            whole = f"{self.root.path}/{WHOLE_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
            os.mkdir(whole, 0o700)
            os.chmod(whole, stat.S_IMODE(st.st_mode))  # the directory's own, once swapped
        except OSError:
            return False
        self._whole, self._whole_staged, self._batch = whole, [], []
        return True

    def _holds_items(self) -> bool:
        return holds_at_least(self._dir, 1, unreadable=True)  # unreadable: not empty

    def commit_whole(self) -> tuple[dict[str, str], Sequence[str]]:
        """Put a whole download (``begin_whole``) in place: the last batch flushed, then
        its directory and this one swapped in one step, the root fsynced.  Whatever was
        in the directory before (its displayname and color, a file khal saved there
        during the pass) is moved into the new one; a file whose name the download took
        is kept in a directory of its own, and said.  Where the swap cannot be made, or
        an item file appeared here meanwhile, each file is renamed into place as a batch
        would (never over a file).  Returns ({filename: why it was not written}, what
        was kept where)."""
        assert self._whole is not None
        self.detach_batch().run()
        whole, staged = self._whole, self._whole_staged
        self._whole, self._whole_staged = None, []
        swapped = False
        try:
            if not self._holds_items():
                own_writes.record_many(
                    self._dir, [(f"{self._dir}/{s.filename}", s.etag) for s in staged]
                )
                own_writes.record(self._dir, (0, 0, 0))
                swapped = _exchange(whole, self._dir)
            if not swapped:
                return StagedBatch(self, staged, False).run(), []
        finally:
            if not swapped:  # emptied by the renames, or never put in place
                with contextlib.suppress(OSError):
                    shutil.rmtree(whole)
        _fsync_directory(self.root.path)
        return {}, self._move_back(whole)

    def _move_back(self, old: str) -> Sequence[str]:
        """What was in the directory swapped out (now at ``old``, a name the stale sweep
        removes) moved into the new one.  It is first given a name nothing removes, so
        that whatever happens meanwhile, a file saved there is never deleted."""
        keep = f"{self.root.path}/{KEPT_PREFIX}{self.name}-{secrets.token_hex(4)}"
        os.rename(old, keep)
        _fsync_directory(self.root.path)
        names = os.listdir(keep)
        for name in names:
            source, target = f"{keep}/{name}", f"{self._dir}/{name}"
            if _rename_new(source, target) is None and not os.path.lexists(target):
                os.rename(source, target)  # no atomic no-clobber rename here
        if names:
            _fsync_directory(self.path)
        left = sorted(os.listdir(keep))
        if not left:
            os.rmdir(keep)
            return []
        return [
            f"{self._dir}/{name} was saved while syncd downloaded this collection and has "
            f"the name of a file from the server; the local one was kept as {keep}/{name}"
            for name in left
        ]

    def read_meta(self, key: str) -> str | None:
        if key not in META_KEYS:
            raise ValueError(key)
        try:
            return (self.path / key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError):
            return None

    def write_meta(self, key: str, value: str) -> None:
        """Write a vdir metadata file, but only when it changes (no mtime moves otherwise)."""
        if key not in META_KEYS:
            raise ValueError(key)
        current = self.read_meta(key)
        if current is not None and current.strip() == value.strip():
            return
        tmp = self.path / f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
        tmp.write_text(value + "\n", encoding="utf-8")
        own_writes.record(self.path / key, etag_of(os.stat(tmp)))
        os.replace(tmp, self.path / key)
