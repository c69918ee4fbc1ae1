"""The PostgreSQL fixtures (conftest.py imports them): a session's server, a fresh database per test."""
import os

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
