"""API keys: stored only as hashes (alertd/api/auth.py makes and checks them)."""
from __future__ import annotations

from .connection import Row, Table


class Keys(Table):
    def create(self, name: str, prefix: str, key_hash: str, now: float, scopes: str = "admin") -> int:
        """``scopes``: space-separated, as alertd.api.scopes.parse returns them."""
        with self.tx() as c:
            return c.execute("INSERT INTO api_keys (name, prefix, key_hash, created_at, scopes)"
                             " VALUES (?, ?, ?, ?, ?)", (name, prefix, key_hash, now, scopes)).lastrowid

    def find(self, key_hash: str) -> Row | None:
        return self.q("SELECT id, name, key_hash, revoked_at, scopes FROM api_keys WHERE key_hash = ?",
                      (key_hash,)).fetchone()

    def list(self) -> list[Row]:
        return self.q("SELECT id, name, prefix, created_at, last_used_at, revoked_at, scopes FROM api_keys"
                      " ORDER BY id").fetchall()

    def revoke(self, key_id: int, now: float) -> bool:
        with self.tx() as c:
            return c.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                             (now, key_id)).rowcount == 1

    def touch(self, key_id: int, now: float) -> None:
        self.q("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key_id))
