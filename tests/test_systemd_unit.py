"""systemd/alertd.service: what it must say, what systemd-analyze makes of it, and
that the daemon still does its whole job under the unit's memory and system-call
restrictions (tests/sandbox_exec.py)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import AUTH_TOKEN, free_socket, twilio_overrides, write_config
from sd_listener import NotifySocket

UNIT = Path(__file__).parent.parent / "systemd" / "alertd.service"
SANDBOX = Path(__file__).parent / "sandbox_exec.py"
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed here")


def directives(path: Path = UNIT) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat, like SystemCallFilter=)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(section, {}).setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_is_type_notify_with_a_watchdog_and_restarts():
    service = directives()["Service"]
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30s"] and service["Restart"] == ["on-failure"]
    assert service["ExecStart"] == ["/opt/alertd/venv/bin/alertd run -c /etc/alertd/config.yaml"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_the_unit_keeps_state_config_and_secrets_where_the_docs_say():
    service = directives()["Service"]
    assert service["DynamicUser"] == ["yes"]
    assert service["StateDirectory"] == ["alertd"] and service["ConfigurationDirectory"] == ["alertd"]
    assert service["LoadCredential"] == ["twilio_auth_token:/etc/alertd/twilio_auth_token"]
    assert service["UMask"] == ["0077"]


HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "DevicePolicy": "closed", "PrivateUsers": "yes", "PrivateIPC": "yes",
    "PrivateMounts": "yes", "ProtectHostname": "yes", "ProtectClock": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
    "ProtectProc": "invisible", "RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "RemoveIPC": "yes", "KeyringMode": "private",
    "CapabilityBoundingSet": "", "AmbientCapabilities": "", "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallErrorNumber": "EPERM",
}


def test_the_unit_has_the_hardening_keys():
    service = directives()["Service"]
    assert {k: service.get(k, [None])[-1] for k in HARDENING} == HARDENING
    assert service["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    # Twilio's addresses change and must stay reachable: no IP allow list
    assert "IPAddressDeny" not in service and "IPAddressAllow" not in service


@needs_analyze
def test_systemd_analyze_verify_passes(tmp_path):
    # verify checks that ExecStart's program exists: point it at this environment's alertd
    alertd = Path(sys.executable).parent / "alertd"
    if not alertd.exists():
        pytest.skip(f"no alertd script beside {sys.executable} to stand for /opt/alertd/venv/bin/alertd")
    unit = tmp_path / "alertd.service"
    unit.write_text(UNIT.read_text().replace("/opt/alertd/venv/bin/alertd", str(alertd)))
    done = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "alertd.service" in line] == []


@needs_analyze
def test_systemd_analyze_security_rates_the_exposure_at_most_2():
    done = subprocess.run([ANALYZE, "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    match = re.search(r"Overall exposure level for alertd\.service: (\d+\.\d)", done.stdout)
    assert match, done.stdout + done.stderr
    exposure = float(match.group(1))
    print(f"systemd-analyze security: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, done.stdout
    assert done.returncode == 0, done.stderr  # --threshold agrees


# --- the daemon under MemoryDenyWriteExecute= and SystemCallFilter= -------------------------------

def sandbox_command() -> tuple[list[str], str]:
    """The launcher, with seccomp when some Python here has the libseccomp binding."""
    if ANALYZE:
        for python in (sys.executable, "/usr/bin/python3"):
            if Path(python).exists() and subprocess.run([python, "-I", "-c", "import seccomp"],
                                                        capture_output=True).returncode == 0:
                return [python, "-I", str(SANDBOX), "--seccomp"], "MemoryDenyWriteExecute + SystemCallFilter"
    return [sys.executable, "-I", str(SANDBOX)], "MemoryDenyWriteExecute"


RULE = """\
rules:
  - id: door
    source: {webhook: door}
    notify: {to: [manager], message: "door {{ event.state }}", action_type: sms}
