"""Silences: stored matchers that hold notifications back."""
from __future__ import annotations

from ..queries import check_matcher
from .changes import Kept
from .connection import Table


class Silences(Table):
    """Every notification reads the silences in force (Silences.active): a node keeps the last
    read, and reads again once PostgreSQL says the table changed (changes.py)."""

    def __init__(self, db):
        super().__init__(db)
        self._kept = Kept(db.changes, "silences")

    async def add(self, silence_id: str, matcher: str, value: str, starts_at: float, ends_at: float,
                  reason: str, now: float, created_by: str | None = None) -> None:
        check_matcher(matcher)
        await self.execute("INSERT INTO silences (silence_id, matcher, value, starts_at, ends_at, reason, created_at,"
                           " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           silence_id, matcher, value, starts_at, ends_at, reason, now, created_by)
        self._kept.changed()

    async def active(self, now: float) -> list:
        """Silences in force at ``now`` or later (not ended, not removed), oldest first."""
        async def fetch() -> tuple[float, list]:
            return now, await self.fetch(
                "SELECT * FROM silences WHERE ends_at > ? AND ended_at IS NULL ORDER BY created_at, silence_id", now)
        # a read made at or before now still holds (a clock set back reads again); those over since drop out
        _, rows = await self._kept.read("active", fetch, fits=lambda kept: kept[0] <= now)
        return [r for r in rows if r["ends_at"] > now]

    async def end(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when unknown or already over. The row stays as the trace."""
        done = await self.execute("UPDATE silences SET ended_at = ? WHERE silence_id = ? AND ended_at IS NULL"
                                  " AND ends_at > ?", now, silence_id, now) == 1
        self._kept.changed()
        return done
