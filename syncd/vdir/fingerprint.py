"""PURE: one number for "which files, with which etags", so a pass can tell that a
directory is exactly what the journal recorded without comparing 50,000 entries.

A listing's fingerprint is a 128-bit hash of its (file name, etag text) entries,
sorted by file name.  The journal keeps the fingerprint of its rows; the vdir computes
that of its files.  Equal fingerprints mean equal listings (the chance that two
different listings collide is 2**-128), and sorting makes it independent of the order
in which the directory lists its entries, which changes whenever a file is added.

Why a fingerprint and not the directory's mtime: an editor that writes in place
(nano, a script with ``open(path, "w")``) moves the file's mtime but not the
directory's, so every file must still be stat'ed.  What the fingerprint saves is
everything around the stat: reading the journal's listing, building two 50,000-entry
dicts and comparing them.  And because it is one number, it can be computed in another
process while this one starts up (syncd.vdir.prefetch).  One hash of the sorted lines
rather than a sum of a hash per entry: at 50,000 files that is 0.06 s less, which is
what decides whether the other process is done before this one needs its answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b


def line(filename: str, etag_text: str) -> str:
    """One entry as it goes into the hash.  Etag text is the journal's (``mtime:size:inode``);
    a file name holds no NUL on any filesystem, and names with a newline are never given
    to ``line`` (syncd.vdir.storage sends such a directory down the full comparison)."""
    return f"{filename}\0{etag_text}\n"


def encode(lines: list[str]) -> bytes:
    """Entries made into ``line``s, in any order, as the bytes the fingerprint hashes."""
    lines.sort()
    return "".join(lines).encode("utf-8", "surrogateescape")


def of_data(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=16).digest(), "big")


def entries(data: bytes) -> dict[str, str]:
    """file name -> etag text, back from ``encode``'s bytes."""
    text = data.decode("utf-8", "surrogateescape")
    return dict(entry.split("\0", 1) for entry in text.split("\n") if entry)  # type: ignore[misc]


def fingerprint(pairs: Iterable[tuple[str, str]]) -> int:
    """The fingerprint of (file name, etag text) pairs."""
    return of_data(encode([line(filename, etag_text) for filename, etag_text in pairs]))


# Stored with each fingerprint: a journal written by a syncd that computed them another
# way holds values no directory can match, so they read as "none kept" and are made anew.
FORMAT = "s1"


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
