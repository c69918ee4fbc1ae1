"""A node's membership loop on a real PostgreSQL: leading, handing over, stepping down
while the database is unreachable. Ticks are called by hand; the database's clock and
the node's monotonic clock are moved by the test, never waited for."""
from __future__ import annotations

import asyncio

import asyncpg

from alertd.runtime.cluster import ClusterNode
from alertd.store.postgres import cluster, migrate

T = 1_800_000_000.0


class Clocks:
    """One time for the database and every node's monotonic clock: moved by ``advance``."""

    def __init__(self):
        self.t = 0.0

    def db(self) -> float:
        return T + self.t

    def mono(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def run(url: str, body):
    async def main():
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            return await body(pool)
        finally:
            await pool.close()
    return asyncio.run(main())


def node(pool, name: str, clocks: Clocks, changes: list) -> ClusterNode:
    return ClusterNode(pool, name, 10, on_change=lambda leads: changes.append((name, leads)),
                       monotonic=clocks.mono, db_time=clocks.db)


def test_one_node_leads_and_another_takes_over_within_the_lease_when_it_dies(pg_url):
    async def body(pool):
        clocks, changes = Clocks(), []
        a, b = node(pool, "a", clocks, changes), node(pool, "b", clocks, changes)
        assert await a.tick() and not await b.tick()
        for _ in range(5):  # a renews every lease / 3: b never gets it
            clocks.advance(10 / 3)
            assert await a.tick() and not await b.tick()
        # a dies (no more ticks): b takes over once the lease has run out, not before
        clocks.advance(9.9)
        assert not await b.tick()
        clocks.advance(0.1)
        assert await b.tick() and b.term == 2
        assert changes == [("a", True), ("b", True)]
        async with pool.acquire() as conn:
            assert [(n["node_id"], n["leader"]) for n in await cluster.nodes(conn, at=clocks.db())] == [
                ("b", True), ("a", False)]
    run(pg_url, body)


def test_a_clean_stop_hands_over_at_once(pg_url):
    async def body(pool):
        clocks, changes = Clocks(), []
        a, b = node(pool, "a", clocks, changes), node(pool, "b", clocks, changes)
        await a.tick()
        await a.stop()
        assert await b.tick()
        assert changes == [("a", True), ("a", False), ("b", True)]
    run(pg_url, body)


def test_a_leader_cut_off_from_the_database_steps_down_before_its_lease_can_run_out(pg_server, pg_url):
    async def body(pool):
        clocks, changes = Clocks(), []
        a = node(pool, "a", clocks, changes)
        assert await a.tick()
        pg_server.halt()
        try:
            clocks.advance(5)
            assert await a.tick() and not a.reachable  # the lease still surely holds
            clocks.advance(4)  # 9 s after the renewal was sent: within the margin of 10 s
            assert not await a.tick()
            assert changes == [("a", True), ("a", False)]
        finally:
            pg_server.resume()
        assert await a.tick() and a.reachable  # back, and nobody else took it meanwhile
    run(pg_url, body)
