"""`syncd discover` prints the calendars and a pairs: block that works as pasted."""

from __future__ import annotations

import yaml

from syncd.cli import main
from syncd.config import load_config
from tests.ux.conftest import event, write_config


def test_the_suggested_pairs_block_is_ready_to_use(http_server, tmp_path, capsys, monkeypatch):
    jmap = http_server.jmap
    jmap.calendars["W1"] = {
        "id": "W1",
        "name": "Work",
        "color": "#ff0000",
        "myRights": {"mayWriteAll": False},
    }
    jmap.put_event(event("a"))
    jmap.put_event(event("b"), calendar="W1")
    config = write_config(tmp_path, http_server.base_url)

    assert main(["-c", str(config), "discover"]) == 0
    out = capsys.readouterr().out
    assert "W1" in out and "#ff0000" in out and "read-only" in out
    assert "push: available" in out
    block = out[out.index("\npairs:\n") + 1 :]
    assert "# already configured: cal" in block
    assert '# or some of them: ["Work", "personal"]' in block

    # paste it: the config's pairs replaced by the suggestion, nothing else edited
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    text = config.read_text()
    head, tail = text.split("pairs:\n", 1)
    state = tail[tail.index("state_dir:") :]
    config.write_text(head + block + state)
    loaded = load_config(config)
    (pair,) = loaded.pairs.values()
    assert pair.name == "home-calendars" and pair.account == "home"
    assert pair.local == home / ".local/share/calendars/home"
    assert pair.collections == "all"
    assert yaml.safe_load(block)["pairs"]["home-calendars"]["collections"] == "all"

    pair.local.mkdir(parents=True)
    assert main(["-c", str(config), "sync"]) == 0
    capsys.readouterr()
    assert {p.name for p in pair.local.iterdir()} == {"personal", "Work"}
