"""The API's message templates (POST /api/v1/calls/templates and the dashboard)."""
from __future__ import annotations

import json

from .connection import Row, Table


def _template(row: Row) -> dict:
    return {"template_id": row["id"], "name": row["name"], **json.loads(row["fields"]),
            "created_at": row["created_at"]}


class Templates(Table):
    def create(self, template_id: str, name: str, fields: dict, now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO templates (id, name, fields, created_at) VALUES (?, ?, ?, ?)",
                      (template_id, name, json.dumps(fields), now))

    def get(self, template_id: str) -> dict | None:
        row = self.q("SELECT * FROM templates WHERE id = ?", (template_id,)).fetchone()
        return _template(row) if row else None

    def list(self) -> list[dict]:
        return [_template(r) for r in self.q("SELECT * FROM templates ORDER BY created_at, id")]

    def delete(self, template_id: str) -> bool:
        with self.tx() as c:
            return c.execute("DELETE FROM templates WHERE id = ?", (template_id,)).rowcount == 1

    def update(self, template_id: str, name: str, fields: dict) -> bool:
        """Replace a template's name and fields (its id and created_at stay); False when it does not exist."""
        with self.tx() as c:
            return c.execute("UPDATE templates SET name = ?, fields = ? WHERE id = ?",
                             (name, json.dumps(fields), template_id)).rowcount == 1
