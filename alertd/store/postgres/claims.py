"""Work any node may do, each piece by one node: outbox items and follow-ups claimed
with ``FOR UPDATE SKIP LOCKED``, and decisions serialised per key.

Outbox items are leased: a node that dies holding some leaves them to the others when
the lease runs out (at-least-once: a send in flight at the death may repeat, as on one
box). Follow-ups (retries of an unanswered call, escalation steps) are marked done as
they are claimed, so each runs once across the cluster, or not at all if its node dies
in that instant (at-most-once beats a double call, as on one box).

A decision that reads rows and then writes depending on them (a number's storm limit,
a rule's dedup state) takes ``lock_key`` first in its transaction: on SQLite one
writer at a time made it safe; here the lock does, per key, so decisions on other keys
run in parallel.
"""
from __future__ import annotations

import asyncpg

from . import now_sql

_CLAIM = f"""
    WITH t AS (SELECT {now_sql(4)} AS now),
    due AS (
        SELECT o.id FROM outbox o, t
        WHERE o.state = 'pending' AND o.next_attempt_at <= COALESCE($5::float8, t.now)
          AND (o.leased_until IS NULL OR o.leased_until <= t.now)
        ORDER BY o.next_attempt_at, o.id LIMIT $3
        FOR UPDATE OF o SKIP LOCKED)
    UPDATE outbox o SET leased_until = t.now + $2, claimed_by = $1
    FROM due, t WHERE o.id = due.id
    RETURNING o.id AS outbox_id, o.log_id, o.channel, o.attempts, o.leased_until"""


async def claim_outbox(conn: asyncpg.Connection, node_id: str, lease: float, limit: int, *,
                       at: float | None = None, due: float | None = None) -> list[dict]:
    """Lease up to ``limit`` due outbox items to ``node_id`` for ``lease`` seconds, skipping
    any another node is claiming at this moment; oldest due first. Leases are on the
    database's clock (``at`` when a test moves time); an item is due when its
    ``next_attempt_at`` is at most ``due`` (the caller's time: a daemon's follows the
    database's clock, alertd/clock.py; ``at`` when None)."""
    return [dict(r) for r in await conn.fetch(_CLAIM, node_id, lease, limit, at, due)]


async def extend_claims(conn: asyncpg.Connection, node_id: str, outbox_ids: list[int], lease: float, *,
                        at: float | None = None) -> list[int]:
    """Renew ``node_id``'s lease on items it still holds; returns those ids (an item missing
    from the answer was taken back: its lease had run out and another node has it)."""
    rows = await conn.fetch(
        f"UPDATE outbox SET leased_until = {now_sql(4)} + $3 WHERE id = ANY($2::bigint[]) AND claimed_by = $1"
        f" AND state = 'pending' AND leased_until > {now_sql(4)} RETURNING id", node_id, outbox_ids, lease, at)
    return [r["id"] for r in rows]


async def claim_followups(conn: asyncpg.Connection, limit: int = 100, *, at: float | None = None) -> list[dict]:
    """Due follow-ups, marked done in the same statement: each is claimed by one node, once."""
    rows = await conn.fetch(
        f"WITH t AS (SELECT {now_sql(2)} AS now),"
        " due AS (SELECT f.id FROM followups f, t WHERE f.state = 'pending' AND f.due_at <= t.now"
        " ORDER BY f.due_at, f.id LIMIT $1 FOR UPDATE OF f SKIP LOCKED)"
        " UPDATE followups f SET state = 'done', done_at = t.now FROM due, t WHERE f.id = due.id"
        " RETURNING f.*", limit, at)
    return sorted((dict(r) for r in rows), key=lambda r: (r["due_at"], r["id"]))


async def lock_key(conn: asyncpg.Connection, kind: str, key: str) -> None:
    """Wait until no other transaction holds (kind, key), then hold it until this
    transaction ends. Must run inside a transaction. Two keys may share a hash: they then
    wait for each other, which costs time, never correctness."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", kind, key)
