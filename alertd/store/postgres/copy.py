"""``alertd db copy``: every table of a SQLite database into an empty PostgreSQL one.

An install moving from one box to several keeps its API keys, templates, users, the
trigger log, pending outbox items and follow-ups, rule state and silences: every row of
every table, with its ids, in one PostgreSQL transaction (all or nothing). Stop the
daemon first, so no row is written to SQLite after it was read.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable

import asyncpg

from ..errors import StoreError
from ..sqlite.connection import connect as sqlite_connect
from ..sqlite.connection import migrate as sqlite_migrate
from . import migrate, translated

_CHUNK = 5000

_CAST: dict[str, Callable[[Any], Any]] = {
    # SQLite keeps what a column was given: an integer in a REAL column, a number in a TEXT one
    "double precision": float, "bigint": int, "integer": int, "text": str}


# rows a table may hold on SQLite but not here: an alertd older than migration 9 could
# store a second retry of one call (a repeated status callback); its unique index keeps
# one per call, so the copy keeps the first, as that alertd would place it
_SKIP = {"followups": "kind = 'retry' AND id NOT IN (SELECT MIN(id) FROM followups WHERE kind = 'retry'"
                      " GROUP BY trigger_id, log_id)"}


class CopyError(StoreError):
    """The copy was refused or failed; nothing was written to PostgreSQL."""


def sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


async def copy(source: str | Path, url: str) -> dict[str, int]:
    """Copy every row of SQLite ``source`` into PostgreSQL ``url``; returns rows per table.
    Raises CopyError when the source is missing, or the target holds alertd data already."""
    source = Path(source)
    if not source.is_file():
        raise CopyError(f"{source}: no such SQLite database")
    lite = sqlite_connect(source)
    try:
        sqlite_migrate(lite)  # an older alertd's database first gets what this version reads
        async with translated():
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
                return await _copy(lite, conn)
            finally:
                await conn.close()
    finally:
        lite.close()


async def _copy(lite: sqlite3.Connection, conn: asyncpg.Connection) -> dict[str, int]:
    tables = sqlite_tables(lite)
    types = {(r["table_name"], r["column_name"]): r["data_type"] for r in await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'")}
    counts: dict[str, int] = {}
    async with conn.transaction():
        for table in tables:
            if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):
                raise CopyError(f"the PostgreSQL database already has rows in {table}: copy into an empty one")
        for table in tables:
            columns = [r[1] for r in lite.execute(f'PRAGMA table_info("{table}")')]
            casts = [_CAST[types[(table, c)]] for c in columns]
            skip = f" WHERE NOT ({_SKIP[table]})" if table in _SKIP else ""
            cursor = lite.execute(f'SELECT {", ".join(columns)} FROM "{table}"{skip}')
            counts[table] = 0
            while rows := cursor.fetchmany(_CHUNK):
                records = [tuple(None if v is None else cast(v) for v, cast in zip(row, casts)) for row in rows]
                await conn.copy_records_to_table(table, records=records, columns=columns)
                counts[table] += len(records)
        # identities go on after the highest id copied, so the next row does not collide
        for r in await conn.fetch("SELECT table_name, column_name FROM information_schema.columns"
                                  " WHERE table_schema = 'public' AND is_identity = 'YES'"):
            await conn.execute(
                f'SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX("{r["column_name"]}")'
                f' FROM "{r["table_name"]}"), 0) + 1, false)', r["table_name"], r["column_name"])
    return counts
