"""Where syncd's files live by default (XDG base directories), with nothing else imported:
``syncd sync`` needs the configuration's path before it has loaded the code that reads
the configuration (syncd.vdir.prefetch)."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(variable: str, *default: str) -> Path:
    return Path(os.environ.get(variable) or str(Path.home().joinpath(*default)))


def default_config_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "syncd" / "config.yaml"


def default_state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local", "state") / "syncd"


def default_cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "syncd"


def default_runtime_dir() -> Path:
    """Where the running daemon's control socket lives: ``$XDG_RUNTIME_DIR`` (a private
    tmpfs under systemd), else the cache directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "syncd" if runtime else default_cache_dir()
