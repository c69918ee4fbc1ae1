"""provider.auth_token_file / account_sid_file: systemd credentials or a path, read at load."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from alertd import config as config_mod

SID = "AC" + "1" * 32


def write(tmp_path, provider: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  public_url: https://alerts.example.com\nprovider:\n  kind: twilio\n" + provider)
    return path


def problems(path, **kwargs) -> list[str]:
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(path, **kwargs)
    return [p.replace(str(path.parent) + "/", "") for p in exc.value.problems]


@pytest.fixture
def credentials_dir(tmp_path, monkeypatch):
    """What systemd's LoadCredential= makes: a folder named in $CREDENTIALS_DIRECTORY."""
    folder = tmp_path / "credentials"
    folder.mkdir()
    (folder / "twilio_auth_token").write_text("s3cret-token\n")
    (folder / "twilio_account_sid").write_text(SID)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder


def test_bare_names_are_read_from_the_credentials_directory(tmp_path, credentials_dir):
    path = write(tmp_path, "  account_sid_file: twilio_account_sid\n  auth_token_file: twilio_auth_token\n")
    cfg, warnings = config_mod.load(path)
    assert cfg.provider.auth_token == "s3cret-token"  # without the newline echo wrote
    assert cfg.provider.account_sid == SID
    assert warnings == []  # no "Twilio credentials are not configured": both were read


def test_a_path_is_read_as_it_is_and_relative_to_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("from-a-path")
    path = write(tmp_path, f"  account_sid: {SID}\n  auth_token_file: ./secrets/token\n")
    assert config_mod.load(path)[0].provider.auth_token == "from-a-path"
    path = write(tmp_path, f"  account_sid: {SID}\n  auth_token_file: {tmp_path}/secrets/token\n")
    assert config_mod.load(path)[0].provider.auth_token == "from-a-path"


def test_an_empty_file_key_from_an_unset_variable_means_not_set(tmp_path, monkeypatch):
    monkeypatch.delenv("ALERTD_TOKEN_FILE", raising=False)
    path = write(tmp_path, f"  account_sid: {SID}\n  auth_token: inline\n  auth_token_file: ${{ALERTD_TOKEN_FILE:-}}\n")
    assert config_mod.load(path)[0].provider.auth_token == "inline"


@pytest.mark.parametrize("provider, expected", [
    ("  auth_token: inline\n  auth_token_file: twilio_auth_token\n",
     "config.yaml:6: provider.auth_token_file: set auth_token or auth_token_file, not both"),
    (f"  account_sid: {SID}\n  account_sid_file: twilio_account_sid\n",
     "config.yaml:6: provider.account_sid_file: set account_sid or account_sid_file, not both"),
    ("  auth_token_file: missing\n",
     "config.yaml:5: provider.auth_token_file: cannot read credentials/missing: No such file or directory"),
    ("  auth_token_file: ./credentials\n",
     "config.yaml:5: provider.auth_token_file: cannot read credentials: Is a directory"),
    ("  auth_token_file: empty\n",
     "config.yaml:5: provider.auth_token_file: credentials/empty is empty"),
    ("  auth_token_file: two_lines\n",
     "config.yaml:5: provider.auth_token_file: credentials/two_lines has more than one line;"
     " it must hold the secret alone"),
    ("  account_sid_file: binary\n",
     "config.yaml:5: provider.account_sid_file: credentials/binary is not UTF-8 text"),
])
def test_a_bad_secret_file_is_an_error_at_its_line(tmp_path, credentials_dir, provider, expected):
    (credentials_dir / "empty").write_text("\n")
    (credentials_dir / "two_lines").write_text("one\ntwo\n")
    (credentials_dir / "binary").write_bytes(b"\xff\xfe")
    assert problems(write(tmp_path, provider)) == [expected]


def test_an_unreadable_file_is_an_error_naming_why(tmp_path, credentials_dir):
    if os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file anyway")
    (credentials_dir / "twilio_auth_token").chmod(0)
    assert problems(write(tmp_path, "  auth_token_file: twilio_auth_token\n")) == [
        "config.yaml:5: provider.auth_token_file: cannot read credentials/twilio_auth_token: Permission denied"]


def test_a_bare_name_outside_systemd_fails_run_warns_check_and_is_skipped_by_other_commands(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(tmp_path, f"  account_sid: {SID}\n  auth_token_file: twilio_auth_token\n")
    assert problems(path) == [
        "config.yaml:6: provider.auth_token_file: 'twilio_auth_token' is a credential name, but"
        " $CREDENTIALS_DIRECTORY is not set (alertd reads it under systemd with LoadCredential=; or give a path)"]
    cfg, warnings = config_mod.load(path, secrets="check")
    assert [w.replace(str(tmp_path) + "/", "") for w in warnings] == [
        "config.yaml:6: provider.auth_token_file: not checked: 'twilio_auth_token' is read from"
        " $CREDENTIALS_DIRECTORY when alertd runs under systemd"]
    cfg, warnings = config_mod.load(path, secrets="skip")
    assert warnings == [] and cfg.provider.auth_token == ""


def test_the_command_line_reads_secrets_only_where_they_are_used(tmp_path):
    path = write(tmp_path, f"  account_sid: {SID}\n  auth_token_file: twilio_auth_token\n")
    (tmp_path / "config.yaml").write_text(path.read_text() + "database: alertd.db\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CREDENTIALS_DIRECTORY", "ALERTD_CONFIG")}

    def alertd(*args):
        return subprocess.run([sys.executable, "-m", "alertd", *args, "-c", str(path)], capture_output=True,
                              text=True, timeout=60, env=env)

    check = alertd("check")
    assert check.returncode == 0 and "not checked: 'twilio_auth_token'" in check.stdout, check.stdout
    keys = alertd("keys", "list")  # an operator's shell has no $CREDENTIALS_DIRECTORY: still works
    assert keys.returncode == 0 and keys.stderr == "", keys.stderr
    run = alertd("run")
    assert run.returncode == 1
    assert "$CREDENTIALS_DIRECTORY is not set" in run.stderr
