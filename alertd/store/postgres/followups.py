"""Follow-ups: retries of unanswered calls and escalation steps, due later.

Claimed with FOR UPDATE SKIP LOCKED and marked done in the same statement: each runs
on one node, once, also across a leader's death (claims.py)."""
from __future__ import annotations

from .claims import claim_followups
from .connection import Table


class Followups(Table):
    async def add(self, trigger_id: int, kind: str, due_at: float, now: float, *, log_id: int | None = None,
                  step: int | None = None) -> int:
        return await self.fetchval(
            "INSERT INTO followups (trigger_id, kind, log_id, step, due_at, state, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?) RETURNING id", trigger_id, kind, log_id, step, due_at, now)

    async def add_retry_once(self, trigger_id: int, log_id: int, due_at: float, now: float) -> bool:
        """A retry of the call ``log_id``, unless it already has one; True when added. Each
        unanswered call is placed again at most once, however many final callbacks it gets
        and on whichever nodes they arrive: the unique index of migration 9 decides."""
        return await self.execute(
            "INSERT INTO followups (trigger_id, kind, log_id, due_at, state, created_at)"
            " VALUES (?, 'retry', ?, ?, 'pending', ?) ON CONFLICT (trigger_id, log_id) WHERE kind = 'retry'"
            " DO NOTHING", trigger_id, log_id, due_at, now) == 1

    async def claim(self, now: float, limit: int = 100) -> list:
        """Due follow-ups at ``now``, each marked done as it is claimed, by one node."""
        async with self.db.pool.acquire() as conn:
            return await claim_followups(conn, limit, at=now)

    async def next_due_at(self) -> float | None:
        return await self.fetchval("SELECT MIN(due_at) FROM followups WHERE state = 'pending'")

    async def of_trigger(self, trigger_id: int) -> list:
        return await self.fetch("SELECT * FROM followups WHERE trigger_id = ? ORDER BY id", trigger_id)
