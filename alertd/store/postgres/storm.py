"""Storm control's SQL on PostgreSQL (alertd/store/storm.py is SQLite's).

Per-number limits hold across nodes because every admission for a number takes
``lock_number`` before it counts: three nodes admitting the same number's call at once
take turns, and each counts what the ones before it committed.
"""
from __future__ import annotations

import asyncpg

from .claims import lock_key


async def lock_number(conn: asyncpg.Connection, number: str) -> None:
    """Hold ``number``'s admissions until this transaction ends (call first, then count)."""
    await lock_key(conn, "storm", number)


async def counted_times(conn: asyncpg.Connection, number: str, channel: str, since: float, until: float,
                        exclude_log_id: int = 0) -> list[float]:
    """What counts against ``number``'s ``channel`` limit in (since, until], oldest first:
    the same rows as alertd/store/storm.py's counted_times (see there for which, and why)."""
    times = [r[0] for r in await conn.fetch(
        "SELECT l.send_at FROM logs l JOIN outbox o ON o.log_id = l.log_id"
        " WHERE l.to_number = $1 AND l.send_at > $2 AND l.send_at <= $3 AND l.attempt = 1"
        " AND o.channel = $4 AND o.state IN ('pending', 'sent') AND l.log_id != $5 ORDER BY l.send_at",
        number, since, until, channel, exclude_log_id)]
    late = await conn.fetchval(
        "SELECT COUNT(*) FROM logs l JOIN outbox o ON o.log_id = l.log_id"
        " WHERE l.to_number = $1 AND l.status IN ('queued', 'scheduled') AND l.send_at <= $2 AND l.attempt = 1"
        " AND o.channel = $3 AND o.state = 'pending' AND l.log_id != $4",
        number, since, channel, exclude_log_id)
    return times + [until] * late
