"""Several nodes on one database: who is up, who leads, which schedule ticks fired.

The leader is whoever holds the ``leader`` row of cluster_leases and renews it before
``expires_at``; a node that stops renewing (killed, cut off) loses it when it runs out
and another node takes it. Every time here is the database's (``at`` only replaces it
in tests, to move time without waiting), so two nodes with different clocks agree on
when a lease ran out. ``term`` grows at each change of holder: a number to tell one
reign from the next in the logs.

Work that must happen once is fenced by the lease inside the same statement
(``claim_tick``), so a leader that was paused past its lease cannot act on a decision
it took while it still led.
"""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from . import DB_NOW
from . import now_sql as _now

LEADER = "leader"


@dataclass(frozen=True)
class Lease:
    node_id: str
    term: int
    acquired_at: float
    expires_at: float


async def acquire(conn: asyncpg.Connection, node_id: str, lease: float, *, name: str = LEADER,
                  at: float | None = None) -> Lease | None:
    """Take or renew lease ``name`` for ``lease`` seconds; returns it when ``node_id``
    holds it now, None when another node does and its lease has not run out."""
    row = await conn.fetchrow(
        f"WITH t AS (SELECT {_now(4)} AS now)"
        " INSERT INTO cluster_leases AS l (name, node_id, term, acquired_at, expires_at)"
        " SELECT $1, $2, 1, t.now, t.now + $3 FROM t"
        " ON CONFLICT (name) DO UPDATE SET node_id = excluded.node_id,"
        " term = l.term + CASE WHEN l.node_id = excluded.node_id THEN 0 ELSE 1 END,"
        " acquired_at = CASE WHEN l.node_id = excluded.node_id THEN l.acquired_at ELSE excluded.acquired_at END,"
        " expires_at = excluded.expires_at"
        " WHERE l.node_id = excluded.node_id OR l.expires_at <= excluded.acquired_at"
        " RETURNING node_id, term, acquired_at, expires_at", name, node_id, lease, at)
    return Lease(**dict(row)) if row else None


async def release(conn: asyncpg.Connection, node_id: str, *, name: str = LEADER, at: float | None = None) -> None:
    """Give lease ``name`` up at once if ``node_id`` holds it (a clean stop hands over
    without making the others wait for it to run out)."""
    await conn.execute(f"UPDATE cluster_leases SET expires_at = {_now(3)} WHERE name = $1 AND node_id = $2",
                       name, node_id, at)


async def holder(conn: asyncpg.Connection, *, name: str = LEADER, at: float | None = None) -> Lease | None:
    """Who holds lease ``name`` now, or None when nobody does."""
    row = await conn.fetchrow("SELECT node_id, term, acquired_at, expires_at FROM cluster_leases"
                              f" WHERE name = $1 AND expires_at > {_now(2)}", name, at)
    return Lease(**dict(row)) if row else None


async def heartbeat(conn: asyncpg.Connection, node_id: str, *, at: float | None = None) -> float:
    """Record that ``node_id`` is up (`alertd cluster` lists it with this last contact);
    returns the database's time it recorded (the node measures its clock against it)."""
    return await conn.fetchval(
        f"WITH t AS (SELECT {_now(2)} AS now)"
        " INSERT INTO cluster_nodes (node_id, started_at, last_seen_at) SELECT $1, t.now, t.now FROM t"
        " ON CONFLICT (node_id) DO UPDATE SET last_seen_at = excluded.last_seen_at RETURNING last_seen_at",
        node_id, at)


async def now(conn: asyncpg.Connection) -> float:
    """The database's clock (epoch seconds)."""
    return await conn.fetchval(f"SELECT {DB_NOW}")


async def nodes(conn: asyncpg.Connection, within: float = 300, *, at: float | None = None) -> list[dict]:
    """The nodes seen in the last ``within`` seconds, most recent contact first: node_id,
    started_at, last_seen_at, ago (seconds since the last contact) and leader (bool)."""
    rows = await conn.fetch(
        f"WITH t AS (SELECT {_now(2)} AS now)"
        " SELECT n.node_id, n.started_at, n.last_seen_at, t.now - n.last_seen_at AS ago,"
        " COALESCE(l.node_id = n.node_id AND l.expires_at > t.now, false) AS leader"
        " FROM cluster_nodes n CROSS JOIN t LEFT JOIN cluster_leases l ON l.name = $3"
        " WHERE n.last_seen_at >= t.now - $1 ORDER BY n.last_seen_at DESC, n.node_id", within, at, LEADER)
    return [dict(r) for r in rows]


async def claim_tick(conn: asyncpg.Connection, rule_id: str, scheduled_at: float, node_id: str, *,
                     at: float | None = None) -> bool:
    """True once per (rule, scheduled time) across the cluster, and only to the node that
    leads at that moment: the caller fires the tick only on True."""
    done = await conn.fetchval(
        f"WITH t AS (SELECT {_now(4)} AS now)"
        " INSERT INTO schedule_ticks (rule_id, scheduled_at, fired_at, node_id) SELECT $1, $2, t.now, $3 FROM t"
        " WHERE EXISTS (SELECT 1 FROM cluster_leases WHERE name = $5 AND node_id = $3 AND expires_at > t.now)"
        " ON CONFLICT (rule_id, scheduled_at) DO NOTHING RETURNING true", rule_id, scheduled_at, node_id, at, LEADER)
    return bool(done)


async def last_tick(conn: asyncpg.Connection, rule_id: str) -> float | None:
    """The latest scheduled time of ``rule_id`` that fired (a new leader catches up from it)."""
    return await conn.fetchval("SELECT MAX(scheduled_at) FROM schedule_ticks WHERE rule_id = $1", rule_id)
