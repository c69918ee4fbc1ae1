"""Which PostgreSQL driver serves alertd's hot path better: psycopg 3 (+psycopg_pool) or asyncpg.

The hot path's write: one short transaction that inserts a log row and its outbox
items (one per channel) and commits. Measured, on one throwaway server with
durable commits (fsync on, synchronous_commit on), on uvloop like the daemon:

- ``3 stmts``: BEGIN, INSERT the log row RETURNING its id, INSERT the outbox items, COMMIT
  (four round trips);
- ``1 stmt``: the same as one statement (a data-modifying CTE) in autocommit: one round trip;
- ``group 8``: group commit, eight such writes in one transaction (what concurrent
  requests share when they reach their write in the same turn of the loop);
- psycopg only, ``pipeline``: the four statements of ``3 stmts`` sent in pipeline mode.

Each at 1 client (latency: the median of one write) and at 32 concurrent clients
over a pool of 10 connections (writes per second, and the median latency). Run:
``python bench/pg_driver.py [--writes N]``.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import asyncpg  # noqa: E402
import uvloop  # noqa: E402

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool
except ImportError:  # not a dependency of alertd: only this comparison needs it
    sys.exit("bench/pg_driver.py compares with psycopg 3: pip install 'psycopg[binary]' psycopg_pool")

import pg  # noqa: E402

SCHEMA = """
CREATE TABLE logs (log_id BIGSERIAL PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, to_number TEXT NOT NULL,
                   type TEXT NOT NULL, message TEXT, params TEXT NOT NULL, status TEXT NOT NULL);
CREATE INDEX logs_to ON logs (to_number, created_at);
CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, log_id BIGINT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL,
                     next_attempt_at DOUBLE PRECISION NOT NULL, leased_until DOUBLE PRECISION,
                     created_at DOUBLE PRECISION NOT NULL);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
