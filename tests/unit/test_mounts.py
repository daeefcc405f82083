"""Which filesystem a vdir is on, and whether inotify sees every change there
(syncd.vdir.mounts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.vdir import mounts
from syncd.vdir.mounts import (
    Mount,
    filesystem_of,
    is_remote,
    mount_of,
    parse_mountinfo,
    remote_filesystem,
)

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 27 0:45 / /home/ann/cal rw,nosuid,nodev,relatime shared:20 - fuse.sshfs ann@host:cal rw,user_id=1000
41 27 0:46 / /mnt/nas rw,relatime shared:21 master:3 - nfs4 nas:/export rw,vers=4.2
42 27 0:47 / /mnt/nas\\040share rw,relatime - cifs //nas/share rw
43 27 0:48 /@home /home rw,relatime - btrfs /dev/vda2 rw,subvol=/@home
44 27 0:49 / /mnt rw,relatime - tmpfs tmpfs rw
45 27 0:50 / /mnt rw,relatime - nfs srv:/x rw
broken line
"""


def test_mountinfo_is_read_with_its_escapes_and_optional_fields():
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 8  # the broken line skipped
    assert mounts[1] == Mount((254, 1), "/", "ext4")
    assert mounts[2] == Mount((0, 45), "/home/ann/cal", "fuse.sshfs")
    assert mounts[3] == Mount((0, 46), "/mnt/nas", "nfs4")  # two optional fields
    assert mounts[4].point == "/mnt/nas share"  # \040 is a space


@pytest.mark.parametrize(
    ("path", "device", "expected"),
    [
        ("/home/ann/cal/work", (0, 45), "fuse.sshfs"),
        ("/home/ann/cal", None, "fuse.sshfs"),  # the mount point itself
        ("/home/ann/calendars", None, "btrfs"),  # not under /home/ann/cal
        ("/home/ann/other", (0, 99), "btrfs"),  # a subvolume's own device: by the path
        ("/mnt/nas share/x", None, "cifs"),
        ("/mnt/nas/x", (0, 46), "nfs4"),
        ("/mnt/x", None, "nfs"),  # the later of two mounts on one point hides the first
        ("/srv/x", (254, 1), "ext4"),
        ("/srv/x", None, "ext4"),
    ],
)
def test_the_mount_a_path_is_on(path, device, expected):
    mount = mount_of(parse_mountinfo(MOUNTINFO), path, device)
    assert mount is not None and mount.fstype == expected


@pytest.mark.parametrize(
    ("fstype", "remote"),
    [
        ("nfs", True),
        ("nfs4", True),
        ("cifs", True),
        ("smb3", True),
        ("fuse.sshfs", True),
        ("fuse.rclone", True),
        ("fuseblk", True),
        ("9p", True),
        ("virtiofs", True),
        ("vboxsf", True),
        ("ext4", False),
        ("xfs", False),
        ("btrfs", False),
        ("tmpfs", False),
        ("overlay", False),
        ("zfs", False),
    ],
)
def test_which_filesystems_others_change_unseen(fstype, remote):
    assert is_remote(fstype) is remote


def test_the_tests_own_directory_is_on_a_filesystem_this_kernel_sees(tmp_path: Path):
    fstype = filesystem_of(tmp_path)
    assert fstype is not None and not is_remote(fstype), fstype
    assert filesystem_of(tmp_path / "gone") is None


def test_a_collection_on_a_network_filesystem_under_a_local_root(tmp_path, monkeypatch):
    """A collection directory that is a symlink to (or a mount of) NFS makes the vdir one
    whose changes inotify may not see; a local one does not."""
    root = tmp_path / "vdir"
    (root / "home").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "work").symlink_to(tmp_path / "elsewhere")
    assert remote_filesystem(root) is None
    real = mounts._read_mounts()
    assert real is not None
    st = os.stat(tmp_path / "elsewhere")  # an NFS mount's files carry its device number
    nas = Mount((os.major(st.st_dev), os.minor(st.st_dev)), str(tmp_path / "elsewhere"), "nfs4")
    monkeypatch.setattr(mounts, "_read_mounts", lambda: [*real, nas])
    assert remote_filesystem(root) == "nfs4"  # through the symlink
    assert remote_filesystem(root / "home") is None
