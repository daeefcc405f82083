"""Where the benchmark keeps its vdirs: a fresh journaled ext4, loop-mounted.

Why not simply a directory in /tmp: this machine's root filesystem is ext4 *without a
journal* (``/proc/fs/jbd2`` lists nothing for it).  On such a filesystem the kernel
will not reuse an inode deleted in the last 60 seconds (360 while its inode table
block is dirty): every file creation walks past each recently deleted inode of its
block group (``recently_deleted`` in ``fs/ext4/ialloc.c``, checked only when there is
no journal).  Creating 2,000 files here cost 25 us each with nothing deleted, 550-740 us
each 15-35 s after 10,000 files were deleted elsewhere on the disk
(``contrib/bench/README.md``, Session 13).  Whichever side of the benchmark ran within
minutes of a deletion (an earlier run's clean-up, another program's) paid up to 7 s of
kernel time for 10,000 new files, and the figures measured that rather than the
program.  A user's home directory is on a journaled filesystem, where
the check is not made: a fresh journaled ext4 (the ``mkfs.ext4`` defaults, mounted
with the defaults, ``data=ordered``, and ``noinit_itable``: no kernel thread zeroing
inode tables in the background while the passes run) is what both sides' vdirs, state
and Radicale's storage get.  ``--scratch tmp`` keeps the old behaviour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

IMAGE_BYTES = 24 << 30  # sparse: only what is written takes space
BYTES_PER_INODE = 8192  # 3 million inodes: several 50,000-file vdirs per side


def loop_possible() -> str | None:
    """None if a loop-mounted ext4 can be made here; otherwise why not."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if os.geteuid() != 0:
        return "not root"
    for tool in ("mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not Path("/dev/loop-control").exists():
        return "no /dev/loop-control"
    return None


@contextlib.contextmanager
def scratch(kind: str, keep: bool = False) -> Iterator[tuple[Path, str]]:
    """A work directory, and a line saying what it is.  ``kind``: ``loop`` (a fresh
    journaled ext4; an error if it cannot be made), ``tmp`` (a directory in the
    system's temp directory), ``auto`` (loop where possible, else tmp).  ``keep``:
    left as it is at the end (still mounted), for reading the logs."""
    why_not = loop_possible() if kind != "tmp" else "asked for tmp"
    holder = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    image, work = holder / "fs.img", holder / "mnt"
    mounted = False
    try:
        if not why_not:
            why_not = _make_and_mount(image, work)
            mounted = why_not is None
        if not mounted:
            if kind == "loop":
                raise SystemExit(f"[bench] --scratch loop: {why_not}")
            image.unlink(missing_ok=True)
            if work.is_dir():
                work.rmdir()
            work = holder
            yield work, f"a directory in {tempfile.gettempdir()} ({why_not})"
        else:
            yield work, "a fresh journaled ext4 (loop-mounted, mkfs.ext4 defaults, noinit_itable)"
    finally:
        if keep:
            print(f"[bench] kept: {work}" + (f" (mounted from {image})" if mounted else ""))
        else:
            if mounted:
                subprocess.run(["umount", str(work)], check=False)
            shutil.rmtree(holder, ignore_errors=True)


def _make_and_mount(image: Path, work: Path) -> str | None:
    """None once ``work`` is a fresh journaled ext4 held in ``image``; else why not."""
    work.mkdir()
    with open(image, "wb") as f:
        f.truncate(IMAGE_BYTES)
    made = subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-i", str(BYTES_PER_INODE), str(image)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        return f"mkfs.ext4 failed: {made.stderr.strip() or made.returncode}"
    # noinit_itable: no background thread zeroing inode tables while a pass runs (mkfs
    # leaves them to it; a new filesystem reads them as empty either way).
    mount = subprocess.run(
        ["mount", "-o", "loop,noinit_itable", str(image), str(work)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        return f"mount failed: {mount.stderr.strip() or mount.returncode}"
    return None
