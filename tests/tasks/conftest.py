"""A pair against the in-memory JMAP server with Tasks, served over real HTTP on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fakejmap import FakeJmapServer
from tests.support.httppair import VTODO, TaskHarness, served_pair


def vtodo(uid: str, title: str = "Task", extra: str = "") -> str:
    return VTODO.format(uid=uid, title=title, extra=extra)


def task(uid: str, title: str = "Task", **extra) -> dict:
    return {"@type": "Task", "uid": uid, "title": title, **extra}


@pytest.fixture
def tasks_pair(tmp_path: Path):
    with served_pair(tmp_path, FakeJmapServer(tasks_enabled=True)) as h:
        yield h


@pytest.fixture
def no_tasks_pair(tmp_path: Path):
    """A server like Cyrus 3.12: calendars, no urn:ietf:params:jmap:tasks."""
    with served_pair(tmp_path, FakeJmapServer()) as h:
        yield h


@dataclass
class Todoman:
    """The real ``todo`` command from PyPI, on the pair's vdir."""

    config: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "todoman", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"todo {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc.stdout


@pytest.fixture
def todo(tasks_pair: TaskHarness) -> Todoman:
    pytest.importorskip("todoman")
    config = tasks_pair.tmp / "todoman.py"
    example = Path(__file__).resolve().parents[2] / "contrib" / "todoman" / "config.py"
    text = example.read_text()
    # The example's settings, with the test's paths.
    text = text.replace("~/.local/share/calendars/home/*", f"{tasks_pair.root}/*")
    text += f'\ncache_path = "{tasks_pair.tmp / "todoman-cache.sqlite3"}"\n'
    config.write_text(text)
    env = {**os.environ, "TZ": "UTC", "HOME": str(tasks_pair.tmp)}
    env.pop("NO_COLOR", None)
    return Todoman(config, env)
