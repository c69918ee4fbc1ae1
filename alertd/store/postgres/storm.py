"""Storm control's SQL on PostgreSQL (alertd/store/sqlite/storm.py is SQLite's).

Per-number limits hold across nodes because every admission for a number takes
``lock_number`` before it counts: three nodes admitting the same number's call at once
take turns, and each counts what the ones before it committed.
"""
from __future__ import annotations

import json

import asyncpg

from .claims import lock_key
from .connection import Conn, Table

SUMMARY_SOURCE = "alertd:summary"  # the source of a summary's trigger and log row


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


class Storm(Table):
    async def counted_times(self, number: str, channel: str, since: float, until: float,
                            exclude_log_id: int = 0, *, tx: Conn | None = None) -> list[float]:
        """As alertd/store/sqlite/storm.py's: what counts against ``number``'s limit in (since,
        until]. In ``tx`` (the transaction that stores what the count decides) the number is
        locked first, so nodes admitting the same number's calls at once take turns."""
        if tx is not None:
            await lock_number(tx.raw, number)
            return await counted_times(tx.raw, number, channel, since, until, exclude_log_id)
        async with self.db.pool.acquire() as conn:
            return await counted_times(conn, number, channel, since, until, exclude_log_id)

    @staticmethod
    async def lock(tx: Conn, number: str) -> None:
        """Hold ``number``'s admissions until ``tx`` ends: take it before counting."""
        await lock_number(tx.raw, number)

    @staticmethod
    async def open_summary(tx: Conn, number: str, channel: str, since: float):
        """The summary to ``number`` on ``channel`` that more alerts can still fold into."""
        return await tx.fetchrow(
            "SELECT l.log_id, l.params FROM logs l JOIN outbox o ON o.log_id = l.log_id"
            " WHERE l.to_number = ? AND l.send_at > ? AND l.source = ? AND o.channel = ?"
            " AND o.state = 'pending' AND o.leased_until IS NULL ORDER BY l.log_id DESC LIMIT 1",
            number, since, SUMMARY_SOURCE, channel)

    @staticmethod
    async def create_summary(tx: Conn, number: str, channel: str, message: str, params: dict,
                             due_at: float, now: float) -> int:
        """A summary: its own trigger, a log row 'scheduled' and an outbox item due at
        ``due_at``, the worker's from the start (no lease). Returns its log id."""
        trigger_id = await tx.fetchval("INSERT INTO triggers (created_at, source) VALUES (?, ?) RETURNING trigger_id",
                                       now, SUMMARY_SOURCE)
        log_id = await tx.fetchval(
            "INSERT INTO logs (trigger_id, created_at, source, to_number, type, message, params, status,"
            " attempt, step, send_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'scheduled', 1, 0, ?) RETURNING log_id",
            trigger_id, now, SUMMARY_SOURCE, number, channel, message, json.dumps(params), due_at)
        await tx.execute("INSERT INTO outbox (log_id, channel, state, next_attempt_at, created_at)"
                         " VALUES (?, ?, 'pending', ?, ?)", log_id, channel, due_at, now)
        return log_id

    async def postpone(self, log_id: int, outbox_id: int, due_at: float) -> None:
        """A claimed summary waits until ``due_at``: unleased, due again then, counted then."""
        async with self.tx() as c:
            await c.execute("UPDATE outbox SET next_attempt_at = ?, leased_until = NULL, claimed_by = NULL"
                            " WHERE id = ?", due_at, outbox_id)
            await c.execute("UPDATE logs SET send_at = ? WHERE log_id = ?", due_at, log_id)

    @staticmethod
    async def update_summary(tx: Conn, log_id: int, message: str, params: dict) -> None:
        await tx.execute("UPDATE logs SET message = ?, params = ? WHERE log_id = ?", message, json.dumps(params),
                         log_id)

    async def set_summary(self, log_id: int, message: str, params: dict) -> None:
        """update_summary in a transaction of its own."""
        async with self.tx() as c:
            await self.update_summary(c, log_id, message, params)

    async def folded_into(self, summary_log_id: int) -> list:
        """The log rows folded into a summary, oldest first."""
        return await self.fetch("SELECT l.* FROM summary_folds f JOIN logs l ON l.log_id = f.log_id"
                                " WHERE f.summary_log_id = ? ORDER BY l.log_id", summary_log_id)

    async def drop_summary(self, log_id: int, outbox_id: int, silence_id: str | None) -> None:
        """A summary with nothing left to tell: 'silenced' (by ``silence_id``) or 'cancelled'."""
        async with self.tx() as c:
            await c.execute("UPDATE outbox SET state = 'cancelled', leased_until = NULL, claimed_by = NULL"
                            " WHERE id = ?", outbox_id)
            await c.execute("UPDATE logs SET status = ?, silence_id = ? WHERE log_id = ?",
                            "silenced" if silence_id else "cancelled", silence_id, log_id)
