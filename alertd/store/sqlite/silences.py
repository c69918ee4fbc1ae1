"""Silences: stored matchers that hold notifications back (alertd/dispatch/silences.py)."""
from __future__ import annotations

from .connection import Row, Table

MATCHERS = ("rule_id", "source", "to")


class Silences(Table):
    def add(self, silence_id: str, matcher: str, value: str, starts_at: float, ends_at: float,
               reason: str, now: float, created_by: str | None = None) -> None:
        if matcher not in MATCHERS:
            raise ValueError(f"unknown matcher {matcher!r}")
        with self.tx() as c:
            c.execute("INSERT INTO silences (silence_id, matcher, value, starts_at, ends_at, reason, created_at,"
                      " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (silence_id, matcher, value, starts_at, ends_at, reason, now, created_by))

    def active(self, now: float) -> list[Row]:
        """Silences in force at ``now`` or later (not ended, not removed), oldest first."""
        return self.q(
            "SELECT * FROM silences WHERE ends_at > ? AND ended_at IS NULL ORDER BY created_at, silence_id",
            (now,)).fetchall()

    def end(self, silence_id: str, now: float) -> bool:
        """End a silence now; False when unknown or already over. The row stays as the trace."""
        with self.tx() as c:
            return c.execute("UPDATE silences SET ended_at = ? WHERE silence_id = ? AND ended_at IS NULL"
                             " AND ends_at > ?", (now, silence_id, now)).rowcount == 1

