"""Dashboard users and their sessions (session ids and passwords stored only as hashes)."""
from __future__ import annotations

from .connection import Table


class Users(Table):
    async def add(self, name: str, password_hash: str, now: float) -> bool:
        """False when the name is taken; then the password is replaced (``alertd users add`` resets it)."""
        async with self.tx() as c:
            if await c.execute("UPDATE users SET password_hash = ? WHERE name = ?", password_hash, name):
                # a new password ends every session opened with the old one
                await c.execute("DELETE FROM ui_sessions WHERE user_id = (SELECT user_id FROM users WHERE name = ?)",
                                name)
                return False
            # two nodes adding the same name at once: the second finds it taken, as on one box
            return bool(await c.fetchval("INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)"
                                         " ON CONFLICT (name) DO NOTHING RETURNING true", name, password_hash, now))

    async def get(self, name: str):
        return await self.fetchrow("SELECT * FROM users WHERE name = ?", name)

    async def add_session(self, session_hash: str, user_id: int, csrf: str, now: float, expires_at: float) -> None:
        async with self.tx() as c:
            await c.execute("DELETE FROM ui_sessions WHERE expires_at <= ?", now)
            await c.execute("INSERT INTO ui_sessions (session_hash, user_id, csrf, created_at, expires_at)"
                            " VALUES (?, ?, ?, ?, ?)", session_hash, user_id, csrf, now, expires_at)

    async def find_session(self, session_hash: str, now: float):
        return await self.fetchrow(
            "SELECT s.session_hash, s.csrf, s.user_id, u.name FROM ui_sessions s JOIN users u USING (user_id)"
            " WHERE s.session_hash = ? AND s.expires_at > ?", session_hash, now)

    async def end_session(self, session_hash: str) -> None:
        await self.execute("DELETE FROM ui_sessions WHERE session_hash = ?", session_hash)
