"""The README and the migration guide stay true: their configs load, their commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.cli import build_parser
from syncd.config import load_config
from tests.ux.test_completion import subcommands

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
MIGRATING = (REPO / "contrib" / "MIGRATING-from-vdirsyncer.md").read_text()


def fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.DOTALL)


def test_exactly_two_setup_commands():
    blocks = fenced(README, r"(?:sh|bash|shell|console)")
    assert blocks == [
        "python3 -m pip install . && syncd sync\n",
        'python3 -m pip install -e ".[test]" && python3 -m pytest -q -ra\n',
    ]


def test_the_commands_table_lists_every_command():
    table = README[README.index("## Commands") :]
    for name in subcommands():
        assert f"`syncd {name}" in table, name


@pytest.mark.parametrize("doc", [README, MIGRATING], ids=["README", "MIGRATING"])
def test_every_syncd_command_line_in_the_docs_parses(doc):
    parser = build_parser()
    for line in re.findall(r"`(syncd [^`]*)`", doc):
        argv = line.split()[1:]
        argv = [a for a in argv if a not in ("...", "[PAIR", "...]")]
        argv = ["1" if a == "ID" else a for a in argv]
        if argv and argv[0] == "convert":
            continue  # its arguments are placeholders (FILE.ics)
        if "[" in line or "|" in line:
            continue  # a synopsis, not a command line
        parser.parse_args(argv)


@pytest.mark.parametrize("doc", [README, MIGRATING], ids=["README", "MIGRATING"])
def test_the_yaml_configs_in_the_docs_load(doc, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    configs = [b for b in fenced(doc, "yaml") if "accounts:" in b]
    assert configs
    for i, block in enumerate(configs):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(block)
        config = load_config(path)
        assert config.pairs and config.accounts
        for pair in config.pairs.values():
            assert str(pair.local).startswith(str(tmp_path))


def test_the_guide_maps_the_khal_path_and_the_unit():
    assert "systemctl --user disable --now vdirsyncer.timer" in MIGRATING
    assert "systemctl --user enable --now syncd" in MIGRATING
    assert (REPO / "systemd" / "syncd.service").exists()
    assert "MIGRATING-from-vdirsyncer.md" in README
