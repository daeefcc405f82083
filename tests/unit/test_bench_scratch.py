"""The benchmark's scratch filesystem (contrib/bench/scratchfs.py): what it promises
the figures rest on -- a journaled filesystem, gone afterwards."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "contrib" / "bench"))

import scratchfs  # noqa: E402


def _mount_of(path: Path) -> tuple[str, str] | None:
    """(device, filesystem type) mounted exactly at ``path``, from /proc/self/mounts."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, where, fstype = line.split()[:3]
        if where == str(path):
            return device, fstype
    return None


def _has_journal(device: str) -> bool:
    """jbd2 keeps one entry per journaled filesystem, named after its device."""
    name = Path(device).name
    return any(entry.name.startswith(name + "-") for entry in Path("/proc/fs/jbd2").iterdir())


def test_tmp_scratch_is_a_directory_removed_afterwards() -> None:
    with scratchfs.scratch("tmp") as (work, where):
        assert work.is_dir() and "asked for tmp" in where
        (work / "f").write_text("x")
    assert not work.exists()


@pytest.mark.skipif(scratchfs.loop_possible() is not None, reason=str(scratchfs.loop_possible()))
def test_loop_scratch_is_a_fresh_journaled_ext4_unmounted_afterwards() -> None:
    with contextlib.ExitStack() as stack:
        try:
            work, where = stack.enter_context(scratchfs.scratch("loop"))
        except SystemExit as exc:  # root, but no loop mounts here (a container)
            pytest.skip(str(exc))
        mount = _mount_of(work)
        assert mount is not None, f"{work} is not a mount point"
        device, fstype = mount
        assert fstype == "ext4" and "journaled" in where
        assert _has_journal(device), f"{device} has no jbd2 journal"
        assert sorted(p.name for p in work.iterdir()) == ["lost+found"]
        os.mkdir(work / "vdir")
        (work / "vdir" / "a.ics").write_bytes(b"BEGIN:VCALENDAR\r\n")
    assert _mount_of(work) is None
    assert not work.parent.exists()  # the image went with it


def test_a_mount_that_fails_is_an_error_for_loop_and_tmp_for_auto(monkeypatch) -> None:
    monkeypatch.setattr(scratchfs, "loop_possible", lambda: None)
    monkeypatch.setattr(scratchfs, "_make_and_mount", lambda image, work: "mount failed: no")
    with pytest.raises(SystemExit, match="mount failed"), scratchfs.scratch("loop"):
        pass
    with scratchfs.scratch("auto") as (work, where):
        assert "mount failed" in where and work.is_dir()
    assert not work.exists()


def test_loop_when_impossible_is_an_error_not_a_silent_tmp(monkeypatch) -> None:
    monkeypatch.setattr(scratchfs, "loop_possible", lambda: "not root")
    with pytest.raises(SystemExit, match="not root"), scratchfs.scratch("loop"):
        pass
    with scratchfs.scratch("auto") as (work, where):
        assert "not root" in where and work.is_dir()
