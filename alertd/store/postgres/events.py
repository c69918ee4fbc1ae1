"""Every event a source received (webhook, poll, schedule), and what it fired."""
from __future__ import annotations

import json
from typing import Any

from .connection import Table


class Events(Table):
    async def record(self, kind: str, name: str, payload: Any, now: float) -> int:
        return await self.fetchval("INSERT INTO events (received_at, kind, name, payload) VALUES (?, ?, ?, ?)"
                                   " RETURNING event_id", now, kind, name, json.dumps(payload, default=str))

    async def set_fired(self, event_id: int, fired: list[str]) -> None:
        await self.execute("UPDATE events SET fired = ? WHERE event_id = ?", json.dumps(fired), event_id)

    async def get(self, event_id: int) -> dict | None:
        row = await self.fetchrow("SELECT * FROM events WHERE event_id = ?", event_id)
        if row is None:
            return None
        return {**dict(row), "payload": json.loads(row["payload"]),
                "fired": json.loads(row["fired"]) if row["fired"] else []}
