"""On-call overrides: a contact takes a rotation's shift for a while."""
from __future__ import annotations

from .connection import Row, Table


class Overrides(Table):
    def add(self, rotation: str, contact: str, starts_at: float, ends_at: float, now: float) -> int:
        """Store an override; returns its id. The newest override in force wins."""
        with self.tx() as c:
            return c.execute("INSERT INTO oncall_overrides (rotation, contact, starts_at, ends_at, created_at)"
                             " VALUES (?, ?, ?, ?, ?)", (rotation, contact, starts_at, ends_at, now)).lastrowid

    def of_rotation(self, rotation: str, now: float) -> list[Row]:
        """The overrides of ``rotation`` that have not ended at ``now``, newest first."""
        return self.q(
            "SELECT override_id, rotation, contact, starts_at, ends_at, created_at FROM oncall_overrides"
            " WHERE rotation = ? AND ends_at > ? ORDER BY override_id DESC", (rotation, now)).fetchall()