"""


def test_the_daemon_does_its_whole_job_under_the_units_restrictions(tmp_path, fake_twilio):
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    config = write_config(tmp_path, port, twilio_overrides(fake_twilio))
    (tmp_path / "rules" / "door.yaml").write_text(RULE)
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "twilio_auth_token").write_text(AUTH_TOKEN + "\n")
    text = config.read_text().replace(f"auth_token: {AUTH_TOKEN}", "auth_token_file: twilio_auth_token")
    config.write_text(text)
    key = subprocess.run([sys.executable, "-m", "alertd", "keys", "create", "--name", "t", "-c", str(config)],
                         capture_output=True, text=True, check=True).stdout.strip()
    notify_socket = NotifySocket(abstract=True)
    launcher, what = sandbox_command()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTD_", "NOTIFY_", "WATCHDOG_"))}
    env.update(NOTIFY_SOCKET=notify_socket.env_value, WATCHDOG_USEC="400000",
               CREDENTIALS_DIRECTORY=str(tmp_path / "credentials"))
    out_path = tmp_path / "alertd.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen([*launcher, sys.executable, "-m", "alertd", "run", "-c", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        try:
            notify_socket.wait_for("READY", timeout=20)
        except AssertionError:
            if proc.poll() == 3:
                pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3): MemoryDenyWriteExecute= not tested")
            raise AssertionError(out_path.read_text()) from None
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        base = f"http://127.0.0.1:{port}"
        r = api.post(base + "/api/v1/calls/notify", timeout=10,
                     json={"to": "+15551234567", "message": "under the sandbox", "action_type": "both", "gather": True})
        assert r.status_code == 200 and r.json()["calls"][0]["status"] == "initiated", r.text
        (call,) = fake_twilio.wait_for(1, "call")
        fake_twilio.wait_for(1, "sms")
        assert fake_twilio.complete_call(call.sid, "in-progress")[0] == 200  # signed with the credential's token
        assert fake_twilio.press(call.sid)[0] == 200
        assert api.get(base + "/api/v1/calls/logs", timeout=10).json()["logs"][0]["acknowledged"] is True
        (tmp_path / "rules" / "door2.yaml").write_text(RULE.replace("id: door", "id: door2")
                                                       .replace("webhook: door", "webhook: door2"))
        proc.send_signal(signal.SIGHUP)  # the rule reload, as ExecReload= sends it
        r = api.post(base + "/hooks/door", json={"state": "open"}, timeout=10)
        assert r.status_code == 200 and r.json()["fired"] == ["door"], r.text
        fake_twilio.wait_for(2, "sms")
        notify_socket.wait_for("WATCHDOG", timeout=5)
        proc.send_signal(signal.SIGTERM)
        notify_socket.wait_for("STOPPING", timeout=10)
        assert proc.wait(20) == 0, out_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        notify_socket.close()
    output = out_path.read_text()
    assert "Traceback" not in output and "not permitted" not in output, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [line["rules"] for line in lines if line["event"] == "rules reloaded"][-1] == 2, output
    print(f"the daemon ran under {what}")


def test_the_production_config_in_docs_ops_passes_check(tmp_path):
    doc = (UNIT.parent.parent / "docs" / "ops.md").read_text()
    block = re.search(r"### The configuration\n.*?```yaml\n(.*?)```", doc, re.S).group(1)
    config = tmp_path / "config.yaml"
    config.write_text(block)
    env = {k: v for k, v in os.environ.items() if k not in ("ALERTD_CONFIG", "CREDENTIALS_DIRECTORY")}
    done = subprocess.run([sys.executable, "-m", "alertd", "check", "-c", str(config)], capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == [
        f"warning: {config}:11: provider.auth_token_file: not checked: 'twilio_auth_token' is read from"
        " $CREDENTIALS_DIRECTORY when alertd runs under systemd",
        f"SUCCESS: {config}"]
    # as the service sees it
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "twilio_auth_token").write_text("token\n")
    done = subprocess.run([sys.executable, "-m", "alertd", "check", "-c", str(config)], capture_output=True,
                          text=True, timeout=60, env={**env, "CREDENTIALS_DIRECTORY": str(tmp_path / "credentials")})
    assert done.stdout.splitlines() == [f"SUCCESS: {config}"], done.stdout


def test_the_unit_raises_the_open_file_limit_above_what_slow_clients_could_hold():
    # each connection is a file; the default soft limit of 1024 (256 on some hosts) is reached by a
    # few hundred clients that never finish a request, and then health checks and provider requests fail
    (value,) = directives()["Service"]["LimitNOFILE"]
    assert int(value) >= 65536, value
