"""Silences: stored matchers that hold notifications back."""
from __future__ import annotations

from ..queries import check_matcher
from .connection import Table

class Silences(Table):
    async def add(self, silence_id: str, matcher: str, value: str, starts_at: float, ends_at: float,
                  reason: str, now: float, created_by: str | None = None) -> None:
        check_matcher(matcher)
        await self.execute("INSERT INTO silences (silence_id, matcher, value, starts_at, ends_at, reason, created_at,"
                           " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           silence_id, matcher, value, starts_at, ends_at, reason, now, created_by)

    async def active(self, now: float) -> list:
        """Silences in force at ``now`` or later (not ended, not removed), oldest first."""
        return await self.fetch(
            "SELECT * FROM silences WHERE ends_at > ? AND ended_at IS NULL ORDER BY created_at, silence_id", now)

    async def end(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when unknown or already over. The row stays as the trace."""
        return await self.execute("UPDATE silences SET ended_at = ? WHERE silence_id = ? AND ended_at IS NULL"
                                  " AND ends_at > ?", now, silence_id, now) == 1