"""
LOG = ("INSERT INTO logs (created_at, to_number, type, message, params, status)"
       " VALUES ($1, $2, 'both', $3, '{}', 'queued') RETURNING log_id")
ITEMS = ("INSERT INTO outbox (log_id, channel, state, next_attempt_at, leased_until, created_at)"
         " SELECT $1, c, 'pending', $2::float8, $2::float8 + 30, $2::float8 FROM unnest($3::text[]) AS c")
ONE = ("WITH l AS (INSERT INTO logs (created_at, to_number, type, message, params, status)"
       " VALUES ($1, $2, 'both', $3, '{}', 'queued') RETURNING log_id)"
       " INSERT INTO outbox (log_id, channel, state, next_attempt_at, leased_until, created_at)"
       " SELECT l.log_id, c, 'pending', $1::float8, $1::float8 + 30, $1::float8 FROM l, unnest($4::text[]) AS c RETURNING log_id, id")
CHANNELS = ["call", "sms"]


def psy(sql: str) -> str:
    """asyncpg's $n placeholders as psycopg's %s (each used in order here, so a plain rewrite does)."""
    for n in range(9, 0, -1):
        sql = sql.replace(f"${n}", "%s")
    return sql


# --- asyncpg ------------------------------------------------------------------------
async def apg_three(conn) -> None:
    now = time.time()
    async with conn.transaction():
        log_id = await conn.fetchval(LOG, now, "+15551230001", "disk full")
        await conn.execute(ITEMS, log_id, now, CHANNELS)


async def apg_one(conn) -> None:
    now = time.time()
    await conn.fetch(ONE, now, "+15551230001", "disk full", CHANNELS)


async def apg_group(conn, n: int = 8) -> None:
    now = time.time()
    async with conn.transaction():
        for _ in range(n):
            await conn.fetch(ONE, now, "+15551230001", "disk full", CHANNELS)


# --- psycopg ------------------------------------------------------------------------
P_LOG = psy(LOG)
P_ITEMS = ("INSERT INTO outbox (log_id, channel, state, next_attempt_at, leased_until, created_at)"
           " SELECT %(id)s, c, 'pending', %(now)s, %(now)s::float8 + 30, %(now)s FROM unnest(%(ch)s::text[]) AS c")
P_ONE = ("WITH l AS (INSERT INTO logs (created_at, to_number, type, message, params, status)"
         " VALUES (%(now)s, %(to)s, 'both', %(msg)s, '{}', 'queued') RETURNING log_id)"
         " INSERT INTO outbox (log_id, channel, state, next_attempt_at, leased_until, created_at)"
         " SELECT l.log_id, c, 'pending', %(now)s, %(now)s::float8 + 30, %(now)s FROM l, unnest(%(ch)s::text[]) AS c"
         " RETURNING log_id, id")


async def psy_three(conn) -> None:
    now = time.time()
    async with conn.transaction():
        cur = await conn.execute(P_LOG, (now, "+15551230001", "disk full"))
        log_id = (await cur.fetchone())[0]
        await conn.execute(P_ITEMS, {"id": log_id, "now": now, "ch": CHANNELS})


async def psy_one(conn) -> None:
    now = time.time()
    cur = await conn.execute(P_ONE, {"now": now, "to": "+15551230001", "msg": "disk full", "ch": CHANNELS})
    await cur.fetchall()


async def psy_group(conn, n: int = 8) -> None:
    now = time.time()
    async with conn.transaction():
        for _ in range(n):
            cur = await conn.execute(P_ONE, {"now": now, "to": "+15551230001", "msg": "disk full", "ch": CHANNELS})
            await cur.fetchall()


async def psy_pipeline(conn) -> None:
    # the log id is needed by the second insert, so the pipeline carries the one-statement form
    # inside an explicit transaction: BEGIN, the write and COMMIT leave in one flush
    now = time.time()
    async with conn.pipeline():
        async with conn.transaction():
            cur = await conn.execute(P_ONE, {"now": now, "to": "+15551230001", "msg": "disk full", "ch": CHANNELS})
    await cur.fetchall()


# --- the runs -----------------------------------------------------------------------
async def run(acquire, write, writes: int, clients: int) -> tuple[float, float]:
    """(writes per second, median latency in ms) of ``writes`` writes over ``clients`` clients."""
    latencies: list[float] = []
    per_client = writes // clients

    async def client():
        for _ in range(per_client):
            t0 = time.perf_counter()
            async with acquire() as conn:
                await write(conn)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    return per_client * clients / elapsed, statistics.median(latencies) * 1000


async def bench(url: str, writes: int) -> list[tuple[str, str, int, float, float]]:
    conn = await asyncpg.connect(url)
    await conn.execute(SCHEMA)
    await conn.close()
    results = []
    apool = await asyncpg.create_pool(url, min_size=10, max_size=10)
    ppool = AsyncConnectionPool(url, min_size=10, max_size=10, open=False,
                                kwargs={"autocommit": True, "prepare_threshold": 0})
    await ppool.open(wait=True)
    cases = [("asyncpg", "3 stmts", apg_three), ("asyncpg", "1 stmt", apg_one), ("asyncpg", "group 8", apg_group),
             ("psycopg", "3 stmts", psy_three), ("psycopg", "1 stmt", psy_one), ("psycopg", "group 8", psy_group),
             ("psycopg", "pipeline", psy_pipeline)]
    for clients in (1, 32):
        for driver, shape, write in cases:
            acquire = apool.acquire if driver == "asyncpg" else ppool.connection
            n = writes // 8 if shape == "group 8" else writes
            await run(acquire, write, max(clients, n // 10), clients)  # warm: prepared statements, caches
            rates, medians = [], []
            for _ in range(3):
                rate, median = await run(acquire, write, n, clients)
                rates.append(rate * (8 if shape == "group 8" else 1))
                medians.append(median)
            results.append((driver, shape, clients, statistics.median(rates), statistics.median(medians)))
            print(f"  {driver:8} {shape:9} clients={clients:<3} {results[-1][3]:8.0f} rows/s"
                  f"  median {results[-1][4]:6.2f} ms", flush=True)
    await apool.close()
    await ppool.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=2000, help="writes per round (default 2000)")
    args = parser.parse_args()
    server = pg.start_server({"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"})
    try:
        url = server.create_database()
        print(f"PostgreSQL driver bench: {args.writes} writes a round, median of 3 rounds, psycopg "
              f"{psycopg.__version__}, asyncpg {asyncpg.__version__}")
        uvloop.run(bench(url, args.writes))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
