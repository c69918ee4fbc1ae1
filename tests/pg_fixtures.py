"""The PostgreSQL fixtures (conftest.py imports them): a session's server, a fresh database per test."""
import asyncio
import os
import queue
import threading
import time
from urllib.parse import urlsplit

import pytest

from pg import Unavailable, start_server


@pytest.fixture(scope="session")
def pg_server():
    """The session's PostgreSQL server; the PostgreSQL tests skip where there is none
    (and fail under CI=true: CI must run them)."""
    try:
        server = start_server()
    except Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database for one test; dropped after it."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


class Prepared:
    """Copies of a template database, made on a thread of their own ahead of the tests that
    take them and dropped behind them, so a test waits for neither (a copy takes 0.05 to
    0.4 s on a busy machine; a test on it about as long)."""

    AHEAD = 2

    def __init__(self, server, template: str):
        self.server, self.template = server, template
        self.ready: queue.Queue = queue.Queue()
        self.jobs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="pg-databases", daemon=True)
        self.thread.start()
        for _ in range(self.AHEAD):
            self.jobs.put(("create", None))

    def _work(self) -> None:
        while True:
            job, url = self.jobs.get()
            if job == "stop":
                return
            for attempt in range(40):  # a test may have the server stopped for a while (halt, restart)
                try:
                    if job == "create":
                        self.ready.put(self.server.create_database(template=self.template))
                    else:
                        self.server.drop_database(url)
                    break
                except Exception as exc:  # a create's last failure is the taker's; a drop's, nobody's
                    if attempt == 39 and job == "create":
                        self.ready.put(exc)
                    time.sleep(0.5)

    def take(self) -> str:
        """A fresh copy's URL; the next one is started meanwhile."""
        self.jobs.put(("create", None))
        got = self.ready.get(timeout=120)
        if isinstance(got, Exception):
            raise got
        return got

    def give_back(self, url: str) -> None:
        self.jobs.put(("drop", url))

    def close(self) -> None:
        self.jobs.put(("stop", None))
        self.thread.join(120)
        while not self.ready.empty():
            got = self.ready.get()
            if isinstance(got, str):
                self.server.drop_database(got)


@pytest.fixture(scope="session")
def pg_schema(pg_server):
    """Copies of a database with alertd's schema in it (made once a session): each test of the
    ``backend`` fixture gets one, a few pages, instead of an empty database it would then
    migrate (0.45 s a test)."""
    from alertd.store.postgres.store import PostgresStore

    url = pg_server.create_database()

    async def migrate():
        store = PostgresStore.at(url, "template", min_size=1, max_size=1)
        await store.open()
        await store.disconnect()
    asyncio.run(migrate())
    copies = Prepared(pg_server, urlsplit(url).path.lstrip("/"))
    yield copies
    copies.close()


@pytest.fixture
def pg_migrated_url(pg_schema):
    """A fresh database with alertd's schema for one test; dropped after it."""
    url = pg_schema.take()
    yield url
    pg_schema.give_back(url)
