"""PURE: one number for "which files, with which etags", so a pass can tell that a
directory is exactly what the journal recorded without comparing 50,000 entries.

A listing's fingerprint is a 128-bit hash of its (file name, etag) entries, sorted by
file name.  The journal keeps the fingerprint of its rows; the vdir computes that of its
files.  Equal fingerprints mean equal listings (the chance that two different listings
collide is 2**-128), and sorting makes it independent of the order in which the
directory lists its entries, which changes whenever a file is added.

Why a fingerprint and not the directory's mtime: an editor that writes in place
(nano, a script with ``open(path, "w")``) moves the file's mtime but not the
directory's, so every file must still be stat'ed.  What the fingerprint saves is
everything around the stat: reading the journal's listing, building two 50,000-entry
dicts and comparing them.  And because it is one number, it can be computed in another
process while this one starts up (syncd.vdir.prefetch).

What is hashed is laid out for the side that computes it every pass, the directory's:
the count, then the mtimes, sizes and inodes as three arrays of machine integers, then
the names joined by newlines.  Formatting an "mtime:size:inode" text per file and sorting
those lines cost 70 ms of the child's 250 at 50,000 files; the arrays cost 15.  The
layout is unambiguous: the count fixes where the arrays end, and a name holds neither
NUL nor (see ``encode``) a newline.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from hashlib import blake2b

_COUNT_BYTES = 8


def encode(
    names: Sequence[str], mtimes: Sequence[int], sizes: Sequence[int], inodes: Sequence[int]
) -> bytes | None:
    """The bytes a fingerprint hashes, for entries given in file name order; None when
    they cannot be laid out (a name with a newline, a number outside 64 bits): such a
    directory is compared file by file instead."""
    blob = "\n".join(names).encode("utf-8", "surrogateescape")
    if names and blob.count(b"\n") != len(names) - 1:
        return None
    try:
        numbers = (_machine(mtimes, "q"), _machine(sizes, "q"), _machine(inodes, "Q"))
    except OverflowError:
        return None
    return b"".join((len(names).to_bytes(_COUNT_BYTES, "little"), *numbers, blob))


def _machine(numbers: Sequence[int], typecode: str) -> bytes:
    if isinstance(numbers, array) and numbers.typecode == typecode:
        return numbers.tobytes()  # as syncd.vdir.look gathers them: no copy per number
    return array(typecode, numbers).tobytes()


def of_data(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=16).digest(), "big")


def entries(data: bytes) -> dict[str, str]:
    """file name -> etag text (the journal's ``mtime:size:inode``), back from ``encode``."""
    n = int.from_bytes(data[:_COUNT_BYTES], "little")
    if not n:
        return {}
    width = 8 * n
    mtimes, sizes, inodes = array("q"), array("q"), array("Q")
    start = _COUNT_BYTES
    for numbers in (mtimes, sizes, inodes):
        numbers.frombytes(data[start : start + width])
        start += width
    names = data[start:].decode("utf-8", "surrogateescape").split("\n")
    return {
        name: f"{m}:{s}:{i}" for name, m, s, i in zip(names, mtimes, sizes, inodes, strict=True)
    }


def fingerprint(pairs: Iterable[tuple[str, str]]) -> int | None:
    """The fingerprint of (file name, etag text) pairs, in any order; None for a listing
    that ``encode`` cannot lay out (or an etag text not of the journal's form)."""
    ordered = sorted(pairs)
    texts = [text for _, text in ordered]
    # All the numbers in one split and one map: a parse per etag was 40 ms at 50,000.
    if not all(text.count(":") == 2 for text in texts):
        return None  # not the journal's form
    try:
        numbers = list(map(int, ":".join(texts).split(":"))) if texts else []
    except (ValueError, TypeError):
        return None
    names = [name for name, _ in ordered]
    data = encode(names, numbers[0::3], numbers[1::3], numbers[2::3])
    return None if data is None else of_data(data)


class Look:
    """A directory's items as one stat of each found them (syncd.vdir.look).

    ``data`` (what the fingerprint hashes) may come later than the fingerprint: the
    child that looks for ``syncd sync`` sends every fingerprint first and the listings
    after, and a pass whose fingerprints match never reads the listings (3.6 MB at
    50,000 files).  ``fetch`` gives them, or None if they cannot be had any more."""

    __slots__ = ("fingerprint", "_data", "_fetch")

    def __init__(
        self,
        fingerprint: int,
        data: bytes | None = None,
        fetch: Callable[[], bytes | None] | None = None,
    ) -> None:
        self.fingerprint = fingerprint
        self._data = data
        self._fetch = fetch

    @property
    def data(self) -> bytes | None:
        if self._data is None and self._fetch is not None:
            self._data, self._fetch = self._fetch(), None
        return self._data

    def listing(self) -> dict[str, str] | None:
        """file name -> etag text (the journal's form), as ``list()`` would give them;
        None if the listing cannot be had (the pass then lists the directory itself)."""
        data = self.data
        return None if data is None else entries(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Look):
            return NotImplemented
        return self.fingerprint == other.fingerprint and self.data == other.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Look({self.fingerprint:032x})"


# Stored with each fingerprint: a journal written by a syncd that computed them another
# way holds values no directory can match, so they read as "none kept" and are made anew.
# s1 (session 6) hashed sorted "name NUL mtime:size:inode" lines.
FORMAT = "s2"


def to_text(value: int) -> str:
    return f"{FORMAT}:{value:032x}"


def from_text(text: str) -> int | None:
    form, _, digits = text.partition(":")
    if form != FORMAT:
        return None
    try:
        return int(digits, 16)
    except ValueError:
        return None
