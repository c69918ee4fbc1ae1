"""The PostgreSQL schema: the same tables as SQLite's, migrated once by nodes starting together."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest

from alertd.store import SchemaTooNew
from alertd.store.sqlite.connection import connect as sqlite_connect
from alertd.store.sqlite.connection import migrate as sqlite_migrate
from alertd.store.postgres import migrate
from alertd.store.postgres.schema import MIGRATIONS

# SQLite's declared types and the PostgreSQL types that hold the same values
SAME_TYPES = {"INTEGER": {"bigint", "integer"}, "REAL": {"double precision"}, "TEXT": {"text"}}


def run(coro):
    return asyncio.run(coro)


async def columns(url: str) -> dict[str, dict[str, tuple[str, bool]]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
                                " WHERE table_schema = 'public'")
    finally:
        await conn.close()
    out: dict[str, dict[str, tuple[str, bool]]] = {}
    for r in rows:
        out.setdefault(r["table_name"], {})[r["column_name"]] = (r["data_type"], r["is_nullable"] == "NO")
    return out


def test_every_sqlite_table_and_column_has_its_postgresql_twin(pg_url):
    lite = sqlite_connect(":memory:")
    sqlite_migrate(lite)
    run(_migrate(pg_url))
    pg = run(columns(pg_url))
    tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables
    for table in tables:
        assert table in pg, f"table {table} is missing on PostgreSQL: add a migration to alertd/store/postgres/schema.py"
        for _, name, declared, notnull, _, pk in lite.execute(f"PRAGMA table_info({table})"):
            assert name in pg[table], f"{table}.{name} is missing on PostgreSQL"
            pg_type, pg_notnull = pg[table][name]
            assert pg_type in SAME_TYPES[declared], f"{table}.{name}: {declared} on SQLite, {pg_type} on PostgreSQL"
            assert pg_notnull == bool(notnull or pk), f"{table}.{name}: NOT NULL differs"


async def _migrate(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def test_three_nodes_starting_together_migrate_once(pg_url):
    async def together():
        return await asyncio.gather(*(_migrate(pg_url) for _ in range(3)))
    results = run(together())
    assert [version for version, _ in results] == [len(MIGRATIONS)] * 3
    assert sorted(applied for _, applied in results) == [0, 0, len(MIGRATIONS)]
    assert run(_migrate(pg_url)) == (len(MIGRATIONS), 0)  # and a restart applies nothing


def test_a_node_older_than_the_database_refuses_to_start_and_says_so(pg_url):
    run(_migrate(pg_url))

    async def newer():
        conn = await asyncpg.connect(pg_url)
        await conn.execute("UPDATE alertd_schema SET version = version + 1")
        await conn.close()
    run(newer())
    with pytest.raises(SchemaTooNew, match=rf"schema v{len(MIGRATIONS) + 1} is newer than this alertd"
                                            rf" \(v{len(MIGRATIONS)}\); upgrade alertd"):
        run(_migrate(pg_url))


def test_keys_made_before_scopes_existed_keep_every_right_after_the_upgrade(pg_url):
    async def upgrade():
        conn = await asyncpg.connect(pg_url)
        try:
            # the database as version 8 left it, with one key
            await conn.execute("CREATE TABLE alertd_schema (version INTEGER NOT NULL)")
            for script in MIGRATIONS[:8]:
                await conn.execute(script)
            await conn.execute("INSERT INTO alertd_schema (version) VALUES (8)")
            await conn.execute("INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES ('old', 'ak', 'h', 1)")
            assert await migrate(conn) == (len(MIGRATIONS), len(MIGRATIONS) - 8)
            return await conn.fetchval("SELECT scopes FROM api_keys WHERE key_hash = 'h'")
        finally:
            await conn.close()
    assert run(upgrade()) == "admin"
