"""Several nodes on one PostgreSQL: the lease, the registry, claims and per-key decisions,
against a real server. Time moves by passing ``at`` (the database's clock otherwise)."""
from __future__ import annotations

import asyncio

import asyncpg

from alertd.store.postgres import cluster, migrate
from alertd.store.postgres.claims import claim_followups, claim_outbox, extend_claims, lock_key
from alertd.store.postgres.storm import counted_times, lock_number

T = 1_800_000_000.0  # a fixed "now" for the tests that move time themselves


def run(url: str, body):
    """Run ``body(connect)`` on a migrated database; ``connect()`` opens a node's connection."""
    async def main():
        conns: list[asyncpg.Connection] = []

        async def connect() -> asyncpg.Connection:
            conns.append(await asyncpg.connect(url))
            return conns[-1]
        try:
            await migrate(await connect())
            return await body(connect)
        finally:
            for c in conns:
                await c.close()
    return asyncio.run(main())


def test_one_node_leads_until_its_lease_runs_out_then_another_takes_over(pg_url):
    async def body(connect):
        a, b = await connect(), await connect()
        first = await cluster.acquire(a, "a", 10, at=T)
        assert (first.node_id, first.term, first.expires_at) == ("a", 1, T + 10)
        assert await cluster.acquire(b, "b", 10, at=T + 5) is None
        renewed = await cluster.acquire(a, "a", 10, at=T + 8)  # renewing keeps the reign
        assert (renewed.term, renewed.acquired_at, renewed.expires_at) == (1, T, T + 18)
        assert await cluster.acquire(b, "b", 10, at=T + 17.9) is None
        taken = await cluster.acquire(b, "b", 10, at=T + 18)
        assert (taken.node_id, taken.term, taken.acquired_at) == ("b", 2, T + 18)
        assert await cluster.acquire(a, "a", 10, at=T + 19) is None  # the old leader comes back: not its turn
        assert (await cluster.holder(a, at=T + 19)).node_id == "b"
        assert await cluster.holder(a, at=T + 28) is None  # b stopped renewing too: nobody leads
    run(pg_url, body)


def test_the_lease_runs_on_the_databases_clock_not_the_nodes(pg_url):
    async def body(connect):
        a = await connect()
        lease = await cluster.acquire(a, "a", 10)
        db_now = await a.fetchval("SELECT extract(epoch from clock_timestamp())::float8")
        assert abs(lease.expires_at - (db_now + 10)) < 5
        assert (await cluster.holder(a)).node_id == "a"
        assert await cluster.holder(a, at=db_now + 11) is None
    run(pg_url, body)


def test_a_clean_stop_hands_the_lease_over_at_once(pg_url):
    async def body(connect):
        a, b = await connect(), await connect()
        await cluster.acquire(a, "a", 10, at=T)
        await cluster.release(b, "b", at=T + 1)  # only the holder can give it up
        assert await cluster.acquire(b, "b", 10, at=T + 1) is None
        await cluster.release(a, "a", at=T + 1)
        assert (await cluster.acquire(b, "b", 10, at=T + 1)).node_id == "b"
    run(pg_url, body)


def test_the_registry_lists_nodes_seen_lately_their_last_contact_and_the_leader(pg_url):
    async def body(connect):
        c = await connect()
        await cluster.heartbeat(c, "gone", at=T - 1000)
        await cluster.heartbeat(c, "a", at=T - 60)
        await cluster.heartbeat(c, "a", at=T - 20)
        await cluster.heartbeat(c, "b", at=T - 10)
        await cluster.acquire(c, "a", 30, at=T - 20)
        seen = await cluster.nodes(c, within=300, at=T)
        assert [(n["node_id"], n["started_at"], n["ago"], n["leader"]) for n in seen] == [
            ("b", T - 10, 10, False), ("a", T - 60, 20, True)]
        assert [n["leader"] for n in await cluster.nodes(c, at=T + 11)] == [False, False]  # a's lease ran out
    run(pg_url, body)


def test_a_schedule_tick_fires_once_across_a_handover_and_only_on_the_leader(pg_url):
    async def body(connect):
        a, b = await connect(), await connect()
        await cluster.acquire(a, "a", 10, at=T)
        assert await cluster.claim_tick(a, "backup", T, "a", at=T)
        assert not await cluster.claim_tick(a, "backup", T, "a", at=T + 0.1)
        assert not await cluster.claim_tick(b, "backup", T + 2, "b", at=T + 2)  # b does not lead
        # a dies; nobody leads from T+10 to T+14, when b takes over
        await cluster.acquire(b, "b", 10, at=T + 14)
        assert await cluster.last_tick(b, "backup") == T
        assert not await cluster.claim_tick(b, "backup", T, "b", at=T + 14)  # fired already, by a
        assert await cluster.claim_tick(b, "backup", T + 12, "b", at=T + 14)  # missed meanwhile: fires late, once
        assert not await cluster.claim_tick(a, "backup", T + 16, "a", at=T + 16)  # a, back, no longer leads
        assert await cluster.claim_tick(b, "backup", T + 16, "b", at=T + 16)
        ticks = await b.fetch("SELECT scheduled_at, node_id FROM schedule_ticks ORDER BY scheduled_at")
        assert [(r["scheduled_at"] - T, r["node_id"]) for r in ticks] == [(0, "a"), (12, "b"), (16, "b")]
    run(pg_url, body)


