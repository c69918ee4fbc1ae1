"""The alertd command line, run as a real subprocess: keys, check, log, run + SIGTERM."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from alertd.store import Store
from alertd.dispatch.notification import Notification
from conftest import free_socket, twilio_overrides, write_config
from conftest import sync

NUMBER = "+15551234567"


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ALERTD_CONFIG"}
    return {**env, **extra}


def alertd(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True, text=True, timeout=60,
                          env=env or clean_env(), cwd=cwd)


def free_port() -> int:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"""\
server:
  listen: 127.0.0.1:{free_port()}
database: alertd.db
rules: rules
provider:
  kind: simulator
  numbers: ["+15557654321"]
""")
    return path


def create_key(config: Path, name: str = "ops") -> str:
    done = alertd("keys", "create", "--name", name, "-c", str(config))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# --- keys --------------------------------------------------------------------------

def test_keys_create_prints_the_key_once(config):
    done = alertd("keys", "create", "--name", "timeclock", "-c", str(config))
    assert done.returncode == 0
    assert re.fullmatch(r"ak_live_[A-Za-z0-9_-]{32,}\n", done.stdout)  # the key and nothing else on stdout
    assert done.stdout.strip() not in done.stderr


def test_keys_are_random(config):
    assert len({create_key(config) for _ in range(2)}) == 2


def test_keys_list_shows_id_name_prefix_and_dates_but_never_the_key(config):
    key = create_key(config, "timeclock")
    done = alertd("keys", "list", "-c", str(config))
    assert done.returncode == 0
    header, line = done.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "PREFIX", "CREATED", "LAST", "USED", "SCOPES", "STATE"]
    fields = line.split()
    assert fields[:3] == ["1", "timeclock", key[:12] + "..."] and fields[-1] == "active"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields[3])
    assert key not in done.stdout + done.stderr and key[12:20] not in done.stdout


def test_keys_revoke_marks_the_key_revoked(config):
    create_key(config)
    done = alertd("keys", "revoke", "1", "-c", str(config))
    assert (done.returncode, done.stdout) == (0, "revoked key 1\n")
    assert alertd("keys", "list", "-c", str(config)).stdout.splitlines()[1].split()[-1] == "revoked"
    again = alertd("keys", "revoke", "1", "-c", str(config))
    assert again.returncode == 1 and "no active key with id 1" in again.stderr


# --- check -------------------------------------------------------------------------

def test_check_passes_a_good_config(config):
    done = alertd("check", "-c", str(config))
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().splitlines()[-1] == f"SUCCESS: {config}"


def test_check_names_the_file_line_and_key_of_every_problem(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("""\
server:
  listen: 127.0.0.1:8080
  listne: 127.0.0.1:8081
database: alertd.db
timezone: Mars/Olympus
provider:
  kind: simulator
  repeat: 2
contacts:
  boss: "12"
