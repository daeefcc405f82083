"""Which filesystem a vdir lives on, and whether inotify sees every change made to it.

inotify reports what this machine's kernel does to a file.  On a network or FUSE
filesystem (NFS, SMB, sshfs, a VM's shared folder), a change made by another machine,
the host, or the FUSE daemon's other side never passes through this kernel's VFS, so no
event comes.  The daemon's watcher must not vouch for such a vdir (syncd.vdir.watch):
a pass that trusted it would take the vdir as the journal left it and miss the change
(and a `syncd sync` the daemon answers would miss it too, syncd.control).  Local
filesystems (ext4, xfs, btrfs, tmpfs, ...) keep their trust.

The filesystem is looked up in ``/proc/self/mountinfo``: by the root's device number
first, then, where a filesystem reports other device numbers than its mount's (btrfs
subvolumes), by the longest mount point that holds the path.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = "/proc/self/mountinfo"

# Filesystems whose files others change without this kernel seeing it.
REMOTE_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "9p",
        "virtiofs",
        "vboxsf",
        "vmhgfs",
        "ceph",
        "glusterfs",
        "afs",
        "coda",
        "lustre",
        "gpfs",
        "ocfs2",
        "gfs2",
        "davfs",
        "fuse",
        "fuseblk",
    }
)


@dataclass(frozen=True)
class Mount:
    device: tuple[int, int]  # major, minor
    point: str
    fstype: str  # with its subtype for FUSE: "fuse.sshfs"


def _unescape(field: str) -> str:
    """mountinfo writes a space, tab, newline and backslash in a path as octal escapes."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field) - i >= 4 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """PURE.  The mounts in a ``/proc/PID/mountinfo`` text, in its order; lines that do not
    parse are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            major, minor = fields[2].split(":")
            mounts.append(Mount((int(major), int(minor)), _unescape(fields[4]), fields[dash + 1]))
        except (ValueError, IndexError):
            continue
    return mounts


def mount_of(mounts: list[Mount], path: str, device: tuple[int, int] | None) -> Mount | None:
    """PURE.  The mount ``path`` (absolute, symlinks resolved) is on: the last mount of
    ``device`` whose point holds the path, else the last of the longest points that hold
    it (a later mount on the same point hides an earlier one)."""

    def holds(point: str) -> bool:
        return point == "/" or path == point or path.startswith(point.rstrip("/") + "/")

    candidates = [m for m in mounts if holds(m.point)]
    same_device = [m for m in candidates if m.device == device]
    pool = same_device or candidates
    if not pool:
        return None
    longest = max(len(m.point) for m in pool)
    return [m for m in pool if len(m.point) == longest][-1]


def is_remote(fstype: str) -> bool:
    """PURE.  Does another machine (or FUSE's other side) change files on ``fstype``?"""
    base = fstype.split(".", 1)[0]
    return fstype in REMOTE_TYPES or base in REMOTE_TYPES


def _read_mounts() -> list[Mount] | None:
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            return parse_mountinfo(f.read())
    except OSError:
        return None


def _type_of(mounts: list[Mount], path: Path | str) -> str | None:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    mount = mount_of(mounts, real, (os.major(st.st_dev), os.minor(st.st_dev)))
    return mount.fstype if mount else None


def filesystem_of(path: Path) -> str | None:
    """The type of the filesystem ``path`` is on (``fuse.sshfs``, ``nfs4``, ``ext4``);
    None where it cannot be told (no /proc, the path gone)."""
    mounts = _read_mounts()
    return None if mounts is None else _type_of(mounts, path)


def remote_filesystem(root: Path) -> str | None:
    """The type of a network or FUSE filesystem that ``root`` or one of its collection
    directories is on (a collection may be a symlink to, or a mount of, one); None when
    all are local or cannot be told."""
    mounts = _read_mounts()
    if mounts is None:
        return None
    paths: list[Path | str] = [root]
    with contextlib.suppress(OSError):
        paths += [e.path for e in os.scandir(root) if e.name[:1] != "." and e.is_dir()]
    for path in paths:
        fstype = _type_of(mounts, path)
        if fstype is not None and is_remote(fstype):
            return fstype
    return None