async def add_items(conn: asyncpg.Connection, n: int, due: float) -> list[int]:
    ids = []
    for i in range(n):
        log_id = await conn.fetchval(
            "INSERT INTO logs (trigger_id, created_at, to_number, type, params, status, send_at)"
            " VALUES (1, $1, $2, 'call', '{}', 'queued', $1) RETURNING log_id", due, f"+1555000{i:04d}")
        ids.append(await conn.fetchval("INSERT INTO outbox (log_id, channel, state, next_attempt_at, created_at)"
                                       " VALUES ($1, 'call', 'pending', $2, $2) RETURNING id", log_id, due))
    return ids


def test_three_nodes_claim_disjoint_outbox_items_and_a_dead_nodes_return_after_its_lease(pg_url):
    async def body(connect):
        a, b, c = await connect(), await connect(), await connect()
        ids = await add_items(a, 60, T)
        await add_items(a, 5, T + 100)  # not due yet
        claims = await asyncio.gather(*(claim_outbox(conn, name, 30, 25, at=T)
                                        for conn, name in ((a, "a"), (b, "b"), (c, "c"))))
        got = [{r["outbox_id"] for r in claim} for claim in claims]
        assert sum(len(g) for g in got) == len(set().union(*got))  # nobody holds an item another holds
        rest = await claim_outbox(c, "c", 30, 100, at=T + 1)
        assert set().union(*got, {r["outbox_id"] for r in rest}) == set(ids)  # and none is forgotten
        assert await claim_outbox(b, "b", 30, 100, at=T + 2) == []  # all leased
        # a dies holding its items; when their lease runs out b takes them
        back = await claim_outbox(b, "b", 30, 100, at=T + 30)
        assert got[0] <= {r["outbox_id"] for r in back}
        assert await extend_claims(a, "a", sorted(got[0]), 30, at=T + 31) == []  # a, back, holds nothing
        assert sorted(await extend_claims(b, "b", sorted(got[0]), 30, at=T + 31)) == sorted(got[0])
    run(pg_url, body)


def test_an_escalation_step_due_is_claimed_by_one_node_once(pg_url):
    async def body(connect):
        nodes = [await connect() for _ in range(3)]
        for i in range(30):
            await nodes[0].execute("INSERT INTO followups (trigger_id, kind, step, due_at, state, created_at)"
                                   " VALUES ($1, 'escalate', 1, $2, 'pending', $2)", i, T)
        claims = await asyncio.gather(*(claim_followups(n, 100, at=T) for n in nodes))
        ids = [f["id"] for claim in claims for f in claim]
        assert len(ids) == len(set(ids)) == 30
        assert all(f["state"] == "done" for claim in claims for f in claim)
        assert await claim_followups(nodes[1], 100, at=T + 60) == []
    run(pg_url, body)


def test_three_nodes_admitting_one_numbers_calls_at_once_give_at_most_the_limit(pg_url):
    number, limit, window = "+15551230001", 3, 600.0

    async def admit(conn: asyncpg.Connection) -> bool:
        """What storm control does per call: count the number's window, then send or hold."""
        async with conn.transaction():
            await lock_number(conn, number)
            counted = await counted_times(conn, number, "call", T - window, T)
            await conn.execute("SELECT pg_sleep(0.02)")  # widen the gap between counting and writing
            admitted = len(counted) < limit
            log_id = await conn.fetchval(
                "INSERT INTO logs (trigger_id, created_at, to_number, type, params, status, send_at)"
                " VALUES (1, $1, $2, 'call', '{}', $3, $1) RETURNING log_id",
                T, number, "queued" if admitted else "throttled")
            if admitted:
                await conn.execute("INSERT INTO outbox (log_id, channel, state, next_attempt_at, created_at)"
                                   " VALUES ($1, 'call', 'pending', $2, $2)", log_id, T)
            return admitted

    async def body(connect):
        nodes = [await connect() for _ in range(3)]

        async def node(conn):  # one connection runs one transaction at a time: two calls in a row
            return [await admit(conn), await admit(conn)]
        results = await asyncio.gather(*(node(n) for n in nodes))
        assert sum(ok for r in results for ok in r) == limit
        assert await nodes[0].fetchval("SELECT COUNT(*) FROM logs WHERE status = 'throttled'") == 6 - limit
    run(pg_url, body)


def test_the_same_alert_on_three_nodes_at_the_same_instant_rings_once(pg_url):
    async def fire(conn: asyncpg.Connection) -> bool:
        """What the engine does per event: read the rule's state for the key, flip it, notify on the flip."""
        async with conn.transaction():
            await lock_key(conn, "rule:disk-full", "fingerprint-1")
            firing = await conn.fetchval("SELECT firing FROM rule_state WHERE rule_id = $1 AND dedup_key = $2",
                                         "disk-full", "fingerprint-1")
            if firing:
                return False
            await conn.execute("INSERT INTO rule_state (rule_id, dedup_key, firing, since) VALUES ($1, $2, 1, $3)"
                               " ON CONFLICT (rule_id, dedup_key) DO UPDATE SET firing = 1, since = $3",
                               "disk-full", "fingerprint-1", T)
            await conn.execute("INSERT INTO triggers (created_at, rule_id) VALUES ($1, 'disk-full')", T)
            return True

    async def body(connect):
        nodes = [await connect() for _ in range(3)]
        assert sorted(await asyncio.gather(*(fire(n) for n in nodes))) == [False, False, True]
        assert await nodes[0].fetchval("SELECT COUNT(*) FROM triggers") == 1
    run(pg_url, body)
