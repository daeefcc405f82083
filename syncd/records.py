"""Small JSON records syncd keeps between runs to save time (the session URL autodiscovery
found, the vdir roots a configuration names): read as {} when missing or damaged, since a
lost record only costs the time it saved, and replaced whole, never half written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(path: Path, data: dict[str, Any]) -> None:
    """Replace the record atomically (a temp file renamed over it); raises OSError."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
