"""API keys: stored only as hashes (alertd/api/auth.py makes and checks them)."""
from __future__ import annotations

from .connection import Table


class Keys(Table):
    async def create(self, name: str, prefix: str, key_hash: str, now: float, scopes: str = "admin") -> int:
        """``scopes``: space-separated, as alertd.api.scopes.parse returns them."""
        return await self.fetchval("INSERT INTO api_keys (name, prefix, key_hash, created_at, scopes)"
                                   " VALUES (?, ?, ?, ?, ?) RETURNING id", name, prefix, key_hash, now, scopes)

    async def find(self, key_hash: str):
        return await self.fetchrow("SELECT id, name, key_hash, revoked_at, scopes FROM api_keys WHERE key_hash = ?",
                                   key_hash)

    async def list(self) -> list:
        return await self.fetch("SELECT id, name, prefix, created_at, last_used_at, revoked_at, scopes FROM api_keys"
                                " ORDER BY id")

    async def revoke(self, key_id: int, now: float) -> bool:
        return await self.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                  now, key_id) == 1

    async def touch(self, key_id: int, now: float) -> None:
        await self.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", now, key_id)
