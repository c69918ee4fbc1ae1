"""The PostgreSQL backend: several alertd nodes on one database (``database: postgresql://...``).

asyncpg, on the daemon's event loop (bench/pg_driver.py measured it against psycopg 3:
1.4-1.7x the writes per second). Every statement is parameterised. Every time that
decides a lease comes from the database's clock, so a node whose clock is off can
neither steal nor keep a lease (the functions that take ``at`` use it only when a test
passes one, to move time without waiting). The due times a node writes and compares
come from its own clock, which a running daemon keeps in step with the database's
(alertd/clock.py ``SyncedClock``, measured by alertd/runtime/cluster.py).

Raises StoreError (alertd/store) for whatever the database or the way to it fails
with: ``unavailable()`` tells the errors that pass when the database is back (a
restart, a killed connection) from the ones that do not.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg

from ..errors import SchemaTooNew, StoreError, StoreUnavailable
from .schema import MIGRATIONS

# pg_advisory_xact_lock key under which migrations run: two nodes starting together
# migrate once, the second finds the work done. ('alertd' in ASCII.)
MIGRATION_LOCK = 0x616C65727464


# The database's clock, in the epoch seconds every time column holds.
DB_NOW = "extract(epoch from clock_timestamp())::float8"


def now_sql(n: int) -> str:
    """SQL for the database's clock, or parameter ``$n`` instead when it is not NULL
    (tests move time without waiting)."""
    return f"COALESCE(${n}::float8, {DB_NOW})"


# Errors after which the same statement can succeed once the database is reachable again.
_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
              asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
              asyncpg.ConnectionFailureError, asyncpg.TooManyConnectionsError,
              # a connection the server dropped mid-statement leaves asyncpg in this state
              asyncpg.exceptions.InternalClientError)


class DatabaseUnavailable(StoreUnavailable):
    """The database cannot be reached now (restarting, connection killed, network down).
    Nothing of the failed call was committed; the API answers 503 meanwhile."""


def unavailable(exc: BaseException) -> bool:
    return isinstance(exc, (DatabaseUnavailable, *_TRANSIENT))


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Raise every database failure inside as StoreError (DatabaseUnavailable when transient)."""
    try:
        yield
    except StoreError:
        raise
    except _TRANSIENT as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc.__class__.__name__}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"database error: {exc.__class__.__name__}: {exc}") from exc


async def open_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool of connections to ``url``. Raises DatabaseUnavailable when it cannot be reached."""
    async with translated():
        return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, reset=_no_reset,
                                         # a statement stuck on a lost connection must not hang a request
                                         command_timeout=30)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """A connection goes back to the pool as it is: alertd sets no session state (no SET,
    no LISTEN, only transaction-scoped advisory locks), so asyncpg's reset query would be
    one more round trip per request for nothing. An open transaction is still rolled back."""


async def migrate(conn: asyncpg.Connection) -> tuple[int, int]:
    """Apply pending migrations in one transaction under an advisory lock; returns
    (schema version now in force, migrations this call applied). Raises SchemaTooNew
    when the database is newer than this code (an older node must not write to it)."""
    async with translated(), conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS alertd_schema (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT version FROM alertd_schema")
        if version is None:
            version = 0
            await conn.execute("INSERT INTO alertd_schema (version) VALUES (0)")
        if version > len(MIGRATIONS):
            raise SchemaTooNew(f"database schema v{version} is newer than this alertd"
                               f" (v{len(MIGRATIONS)}); upgrade alertd")
        for script in MIGRATIONS[version:]:
            await conn.execute(script)  # no arguments: the simple protocol runs the whole script
        await conn.execute("UPDATE alertd_schema SET version = $1", len(MIGRATIONS))
        return len(MIGRATIONS), len(MIGRATIONS) - version
