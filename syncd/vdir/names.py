"""Safe, stable file and directory names from server-chosen strings.

A name never comes raw from the server: UIDs and calendar names may hold `/`,
`..`, NUL, 300 characters or anything else.  Plain UIDs keep their readable
name (as vdirsyncer and khal write them); anything else gets a sanitised
prefix plus a hash of the whole string, so the name is stable across runs and
distinct for distinct UIDs.
"""

from __future__ import annotations

import hashlib
import re

PLAIN_UID = re.compile(r"[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]{0,127}")
UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
RESERVED_DIRS = {"", ".", ".."}


def _digest(text: str, n: int = 20) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _prefix(text: str, limit: int = 40) -> str:
    return UNSAFE.sub("-", text).strip("-")[:limit]


def item_filename(uid: str) -> str:
    """``uid.ics`` for plain UIDs, ``prefix-<sha256[:20]>.ics`` for anything else.

    Upper-case letters are allowed: UIDs are case-sensitive and so are the file
    systems vdirs live on; two UIDs that differ only in case on a
    case-insensitive file system are reported as a clash by the writer (the
    atomic write refuses to replace a file it did not expect).
    """
    if PLAIN_UID.fullmatch(uid) and not uid.endswith("."):
        return uid + ".ics"
    prefix = _prefix(uid)
    return f"{prefix}-{_digest(uid)}.ics" if prefix else f"{_digest(uid)}.ics"


def collection_dirname(name: str, taken: set[str]) -> str:
    """A directory name for a new collection: readable, safe, unique among ``taken``."""
    base = _prefix(name, 60) or f"calendar-{_digest(name, 8)}"
    candidate, n = base, 1
    while candidate in taken or candidate in RESERVED_DIRS:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
