"""Adopting an existing vdir (vdirsyncer's, or one khal/todoman made): what the first
sync did with the files that were already there.

The engine pairs by UID on a first sync (an empty journal): the same item on both
sides with the same meaning is only recorded, its file left alone; an item on one
side only is copied to the other; an item whose two versions differ is decided by
the pair's conflict rule and recorded as a conflict.  This module takes a picture of
the files before the pass and compares it with the journal after, so the user reads
what happened to the files they already had, and which ones could not be paired.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from syncd.sync.result import PassResult

SUFFIXES = (".ics", ".vcf")


@dataclass(frozen=True)
class FileState:
    inode: int
    mtime_ns: int
    size: int


Snapshot = dict[str, dict[str, FileState]]  # directory -> file name -> state


def snapshot(root: Path) -> Snapshot:
    """The item files under a vdir root (dot files are temporaries: not items)."""
    out: Snapshot = {}
    try:
        dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return out
    for d in dirs:
        files: dict[str, FileState] = {}
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith(".") or not e.name.endswith(SUFFIXES):
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            files[e.name] = FileState(st.st_ino, st.st_mtime_ns, st.st_size)
        out[d.name] = files
    return out


def journal_is_empty(path: Path) -> bool:
    """True for a pair that never synced an item: its first pass adopts."""
    if not path.exists():
        return True
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
        finally:
            db.close()
    except sqlite3.Error:
        return False


def paired_files(journals: list[Path]) -> set[tuple[str, str]]:
    """(directory, file name) of every item the journals know after the pass."""
    out: set[tuple[str, str]] = set()
    for path in journals:
        if not path.exists():
            continue
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute(
                "SELECT c.dirname, i.filename FROM items i "
                "JOIN collections c ON i.collection = c.remote_id"
            ).fetchall()
        finally:
            db.close()
        out |= {(d, f) for d, f in rows}
    return out


@dataclass
class Adoption:
    files: int = 0
    unchanged: list[str] = field(default_factory=list)  # paired, not rewritten
    rewritten: list[str] = field(default_factory=list)  # paired, the server's version won
    unpaired: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    sent: int = 0  # local-only items created on the server
    fetched: int = 0  # server-only items written as new files

    def lines(self, root: Path) -> list[str]:
        if not self.files:
            return []  # nothing was there to adopt
        out = [
            f"adopted {root}: {len(self.unchanged) + len(self.rewritten)} of {self.files} "
            "existing file(s) paired with the server by UID"
        ]
        out.append(f"  {len(self.unchanged)} left exactly as they were")
        if self.rewritten:
            out.append(
                f"  {len(self.rewritten)} differed from the server and were settled by the "
                "pair's conflict rule (see `syncd conflicts`): " + ", ".join(self.rewritten[:5])
            )
        out.append(
            f"  {self.sent} local-only item(s) sent to the server, "
            f"{self.fetched} server-only item(s) written as new files"
        )
        for path, reason in self.unpaired:
            out.append(f"  not paired: {path}: {reason}")
        return out


def compare(root: Path, before: Snapshot, journals: list[Path], result: PassResult) -> Adoption:
    after = snapshot(root)
    paired = paired_files(journals)
    problems = result.errors + [e for c in result.collections for e in c.errors]
    adoption = Adoption(files=sum(len(f) for f in before.values()))
    for dirname, files in before.items():
        for name, state in sorted(files.items()):
            rel = f"{dirname}/{name}"
            if (dirname, name) not in paired:
                path = str(root / dirname / name)
                token = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])")
                reason = next((p for p in problems if path in p), None)
                if reason is None:  # named in another file's message (a UID in both)
                    reason = next((p for p in problems if token.search(p)), None)
                if reason is None:
                    reason = (
                        "not matched to any server item (its directory is not synced?)"
                        if dirname not in {d for d, _ in paired}
                        else "no reason recorded; run `syncd sync -v`"
                    )
                elif reason.startswith(f"{path}: "):
                    reason = reason[len(path) + 2 :]
                else:
                    reason = reason.replace(f"{root / dirname}/", "")
                adoption.unpaired.append((rel, reason))
            elif after.get(dirname, {}).get(name) == state:
                adoption.unchanged.append(rel)
            else:
                adoption.rewritten.append(rel)
    new_files = {(d, f) for d, fs in after.items() for f in fs} - {
        (d, f) for d, fs in before.items() for f in fs
    }
    adoption.fetched = len(new_files & paired)
    adoption.sent = sum(c.uploaded for c in result.collections)
    return adoption
