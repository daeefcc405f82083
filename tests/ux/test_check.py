"""`syncd check` over real HTTP against the in-memory server, and the ways a setup goes wrong."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.cli import main
from tests.ux.conftest import write_config

REPO = Path(__file__).resolve().parents[2]


def run_check(config: Path, capsys) -> tuple[int, list[str]]:
    code = main(["-c", str(config), "check", "--timeout", "5"])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def failures(lines: list[str]) -> list[str]:
    return [x for x in lines if x.startswith("FAIL")]


def test_a_good_setup(http_server, tmp_path, capsys):
    config = write_config(tmp_path, http_server.base_url)
    # the password comes from a command, as it should
    text = config.read_text().replace("password: secret", "password_command: [printf, secret]")
    config.write_text(text)
    code, lines = run_check(config, capsys)
    out = "\n".join(lines)
    assert code == 0, out
    assert not failures(lines)
    assert "credentials for user alice resolved from password_command (printf)" in out
    assert "calendars: offered" in out
    assert "push: offered (eventSourceUrl)" in out
    assert "tasks: not offered" in out
    assert "1 calendar(s)" in out
    assert f"{tmp_path / 'vdir'} is writable" in out
    assert "never synced" in out
    assert "secret" not in out
    assert out.splitlines()[-1].startswith("no problems")
    assert not list((tmp_path / "vdir").iterdir())  # the probe left nothing behind


def test_no_push_is_a_warning_not_a_problem(http_server, tmp_path, capsys):
    http_server.jmap.event_source = False
    config = write_config(tmp_path, http_server.base_url, extra="    poll_interval: 120\n")
    code, lines = run_check(config, capsys)
    assert code == 0
    (warn,) = [x for x in lines if x.startswith("warn")]
    assert "push: not offered; `syncd run` polls every 120 s instead" in warn


def test_wrong_password(http_server, tmp_path, capsys):
    wrong = "Wr0ng-Passw0rd-4711"
    config = write_config(tmp_path, http_server.base_url, password=wrong)
    code, lines = run_check(config, capsys)
    assert code == 1
    (fail,) = failures(lines)
    assert fail.startswith("FAIL  account home: the server at ")
    assert "refused the credentials (HTTP 401)" in fail
    assert "-> check username and password" in fail
    assert wrong not in "\n".join(lines)
    assert lines[-1] == "1 problem(s), 0 warning(s)"


def test_password_command_that_fails(http_server, tmp_path, capsys):
    config = write_config(tmp_path, http_server.base_url)
    config.write_text(
        config.read_text().replace("password: secret", "password_command: [sh, -c, 'exit 3']")
    )
    code, lines = run_check(config, capsys)
    assert code == 1
    (fail,) = failures(lines)
    assert "password_command 'sh' failed with exit status 3" in fail
    assert "-> run it yourself to see why: sh -c exit 3" in fail


def test_unreachable_host(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(tmp_path, f"http://127.0.0.1:{port}")
    code, lines = run_check(config, capsys)
    assert code == 1
    (fail,) = failures(lines)
    assert f"could not connect to http://127.0.0.1:{port}/.well-known/jmap" in fail
    assert "server is reachable from here" in fail


def test_not_a_jmap_server(http_server, tmp_path, capsys):
    config = write_config(tmp_path, http_server.base_url + "/nothing-here")
    code, lines = run_check(config, capsys)
    # /nothing-here answers 404 and the well-known fallback works: that is fine
    assert code == 0, lines


def test_unknown_calendar_in_collections(http_server, tmp_path, capsys):
    config = write_config(
        tmp_path, http_server.base_url, extra="    collections: [personal, Wrok]\n"
    )
    code, lines = run_check(config, capsys)
    assert code == 1
    (fail,) = failures(lines)
    assert "pair cal: collections names 'Wrok'" in fail and "-> use a name or id" in fail


def test_missing_vdir_root(http_server, tmp_path, capsys):
    config = write_config(tmp_path, http_server.base_url)
    (tmp_path / "vdir").rmdir()
    code, lines = run_check(config, capsys)
    assert code == 1
    (fail,) = failures(lines)
    assert f"-> create it: mkdir -p {tmp_path / 'vdir'}" in fail
    assert not (tmp_path / "vdir").exists()  # check changes nothing


@pytest.fixture
def unwritable(tmp_path):
    """A directory this process cannot write, even as root (immutable attribute)."""
    path = tmp_path / "vdir"
    path.mkdir()
    (path / "work").mkdir()
    target = path / "work"
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(target)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i not possible here: {done.stderr.decode().strip()}")
        yield target
        subprocess.run(["chattr", "-i", str(target)], check=True)
    else:
        target.chmod(0o500)
        yield target
        target.chmod(0o700)


def test_unwritable_collection_directory(http_server, tmp_path, capsys, unwritable):
    config = write_config(tmp_path, http_server.base_url)
    code, lines = run_check(config, capsys)
    assert code == 1
    (fail,) = failures(lines)
    assert f"cannot write in {unwritable}" in fail
    assert "-> make it writable for this user" in fail


def test_bad_config(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("accounts:\n  home:\n    url: https://x.example\n    pasword: x\npairs: {}\n")
    code, lines = run_check(config, capsys)
    assert code == 2
    (fail,) = failures(lines)
    assert "accounts.home.pasword: unknown key; did you mean 'password'?" in fail
    assert "-> fix the file" in fail

    code, lines = run_check(tmp_path / "absent.yaml", capsys)
    assert code == 2
    assert "no config file there" in failures(lines)[0]


def test_plain_password_readable_by_others(http_server, tmp_path, capsys):
    config = write_config(tmp_path, http_server.base_url)
    config.chmod(0o644)
    code, lines = run_check(config, capsys)
    assert code == 0
    assert any(x.startswith("warn  config: holds a plain password") for x in lines)
    assert any(f"chmod 600 {config}" in x for x in lines)


def test_check_as_a_command_at_debug_level_prints_no_secret(http_server, tmp_path):
    config = write_config(tmp_path, http_server.base_url, password="S3cret-Value-99")
    http_server.jmap.password = "S3cret-Value-99"
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "-c", str(config), "-vvv", "check"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "S3cret-Value-99" not in done.stdout + done.stderr
    assert "ok    account home: connected" in done.stdout


def test_vdirsyncer_still_syncing_the_same_directory(http_server, tmp_path, capsys, monkeypatch):
    config = write_config(tmp_path, http_server.base_url)
    xdg = tmp_path / "xdg"
    (xdg / "vdirsyncer").mkdir(parents=True)
    (xdg / "vdirsyncer" / "config").write_text(
        "[storage cal_local]\n"
        'type = "filesystem"\n'
        f'path = "{tmp_path / "vdir"}/"\n'
        'fileext = ".ics"\n'
        "[storage cal_remote]\n"
        'type = "caldav"\n'
        'url = "https://dav.example.com/"\n'
    )
    wants = xdg / "systemd" / "user" / "timers.target.wants"
    wants.mkdir(parents=True)
    (wants / "vdirsyncer.timer").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("VDIRSYNCER_CONFIG", raising=False)
    code, lines = run_check(config, capsys)
    assert code == 0  # a warning: the user may be mid-migration
    (warn,) = [x for x in lines if x.startswith("warn")]
    assert f"also syncs {tmp_path / 'vdir'} and its timer is enabled" in warn
    assert "systemctl --user disable --now vdirsyncer.timer" in warn

    (wants / "vdirsyncer.timer").unlink()
    (xdg / "vdirsyncer" / "config").write_text('[storage x]\npath = "~/elsewhere"\n')
    code, lines = run_check(config, capsys)
    assert not [x for x in lines if x.startswith("warn")]