""")
    done = alertd("check", "-c", str(bad))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{bad}:3: unknown key 'listne' in server",
        f"{bad}:5: timezone: unknown timezone 'Mars/Olympus' (use an IANA name like America/New_York)",
        f"{bad}:8: unknown key 'repeat' in provider",
        f"{bad}:10: contacts.boss.phone: Invalid phone number format: '12'",
        f"FAILED: {bad}: 4 problem(s)",
    ]


@pytest.mark.parametrize("text, problem", [
    ("server: [\n", ":2: invalid YAML"),
    ("- just\n- a list\n", ":1: the config must be a mapping of keys"),
])
def test_check_refuses_a_file_that_is_not_a_config(tmp_path, text, problem):
    bad = tmp_path / "config.yaml"
    bad.write_text(text)
    done = alertd("check", "-c", str(bad))
    assert done.returncode == 1 and done.stdout.startswith(f"{bad}{problem}")


def test_a_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    done = alertd("keys", "list", "-c", str(missing))
    assert done.returncode == 1 and done.stderr.startswith(f"{missing}:1: cannot read")


def test_alertd_config_is_used_when_c_is_absent(config, tmp_path):
    create_key(config, "from-env")
    env = clean_env(ALERTD_CONFIG=str(config))
    listed = alertd("keys", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0 and "from-env" in listed.stdout
    checked = alertd("check", env=env, cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.strip().endswith(f"SUCCESS: {config}")


def test_without_c_or_alertd_config_the_etc_default_is_used(tmp_path):
    done = alertd("check", cwd=tmp_path)
    assert done.returncode == 1 and "/etc/alertd/config.yaml" in done.stdout


def test_the_example_config_passes_check_as_it_is():
    example = Path(__file__).parent.parent / "config.example.yaml"
    done = alertd("check", "-c", str(example))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "alertd"
    if not script.exists():
        pytest.skip("alertd is not installed as a console script in this environment")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("usage: alertd")


def test_usage_errors_exit_2(config):
    assert alertd().returncode == 2
    assert alertd("keys", "create", "-c", str(config)).returncode == 2  # --name is required


# --- log ----------------------------------------------------------------------------

def test_log_prints_the_trigger_log_newest_first(config):
    store = Store(config.parent / "alertd.db")
    params = {"from": "+15557654321"}
    for n, source in enumerate(("timeclock", "monitor", "timeclock")):
        sync(store.logs.create_trigger({"created_at": 1767600000.0 + n, "source": source},
                                   [Notification(to=NUMBER, type="call", message=f"m{n}", params=params)],
                             lease_until=0))
    store.close()

    done = alertd("log", "--json", "-c", str(config))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["log_id"] for r in rows] == [3, 2, 1]
    assert rows[0]["message"] == "m2" and rows[0]["created_at"] == "2026-01-05T08:00:02.000Z"
    assert rows[0]["acknowledged"] is False and rows[0]["status"] == "queued"

    limited = alertd("log", "--json", "--limit", "1", "--source", "monitor", "-c", str(config))
    assert [json.loads(line)["log_id"] for line in limited.stdout.splitlines()] == [2]

    table = alertd("log", "-c", str(config)).stdout.splitlines()
    assert table[0].split()[:3] == ["LOG", "CREATED", "TO"]
    assert [line.split()[0] for line in table[1:]] == ["3", "2", "1"]


# --- run -----------------------------------------------------------------------------

class Running:
    def __init__(self, config: Path, port: int):
        self.out_path = config.parent / "alertd.out"
        self.out = self.out_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "alertd", "run", "-c", str(config)],
                                     stdout=self.out, stderr=subprocess.STDOUT, env=clean_env())
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("alertd run did not start:\n" + self.output())

    def output(self) -> str:
        if not self.out.closed:
            self.out.flush()
        return self.out_path.read_text()

    def terminate(self, timeout: float = 5) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.out.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.out.close()


@pytest.fixture
def running():
    started: list[Running] = []

    def start(config: Path, port: int) -> Running:
        started.append(Running(config, port))
        return started[-1]

    yield start
    for r in started:
        r.kill()


def test_a_daemon_on_the_simulator_that_polls_nothing_never_loads_aiohttp_or_asyncpg(config, running):
    """aiohttp is 8 MiB of the idle daemon's memory (bench/results.md) and loads with the first
    outgoing HTTP request (a provider's, a poll's, a recording's); asyncpg only on PostgreSQL.
    Neither may load in a daemon on SQLite and the simulator that polls nothing, even after a
    notify: their shared libraries stay out of the process's memory map."""
    maps_file = Path("/proc/self/maps")
    if not maps_file.exists():
        pytest.skip("needs /proc to read the daemon's memory map")
    key = create_key(config)
    port = int(re.search(r"listen: 127\.0\.0\.1:(\d+)", config.read_text()).group(1))
    daemon = running(config, port)
    r = requests.post(daemon.base + "/api/v1/calls/notify", json={"to": "+15551230001", "message": "hi"},
                      headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    maps = Path(f"/proc/{daemon.proc.pid}/maps").read_text()
    loaded = sorted({lib for lib in ("aiohttp", "asyncpg") if f"/{lib}/" in maps})
    assert loaded == []


def test_a_started_daemon_collects_garbage_again_and_serves_its_openapi_document(config, running):
    """`alertd run` starts with the collector off and FastAPI's OpenAPI models and the request
    bodies' schemas left to be built at first use (cli/run.py, api/app.py): once started the
    collector runs again (left off, every cycle a request leaves would stay for good), and
    /openapi.json, its models built on that first request, still carries each body's schema."""
    key = create_key(config)
    port = int(re.search(r"listen: 127\.0\.0\.1:(\d+)", config.read_text()).group(1))
    daemon = running(config, port)

    def young_collections() -> float:
        text = requests.get(daemon.base + "/metrics", timeout=10).text
        return float(re.search(r'^python_gc_collections_total\{generation="0"\} (\S+)$', text, re.M).group(1))

    before = young_collections()
    for n in range(2000):  # a collection of the youngest generation comes every few hundred requests
        r = requests.post(daemon.base + "/api/v1/calls/notify", json={"to": "+15551230001", "message": "hi"},
                          headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200, r.text
        if n % 50 == 49 and young_collections() > before:
            break
    assert young_collections() > before
    spec = requests.get(daemon.base + "/openapi.json", timeout=10)
    assert spec.status_code == 200 and "x-alertd-json-body" not in spec.text
    body = spec.json()["paths"]["/api/v1/calls/notify"]["post"]["requestBody"]
    assert body["required"] is True
    assert "message" in body["content"]["application/json"]["schema"]["properties"]


def test_fastapi_imported_for_run_builds_its_openapi_models_at_first_use():
    """import_fastapi_deferred leaves FastAPI's OpenAPI models unbuilt until first used, and
    pydantic's BaseModel config as it found it. In a fresh interpreter: this one has FastAPI
    already. A pydantic that no longer honours the inherited defer_build fails here."""
    code = ("from alertd.cli.run import import_fastapi_deferred; import_fastapi_deferred()\n"
            "import pydantic, fastapi.openapi.models as m\n"
            "print(m.OpenAPI.__pydantic_complete__, 'defer_build' in pydantic.BaseModel.model_config)\n"
            "m.OpenAPI.model_validate({'openapi': '3.1.0', 'info': {'title': 't', 'version': '1'}})\n"
            "print(m.OpenAPI.__pydantic_complete__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "True"]


def test_run_serves_and_sigterm_exits_0_without_logging_the_key(config, running):
    key = create_key(config)
    port = int(re.search(r"listen: 127\.0\.0\.1:(\d+)", config.read_text()).group(1))
    daemon = running(config, port)
    r = requests.post(daemon.base + "/api/v1/calls/notify", params={"key": key}, timeout=10,
                      json={"to": NUMBER, "message": "hello", "source": "cli-test"})
    assert r.status_code == 200 and r.json()["calls"][0]["status"] == "initiated"
    assert requests.get(daemon.base + "/api/v1/calls/logs", params={"key": key + "x"}, timeout=10).status_code == 401
    started = time.monotonic()
    assert daemon.terminate(timeout=10) == 0
    assert time.monotonic() - started < 5
    output = daemon.output()
    lines = [json.loads(line) for line in output.splitlines()]  # not a terminal: every line is JSON
    assert any(line.get("path") == "/api/v1/calls/notify" and line.get("status") == 200 for line in lines)
    assert lines[-1]["event"] == "alertd stopped"
    assert key not in output and key[12:] not in output


def test_sigterm_finishes_a_request_in_flight(tmp_path, fake_twilio, running):
    port = free_port()
    config = write_config(tmp_path, port, twilio_overrides(fake_twilio))
    key = create_key(config)
    daemon = running(config, port)
    fake_twilio.latency = 0.5
    answer = {}

    def notify():
        answer["r"] = requests.post(daemon.base + "/api/v1/calls/notify", json={"to": NUMBER, "message": "x"},
                                    headers={"Authorization": f"Bearer {key}"}, timeout=10)

    t = threading.Thread(target=notify)
    t.start()
    deadline = time.monotonic() + 5
    while not requests.get(daemon.base + "/api/v1/calls/logs", params={"key": key}, timeout=5).json()["logs"]:
        assert time.monotonic() < deadline, "the request never reached the store"
        time.sleep(0.02)
    assert fake_twilio.calls == []  # the provider request is in flight now
    assert daemon.terminate(timeout=10) == 0
    t.join(5)
    assert answer["r"].status_code == 200
    (call,) = answer["r"].json()["calls"]
    assert call["status"] == "initiated" and call["call_sid"] == fake_twilio.calls[0].sid
    store = Store(tmp_path / "alertd.db")
    assert sync(store.logs.get(call["log_id"]))["call_sid"] == call["call_sid"]
    store.close()
