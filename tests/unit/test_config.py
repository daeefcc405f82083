"""Config errors name the file and the key, and `syncd` exits 2 on them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from syncd.cli import main
from syncd.config import ConfigError, load_config

GOOD = """\
accounts:
  home:
    url: https://jmap.example.com
    username: alice
    password_env: SYNCD_TEST_PW
pairs:
  cal:
    account: home
    local: {root}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text.format(root=tmp_path / "vdir"))
    path.chmod(0o600)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


def test_a_good_config_has_the_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    pair = config.pairs["cal"]
    assert pair.collections == "all"
    assert pair.local == tmp_path / "vdir"
    assert (pair.debounce, pair.poll_interval, pair.safety_interval) == (0.3, 60.0, 1800.0)


def test_unknown_key_is_named_with_a_suggestion_and_the_file(tmp_path):
    message = error_of(tmp_path, GOOD.replace("username:", "usernme:"))
    assert "accounts.home.usernme" in message and "username" in message
    assert "config.yaml" in message


def test_missing_account_is_named(tmp_path):
    message = error_of(tmp_path, GOOD.replace("account: home", "account: work"))
    assert "pairs.cal.account" in message and "work" in message


def test_jscalendar_defaults_to_auto_and_takes_the_two_dialects(tmp_path):
    assert load_config(write(tmp_path, GOOD)).accounts["home"].jscalendar == "auto"
    for value in ("auto", "rfc8984", "jscalendarbis"):
        text = GOOD.replace("pairs:", f"    jscalendar: {value}\npairs:")
        assert load_config(write(tmp_path, text)).accounts["home"].jscalendar == value


@pytest.mark.parametrize("value", ["jscalendar-bis", "2.0", "[rfc8984]"])
def test_a_wrong_jscalendar_value_names_the_key_and_the_choices(tmp_path, value):
    message = error_of(tmp_path, GOOD.replace("pairs:", f"    jscalendar: {value}\npairs:"))
    assert "accounts.home.jscalendar" in message
    assert "auto, rfc8984, jscalendarbis" in message


def test_wrong_type_is_named(tmp_path):
    message = error_of(tmp_path, GOOD + "    debounce: soon\n")
    assert "pairs.cal.debounce" in message


def test_credentials_over_plain_http_only_to_loopback(tmp_path):
    message = error_of(
        tmp_path, GOOD.replace("https://jmap.example.com", "http://jmap.example.com")
    )
    assert "http" in message and "allow_insecure_http" in message
    load_config(write(tmp_path, GOOD.replace("https://jmap.example.com", "http://127.0.0.1:8080")))
    text = GOOD.replace("https://jmap.example.com", "http://jmap.example.com")
    text = text.replace("    password_env", "    allow_insecure_http: true\n    password_env")
    load_config(write(tmp_path, text))


def test_password_command_runs_without_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    text = GOOD.replace(
        "password_env: SYNCD_TEST_PW", f"password_command: [echo, 'x; touch {marker}']"
    )
    config = load_config(write(tmp_path, text))
    secret = config.accounts["home"].resolve_secret()
    assert secret.reveal() == f"x; touch {marker}"
    assert not marker.exists()


def test_a_readable_plain_password_is_warned_about(tmp_path, caplog):
    path = write(tmp_path, GOOD.replace("password_env: SYNCD_TEST_PW", "password: hunter22"))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_config(path)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
    assert all("hunter22" not in r.getMessage() for r in caplog.records)


def test_cli_exits_2_on_a_bad_config(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("pairs:", "pears:"))
    assert main(["-c", str(path), "sync"]) == 2
    err = capsys.readouterr().err
    assert "pears" in err and str(path) in err


def test_cli_exits_2_on_an_unknown_pair(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNCD_TEST_PW", "pw")
    path = write(tmp_path, GOOD)
    (tmp_path / "vdir").mkdir()
    assert main(["-c", str(path), "sync", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
