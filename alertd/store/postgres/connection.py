"""The PostgreSQL connection pool, its transactions, and the translation of asyncpg's errors.

Statements are written with ``?`` placeholders, as on SQLite, and become ``$1, $2, ...``
here (``sql``): the two backends' statements stay side by side readable, and every
value still travels as a parameter.
"""
from __future__ import annotations

import functools
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import asyncpg

from ..errors import wrap_public_coroutines
from . import migrate, open_pool, translated
from .changes import Changes

_MARK = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def sql(statement: str) -> str:
    """``?`` placeholders numbered as PostgreSQL's ``$n``."""
    n = 0

    def number(_: re.Match) -> str:
        nonlocal n
        n += 1
        return f"${n}"
    return _MARK.sub(number, statement)


def _count(status: str) -> int:
    """The row count of a command tag like 'UPDATE 3' or 'INSERT 0 1'."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Conn:
    """One connection (inside a transaction, when it came from ``Table.tx``) with SQLite-shaped calls."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool | None, node_id: str = "", db_clock: bool = False):
        self._raw = conn
        self.node_id = node_id  # who claims what this connection leases (outbox items)
        self.db_clock = db_clock  # leases it writes run on the database's clock (Database.db_clock)

    @property
    def raw(self) -> asyncpg.Connection | asyncpg.Pool:
        """The driver's connection (or pool) the statements run on."""
        return self._raw

    async def fetch(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        return await self.raw.fetch(sql(statement), *args)

    async def fetchrow(self, statement: str, *args: Any) -> asyncpg.Record | None:
        return await self.raw.fetchrow(sql(statement), *args)

    async def fetchval(self, statement: str, *args: Any) -> Any:
        return await self.raw.fetchval(sql(statement), *args)

    async def execute(self, statement: str, *args: Any) -> int:
        """Run a statement; returns how many rows it touched."""
        return _count(await self.raw.execute(sql(statement), *args))


def _translating(fn):
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        async with translated():
            return await fn(*args, **kwargs)
    return wrapper


class Table(Conn):
    """One table group. Its own statements run on the pool; ``tx()`` gives a transaction.
    Every public coroutine raises StoreError (StoreUnavailable when the database cannot be
    reached), never asyncpg's errors."""

    def __init__(self, db: "Database"):
        super().__init__(None, db.node_id, db.db_clock)
        self.db = db

    @property
    def raw(self) -> asyncpg.Pool:
        """The pool, once the database is open (``Database.open``)."""
        return self.db.pool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        wrap_public_coroutines(cls, _translating)

    def tx(self):
        return self.db.tx()


class Database:
    """The pool, migrated; what every table group of this backend shares."""

    def __init__(self, url: str, node_id: str, *, min_size: int = 2, max_size: int = 10, db_clock: bool = False):
        self.url, self.node_id = url, node_id
        # True (a running daemon): the leases of outbox items start and end on the database's
        # clock, so a node whose clock is off can neither take an item another node holds nor
        # keep one past its lease. False: on the times the caller passes (tests move time).
        self.db_clock = db_clock
        self.sizes = {"min_size": min_size, "max_size": max_size}
        self.pool: asyncpg.Pool | None = None
        self.locks: asyncpg.Pool | None = None  # session locks held across awaits (RuleStates.guard)
        self.changes = Changes(url)  # what other nodes changed in the tables kept in memory

    async def open(self) -> None:
        """Connect and migrate (once across nodes starting together). Raises
        StoreUnavailable when the database cannot be reached, SchemaTooNew when it is newer."""
        if self.pool is not None:
            return
        pool = await open_pool(self.url, **self.sizes)
        try:
            async with translated(), pool.acquire() as conn:
                await migrate(conn)
            self.locks = await open_pool(self.url, min_size=0, max_size=4)
        except BaseException:
            await pool.close()
            raise
        self.pool = pool

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Conn]:
        async with translated(), self.pool.acquire() as conn, conn.transaction():
            yield Conn(conn, self.node_id, self.db_clock)

    async def ping(self) -> bool:
        try:
            async with translated():
                return await self.pool.fetchval("SELECT 1") == 1
        except Exception:
            return False

    async def close(self) -> None:
        await self.changes.stop()
        for name in ("locks", "pool"):
            pool = getattr(self, name)
            if pool is not None:
                setattr(self, name, None)
                await pool.close()
