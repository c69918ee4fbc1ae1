"""Every event a source received (webhook, poll, schedule), and what it fired."""
from __future__ import annotations

import json
from typing import Any

from .connection import Table


class Events(Table):
    def record(self, kind: str, name: str, payload: Any, now: float) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO events (received_at, kind, name, payload) VALUES (?, ?, ?, ?)",
                             (now, kind, name, json.dumps(payload, default=str))).lastrowid

    def set_fired(self, event_id: int, fired: list[str]) -> None:
        with self.tx() as c:
            c.execute("UPDATE events SET fired = ? WHERE event_id = ?", (json.dumps(fired), event_id))

    def get(self, event_id: int) -> dict | None:
        row = self.q("SELECT * FROM events WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        return {**dict(row), "payload": json.loads(row["payload"]),
                "fired": json.loads(row["fired"]) if row["fired"] else []}
