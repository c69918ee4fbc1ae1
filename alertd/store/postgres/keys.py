"""API keys: stored only as hashes (alertd/api/auth.py makes and checks them)."""
from __future__ import annotations

from .changes import Kept
from .connection import Table


KEPT = 1000  # keys kept per node; past that, all are forgotten and read again


class Keys(Table):
    """Every request looks its key up (Keys.find): a node keeps the rows it found, and reads
    again once PostgreSQL says the table changed (changes.py). A key not found is never kept,
    so nobody's guesses fill the memory."""

    def __init__(self, db):
        super().__init__(db)
        self._kept = Kept(db.changes, "api_keys", KEPT)

    async def create(self, name: str, prefix: str, key_hash: str, now: float, scopes: str = "admin") -> int:
        """``scopes``: space-separated, as alertd.api.scopes.parse returns them."""
        key_id = await self.fetchval("INSERT INTO api_keys (name, prefix, key_hash, created_at, scopes)"
                                     " VALUES (?, ?, ?, ?, ?) RETURNING id", name, prefix, key_hash, now, scopes)
        self._kept.changed()
        return key_id

    async def find(self, key_hash: str):
        return await self._kept.read(key_hash, lambda: self.fetchrow(
            "SELECT id, name, key_hash, revoked_at, scopes FROM api_keys WHERE key_hash = ?", key_hash),
            keep=lambda row: row is not None)

    async def list(self) -> list:
        return await self.fetch("SELECT id, name, prefix, created_at, last_used_at, revoked_at, scopes FROM api_keys"
                                " ORDER BY id")

    async def revoke(self, key_id: int, now: float) -> bool:
        done = await self.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                  now, key_id) == 1
        self._kept.changed()
        return done

    async def touch(self, key_id: int, now: float) -> None:
        await self.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", now, key_id)
