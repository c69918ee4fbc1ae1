"""Dashboard users and their sessions (session ids and passwords stored only as hashes)."""
from __future__ import annotations

from .connection import Row, Table


class Users(Table):
    def add(self, name: str, password_hash: str, now: float) -> bool:
        """False when the name is taken; then the password is replaced (``alertd users add`` resets it)."""
        with self.tx() as c:
            changed = c.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)).rowcount
            if changed:
                # a new password ends every session opened with the old one
                c.execute("DELETE FROM ui_sessions WHERE user_id = (SELECT user_id FROM users WHERE name = ?)",
                          (name,))
                return False
            c.execute("INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)",
                      (name, password_hash, now))
            return True

    def get(self, name: str) -> Row | None:
        return self.q("SELECT * FROM users WHERE name = ?", (name,)).fetchone()

    def add_session(self, session_hash: str, user_id: int, csrf: str, now: float, expires_at: float) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM ui_sessions WHERE expires_at <= ?", (now,))
            c.execute("INSERT INTO ui_sessions (session_hash, user_id, csrf, created_at, expires_at)"
                      " VALUES (?, ?, ?, ?, ?)", (session_hash, user_id, csrf, now, expires_at))

    def find_session(self, session_hash: str, now: float) -> Row | None:
        return self.q(
            "SELECT s.session_hash, s.csrf, s.user_id, u.name FROM ui_sessions s JOIN users u USING (user_id)"
            " WHERE s.session_hash = ? AND s.expires_at > ?", (session_hash, now)).fetchone()

    def end_session(self, session_hash: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM ui_sessions WHERE session_hash = ?", (session_hash,))
