"""Status callbacks: each one the provider sends is kept, with when it arrived.

The log row holds only the latest status of each channel; the trigger story
wants the whole sequence (initiated 10:00:01, ringing 10:00:03, ...). Both are
written in one transaction, so the row never shows a status its history lacks.
Retention deletes these rows with their log row (alertd/store/sqlite/retention.py).
"""
from __future__ import annotations

from collections import defaultdict

from .connection import Row, Table


class StatusCallbacks(Table):
    async def record(self, log_id: int, channel: str, status: str, at: float, *, sid: str | None = None,
                     error_code: int | None = None, update: bool = True, provider_status: str | None = None) -> None:
        """Keep one status callback of ``log_id``; with ``update``, it also becomes the
        row's ``{channel}_status``, and ``sid`` its sid when none is stored yet (a
        callback can arrive before the provider's answer to the create request).
        ``provider_status``: the provider's own word, kept in the history beside alertd's."""
        column = "call" if channel == "call" else "sms"
        with self.tx() as c:
            if update:
                c.execute(f"UPDATE logs SET {column}_status = ?, {column}_sid = COALESCE({column}_sid, ?)"
                          " WHERE log_id = ?", (status, sid, log_id))
            c.execute("INSERT INTO status_callbacks (log_id, channel, status, at, error_code, provider_status)"
                      " VALUES (?, ?, ?, ?, ?, ?)", (log_id, column, status, at, error_code, provider_status))

    async def seen(self, log_id: int, channel: str, status: str) -> bool:
        """Whether ``log_id`` already had a callback of ``status`` on ``channel``."""
        return self.q("SELECT 1 FROM status_callbacks WHERE log_id = ? AND channel = ? AND status = ?"
                      " LIMIT 1", (log_id, "call" if channel == "call" else "sms", status)).fetchone() is not None

    async def history(self, log_ids: list[int]) -> dict[int, list[Row]]:
        """log id -> its status callbacks in the order they arrived."""
        out: dict[int, list[Row]] = defaultdict(list)
        for start in range(0, len(log_ids), 500):  # SQLite's limit on ? in one statement
            chunk = log_ids[start:start + 500]
            for r in self.q(
                    f"SELECT * FROM status_callbacks WHERE log_id IN ({','.join('?' * len(chunk))}) ORDER BY at, id",
                    chunk):
                out[r["log_id"]].append(r)
        return dict(out)
