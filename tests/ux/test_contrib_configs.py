"""contrib/khal/config and contrib/todoman/config.py read the vdir syncd writes."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.ux.conftest import event

REPO = Path(__file__).resolve().parents[2]


def test_khal_discovers_every_calendar_with_its_name_and_colour(pair, tmp_path):
    settings = pytest.importorskip("khal.settings")
    pair.server.calendars["W1"] = {"id": "W1", "name": "Work", "color": "#ff0000", "myRights": {}}
    pair.server.calendars["Default"]["color"] = "#00aa00"
    pair.server.put_event(event("a"))
    pair.server.put_event(event("b"), calendar="W1")
    assert pair.sync().ok

    text = (REPO / "contrib" / "khal" / "config").read_text()
    assert "~/.local/share/calendars/home/*" in text  # the README's example pair root
    text = text.replace("~/.local/share/calendars/home/*", f"{pair.root}/*")
    text += f"\n[sqlite]\n  path = {tmp_path / 'khal.db'}\n"
    (tmp_path / "khal.conf").write_text(text)
    conf = settings.get_config(str(tmp_path / "khal.conf"))
    calendars = {name: (c["path"], c["color"]) for name, c in conf["calendars"].items()}
    assert calendars == {
        "personal": (str(pair.root / "personal"), "#00aa00"),
        "Work": (str(pair.root / "Work"), "#ff0000"),
    }

    # a calendar renamed and recoloured on the server follows without a config edit
    pair.server.calendars["W1"].update(name="Office", color="#0000ff")
    pair.server.tick()
    assert pair.sync().ok
    conf = settings.get_config(str(tmp_path / "khal.conf"))
    assert conf["calendars"]["Office"]["color"] == "#0000ff"


def test_todoman_config_is_python_with_a_glob_over_the_same_root():
    values = runpy.run_path(str(REPO / "contrib" / "todoman" / "config.py"))
    assert values["path"] == "~/.local/share/calendars/home/*"
