"""The bash completion offers what the command line accepts, and the config's names."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from syncd.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
BASH = REPO / "contrib" / "completion" / "syncd.bash"
ZSH = REPO / "contrib" / "completion" / "_syncd"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")


def complete(line: str, config: Path | None = None, home: Path | None = None) -> list[str]:
    """What bash offers for the last word of ``line`` (a trailing space: a new word)."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    script = (
        f"source {BASH}\n"
        "COMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_syncd\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home or "/nonexistent")}
    if config is not None:
        env["XDG_CONFIG_HOME"] = str(config)
    done = subprocess.run(
        ["bash", "--norc", "-c", script], capture_output=True, text=True, env=env, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return sorted(x for x in done.stdout.splitlines() if x)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_commands_match_the_parser():
    assert complete("syncd ") == sorted(subcommands())
    assert complete("syncd st") == ["status"]


def test_options_match_the_parser():
    for name, sub in subcommands().items():
        wanted = {o for a in sub._actions for o in a.option_strings}
        offered = set(complete(f"syncd {name} -"))
        assert wanted <= offered, (name, wanted - offered)


def test_pair_and_account_names_from_the_config(tmp_path):
    (tmp_path / "syncd").mkdir()
    (tmp_path / "syncd" / "config.yaml").write_text(
        "accounts:\n"
        "  home:\n"
        "    url: https://x\n"
        "  work:\n"
        "    url: https://y\n"
        "pairs:\n"
        "  cal:\n"
        "    account: home\n"
        "    local: ~/c\n"
        "  # a comment\n"
        "  office:\n"
        "    account: work\n"
        "state_dir: /tmp/s\n"
    )
    assert complete("syncd sync ", config=tmp_path) == ["cal", "office"]
    assert complete("syncd -v sync o", config=tmp_path) == ["office"]
    assert complete("syncd discover ", config=tmp_path)[-2:] == ["home", "work"]
    other = tmp_path / "other.yaml"
    other.write_text("pairs:\n  only:\n    account: a\n")
    assert complete(f"syncd -c {other} sync ", config=tmp_path) == ["only"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
def test_zsh_completion_parses():
    done = subprocess.run(["zsh", "-n", str(ZSH)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'PS1="> "; fpath=(FN $fpath); autoload -Uz compinit; compinit -u -D; setopt nobeep; echo READY'
zpty -r z line '*READY*'
zpty -r z line '*READY*'
zpty -w -n z $'LINE\t'
sleep 2
out=""
while zpty -r -t z chunk; do out+=$chunk; done
print -r -- "$out"
zpty -d z
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
def test_zsh_offers_commands_and_pair_names(tmp_path):
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "_syncd").write_text(ZSH.read_text())
    (tmp_path / "syncd").mkdir()
    (tmp_path / "syncd" / "config.yaml").write_text(
        "accounts:\n  home:\n    url: https://x\npairs:\n  cal:\n    account: home\n"
        "  office:\n    account: home\n"
    )

    def offered(line: str) -> str:
        script = ZSH_DRIVER.replace("FN", str(fn)).replace("LINE", line)
        done = subprocess.run(
            ["zsh", "-f", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "XDG_CONFIG_HOME": str(tmp_path),
                "TERM": "xterm",
            },
        )
        return done.stdout

    out = offered("syncd sync ")
    assert "cal" in out and "office" in out, out
    out = offered("syncd ")
    for name in ("check", "discover", "status", "conflicts"):
        assert name in out, out


def test_zsh_completion_knows_every_command():
    text = ZSH.read_text()
    for name in subcommands():
        assert f"{name}\\:" in text, name
