"""On-call overrides: a contact takes a rotation's shift for a while."""
from __future__ import annotations

from .connection import Table


class Overrides(Table):
    async def add(self, rotation: str, contact: str, starts_at: float, ends_at: float, now: float) -> int:
        """Store an override; returns its id. The newest override in force wins."""
        return await self.fetchval(
            "INSERT INTO oncall_overrides (rotation, contact, starts_at, ends_at, created_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING override_id", rotation, contact, starts_at, ends_at, now)

    async def of_rotation(self, rotation: str, now: float) -> list:
        """The overrides of ``rotation`` that have not ended at ``now``, newest first."""
        return await self.fetch(
            "SELECT override_id, rotation, contact, starts_at, ends_at, created_at FROM oncall_overrides"
            " WHERE rotation = ? AND ends_at > ? ORDER BY override_id DESC", rotation, now)
