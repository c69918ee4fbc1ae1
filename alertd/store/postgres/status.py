"""Status callbacks: each one the provider sends is kept, with when it arrived; the log
row and its history are written in one transaction (as on SQLite)."""
from __future__ import annotations

from collections import defaultdict

from .connection import Table


class StatusCallbacks(Table):
    async def record(self, log_id: int, channel: str, status: str, at: float, *, sid: str | None = None,
                     error_code: int | None = None, update: bool = True, provider_status: str | None = None) -> None:
        """Keep one status callback of ``log_id``; with ``update``, it also becomes the
        row's ``{channel}_status``, and ``sid`` its sid when none is stored yet. ``provider_status``:
        the provider's own word, kept in the history beside alertd's."""
        column = "call" if channel == "call" else "sms"
        async with self.tx() as c:
            if update:
                await c.execute(f"UPDATE logs SET {column}_status = ?, {column}_sid = COALESCE({column}_sid, ?)"
                                " WHERE log_id = ?", status, sid, log_id)
            await c.execute("INSERT INTO status_callbacks (log_id, channel, status, at, error_code, provider_status)"
                            " VALUES (?, ?, ?, ?, ?, ?)", log_id, column, status, at, error_code, provider_status)

    async def seen(self, log_id: int, channel: str, status: str) -> bool:
        """Whether ``log_id`` already had a callback of ``status`` on ``channel``."""
        return await self.fetchval("SELECT EXISTS (SELECT 1 FROM status_callbacks WHERE log_id = ? AND channel = ?"
                                   " AND status = ?)", log_id, "call" if channel == "call" else "sms", status)

    async def history(self, log_ids: list[int]) -> dict[int, list]:
        """log id -> its status callbacks in the order they arrived."""
        out: dict[int, list] = defaultdict(list)
        for r in await self.fetch("SELECT * FROM status_callbacks WHERE log_id = ANY(?::bigint[]) ORDER BY at, id",
                                  list(log_ids)):
            out[r["log_id"]].append(r)
        return dict(out)
