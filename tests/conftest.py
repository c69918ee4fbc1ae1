"""Shared fixtures: a real daemon on a loopback socket, a fake Twilio, API keys.

The daemon runs in-process (uvicorn in a thread with its own event loop) so a
test can hand it a FakeClock and look at its store, but every request goes
over a real socket, and the real twilio library talks to FakeTwilio over
another one.
"""
from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import uvicorn
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from alertd import config as config_mod  # noqa: E402
from alertd.api.auth import generate_key  # noqa: E402
from alertd.runtime.daemon import Daemon  # noqa: E402
from fake_twilio import FakeTwilio  # noqa: E402
from pg_fixtures import pg_migrated_url, pg_schema, pg_server, pg_url  # noqa: E402,F401  (PostgreSQL fixtures)
from alertd.store import Store  # noqa: E402
from alertd.store.sqlite.batch import run_now  # noqa: E402

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-token"
CALLER_ID = "+15557654321"


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def write_config(folder: Path, port: int, overrides: dict | None = None) -> Path:
    data = {
        "server": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"},
        "database": "alertd.db",
        "rules": "rules",
        "timezone": "America/New_York",
        "provider": {"kind": "simulator", "numbers": [CALLER_ID], "auth_token": AUTH_TOKEN},
        "dispatch": {"backoff_base": "0.05s", "backoff_max": "0.2s", "max_attempts": 5},
        "contacts": {"manager": "+15551230001", "oncall_primary": "+15551230002",
                     "oncall_secondary": "+15551230003"},
        "groups": {"oncall": ["oncall_primary", "oncall_secondary"]},
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    if "providers" in (overrides or {}):
        del data["provider"]  # a providers: list replaces the default simulator
    (folder / "rules").mkdir(exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class RunningDaemon:
    """A daemon serving on 127.0.0.1; ``api`` is a requests session with a valid key."""

    def __init__(self, folder: Path, overrides: dict | None = None, clock=None, node_clock=None):
        self.folder, self.overrides, self.clock = folder, overrides, clock
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = write_config(folder, self.port, overrides)
        self.config, _ = config_mod.load(self.config_path)
        self.daemon = Daemon(self.config, clock=clock, node_clock=node_clock)
        self.key, prefix, digest = generate_key()
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {self.key}"
        self._start()
        # on the daemon's loop: a PostgreSQL store is open only once the daemon started
        self.run(self.daemon.store.keys.create("test", prefix, digest, time.time()))

    def _start(self) -> None:
        cfg = uvicorn.Config(self.daemon.app, access_log=False, log_config=None, lifespan="on")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("daemon did not start")
            time.sleep(0.01)

    def run(self, coro, timeout: float = 10):
        """Run a coroutine on the daemon's own event loop (e.g. dispatcher.run_once()). A test
        reads and writes a running daemon's store this way, never from its own thread: the
        SQLite store's one connection is the loop's, and a write from another thread could
        meet the loop's open transaction ("cannot start a transaction within a transaction")."""
        loop = self.daemon.loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def query(self, statement: str, *args) -> list[tuple]:
        """The rows of one SQL statement on the daemon's database, either backend (fetch_rows)."""
        return self.run(fetch_rows(self.daemon.store, statement, *args))

    def pause_worker(self) -> None:
        """Stop the background worker: the test drives run_once()/run_due() itself."""
        async def stop():
            self.daemon.dispatcher.stop()
            await self.daemon._worker
        self.run(stop())

    def url(self, path: str) -> str:
        return self.base_url + path

    def notify(self, body: dict, **kwargs) -> requests.Response:
        return self.api.post(self.url("/api/v1/calls/notify"), json=body, timeout=10, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.daemon.store.close()

    def wait_until(self, predicate, timeout: float = 5.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fake_twilio():
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        yield fake


def twilio_overrides(fake: FakeTwilio) -> dict:
    return {"provider": {"kind": "twilio", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                         "api_base_url": fake.base_url, "numbers": [CALLER_ID], "timeout": "2s"}}


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: the test's PostgreSQL case (deselect with -m 'not postgres')")


def pytest_terminal_summary(terminalreporter):
    """Where the PostgreSQL cases skipped, say once, at the end, how to run them."""
    from pg import HOW_TO_RUN

    if any(HOW_TO_RUN in str(r.longrepr) for r in terminalreporter.stats.get("skipped", [])):
        terminalreporter.write_line(HOW_TO_RUN)


class Backend:
    """Which database a test runs on: ``name`` is "sqlite" or "postgres"; ``database`` is what
    the config's ``database:`` gets (None: the default SQLite file in the test's folder)."""

    def __init__(self, name: str, database: str | None = None):
        self.name, self.database = name, database

    @property
    def postgres(self) -> bool:
        return self.name == "postgres"

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> Backend:
    """Runs the test once per backend (ids [sqlite] and [postgres]). A test opts in by naming
    this fixture, or with ``@both_backends``: then ``make_daemon`` (and ``daemon``,
    ``twilio_daemon``) and ``backend_store`` use that backend. PostgreSQL is a fresh database,
    already migrated, on the session's server; without one the [postgres] cases skip, saying
    how to run them."""
    if request.param == "postgres":
        return Backend("postgres", request.getfixturevalue("pg_migrated_url"))
    return Backend("sqlite")


both_backends = pytest.mark.usefixtures("backend")


@pytest.fixture
def make_daemon(request, tmp_path):
    """make_daemon(overrides=None, clock=None) -> RunningDaemon; stopped at teardown. On the
    test's ``backend`` when it names one (every daemon of the test on the one database).
    ``node_clock``: the machine's clock the daemon follows to PostgreSQL's (a skewed one)."""
    started: list[RunningDaemon] = []
    database = request.getfixturevalue("backend").database if "backend" in request.fixturenames else None

    def make(overrides: dict | None = None, clock=None, folder: Path | None = None, node_clock=None) -> RunningDaemon:
        if database and "database" not in (overrides or {}):
            overrides = {**(overrides or {}), "database": database}
        d = RunningDaemon(folder or tmp_path, overrides, clock, node_clock)
        started.append(d)
        return d

    yield make
    for d in started:
        if d.thread.is_alive():
            d.stop()


@pytest.fixture
def daemon(make_daemon):
    """A daemon with the simulator provider."""
    return make_daemon()


@pytest.fixture
def twilio_daemon(make_daemon, fake_twilio):
    """A daemon whose provider is the real twilio library pointed at FakeTwilio."""
    d = make_daemon(twilio_overrides(fake_twilio))
    d.fake = fake_twilio
    return d


@pytest.fixture
def structlog_output():
    """What alertd logs through structlog during the test: JSON lines in a StringIO."""
    import io

    import structlog

    from alertd.runtime import logconf

    stream = io.StringIO()
    logconf.configure("debug", "json", stream=stream)
    yield stream
    structlog.reset_defaults()


# The loop of the PostgreSQL store ``backend_store`` opened, while it is open: its pool's
# connections belong to that loop, so sync() runs the store's coroutines there.
_store_loop: asyncio.AbstractEventLoop | None = None


def sync(coro):
    """The result of a store coroutine, from a test's own thread. On SQLite its methods never
    wait on anything, so they run to their end here, without a loop; on PostgreSQL
    (``backend_store``) the coroutine runs on the store's own loop."""
    if _store_loop is not None:
        return asyncio.run_coroutine_threadsafe(coro, _store_loop).result(30)
    return run_now(coro)


def run_async(coro):
    """The result of a coroutine that may wait (yield to the loop, sleep) and uses the
    test's store: asyncio.run on SQLite, the PostgreSQL store's loop on PostgreSQL."""
    if _store_loop is not None:
        return asyncio.run_coroutine_threadsafe(coro, _store_loop).result(30)
    return asyncio.run(coro)


async def fetch_rows(store, statement: str, *args) -> list[tuple]:
    """The rows of one SQL statement (``?`` placeholders) through the store's own connection,
    on either backend, committed: for a test that counts or reads what no store method
    answers, or sets up a state no store method would write."""
    if isinstance(store, Store):  # SQLite
        return [tuple(r) for r in store.conn.execute(statement, args).fetchall()]
    async with store.tx() as tx:
        return [tuple(r) for r in await tx.fetch(statement, *args)]


def query(store, statement: str, *args) -> list[tuple]:
    """fetch_rows() on a store of the test's own (``backend_store``)."""
    return sync(fetch_rows(store, statement, *args))


@pytest.fixture
def backend_store(backend, tmp_path):
    """A store of its own on the test's ``backend`` (no daemon): a SQLite file in tmp_path, or
    the test's PostgreSQL database, migrated, its pool on a loop in a thread of its own.
    ``sync(store.logs.get(1))`` works on either."""
    global _store_loop
    if not backend.postgres:
        store = Store(tmp_path / "alertd.db")
        yield store
        store.close()
        return
    from alertd.store.postgres.store import PostgresStore

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    store = PostgresStore.at(backend.database, "test", min_size=1, max_size=4)
    asyncio.run_coroutine_threadsafe(store.open(), loop).result(30)
    _store_loop = loop
    try:
        yield store
    finally:
        _store_loop = None
        asyncio.run_coroutine_threadsafe(store.disconnect(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
