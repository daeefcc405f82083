"""The real-world corpus (contrib/corpus/fetch.py) for the converter's tests: skipped
where it was not fetched, never in CI (.ci/run fetches it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "contrib" / "corpus"))


def corpus_files_or_skip() -> list[Path]:
    from fetch import corpus_files

    try:
        files = corpus_files()
    except Exception:  # noqa: BLE001 - not fetched here
        files = []
    if not files:
        assert not os.environ.get("SYNCD_CI"), "CI fetches the corpus (.ci/run)"
        pytest.skip("corpus not fetched (python3 contrib/corpus/fetch.py)")
    return files
