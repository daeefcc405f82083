"""Fixtures the daemon's tests share."""

from __future__ import annotations

import pytest

from syncd.vdir.storage import VdirCollection


@pytest.fixture
def listings(monkeypatch):
    """Counts the passes' looks at every file of a collection directory, in this process."""
    calls = {"n": 0}
    real = VdirCollection.list

    def counted(self):
        calls["n"] += 1
        return real(self)

    monkeypatch.setattr(VdirCollection, "list", counted)
    return calls
