"""The shipped systemd units pass `systemd-analyze verify` as the README installs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("SYNCD_CI") == "1":
            pytest.fail("systemd-analyze is missing; .ci/run installs the systemd package")
        pytest.skip("systemd-analyze not installed")
    return tool


@pytest.mark.parametrize(
    ("unit", "installed_as"),
    [
        ("syncd.service", "syncd.service"),
        ("syncd@.service", "syncd@work.service"),
    ],
)
def test_unit_verifies(tmp_path, unit, installed_as):
    tool = _analyze()
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "syncd").symlink_to(shutil.which("syncd") or "/bin/true")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    target = tmp_path / installed_as
    shutil.copy(UNITS / unit, target)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    done = subprocess.run(
        [tool, "verify", "--user", str(target)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_units_are_what_the_issue_asks_for():
    for unit in ("syncd.service", "syncd@.service"):
        text = (UNITS / unit).read_text()
        for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "ExecReload="):
            assert line in text, (unit, line)
