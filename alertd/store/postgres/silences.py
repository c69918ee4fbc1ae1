"""Silences: stored matchers that hold notifications back."""
from __future__ import annotations

from ..queries import check_matcher
from .connection import Table


class Silences(Table):
    """Every notification reads the silences in force (Silences.active): a node keeps the last
    read, and reads again once PostgreSQL says the table changed (changes.py)."""

    def __init__(self, db):
        super().__init__(db)
        self._kept: tuple[tuple[int, int], float, list] | None = None  # (tag, read at, rows)

    async def add(self, silence_id: str, matcher: str, value: str, starts_at: float, ends_at: float,
                  reason: str, now: float, created_by: str | None = None) -> None:
        check_matcher(matcher)
        await self.execute("INSERT INTO silences (silence_id, matcher, value, starts_at, ends_at, reason, created_at,"
                           " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           silence_id, matcher, value, starts_at, ends_at, reason, now, created_by)
        self.db.changes.changed("silences")

    async def active(self, now: float) -> list:
        """Silences in force at ``now`` or later (not ended, not removed), oldest first."""
        kept = self._kept
        if kept is not None and now >= kept[1] and self.db.changes.current("silences", kept[0]):
            return [r for r in kept[2] if r["ends_at"] > now]  # those over since the read drop out
        tag = self.db.changes.tag("silences")
        rows = await self.fetch(
            "SELECT * FROM silences WHERE ends_at > ? AND ended_at IS NULL ORDER BY created_at, silence_id", now)
        self._kept = None if tag is None else (tag, now, rows)
        return rows

    async def end(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when unknown or already over. The row stays as the trace."""
        done = await self.execute("UPDATE silences SET ended_at = ? WHERE silence_id = ? AND ended_at IS NULL"
                                  " AND ends_at > ?", now, silence_id, now) == 1
        self.db.changes.changed("silences")
        return done
