"""Follow-ups: retries of unanswered calls and escalation steps, due later (alertd/dispatch/followups.py)."""
from __future__ import annotations

from .connection import Row, Table


class Followups(Table):
    def add(self, trigger_id: int, kind: str, due_at: float, now: float, *, log_id: int | None = None,
            step: int | None = None) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO followups (trigger_id, kind, log_id, step, due_at, state, created_at)"
                             " VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                             (trigger_id, kind, log_id, step, due_at, now)).lastrowid

    def add_retry_once(self, trigger_id: int, log_id: int, due_at: float, now: float) -> bool:
        """A retry of the call ``log_id``, unless it already has one; True when added. Each
        unanswered call is placed again at most once, however many final callbacks it gets."""
        with self.tx() as c:
            return c.execute("INSERT INTO followups (trigger_id, kind, log_id, due_at, state, created_at)"
                             " SELECT ?, 'retry', ?, ?, 'pending', ? WHERE NOT EXISTS (SELECT 1 FROM followups"
                             " WHERE trigger_id = ? AND kind = 'retry' AND log_id = ?)",
                             (trigger_id, log_id, due_at, now, trigger_id, log_id)).rowcount == 1

    def claim(self, now: float, limit: int = 100) -> list[Row]:
        """Due follow-ups, marked done in the same transaction: each runs once,
        also when the daemon dies right after (at-most-once beats a double call)."""
        with self.tx() as c:
            rows = c.execute("SELECT * FROM followups WHERE state = 'pending' AND due_at <= ? ORDER BY due_at"
                             " LIMIT ?", (now, limit)).fetchall()
            if rows:
                marks = ",".join("?" * len(rows))
                c.execute(f"UPDATE followups SET state = 'done', done_at = ? WHERE id IN ({marks})",
                          (now, *[r["id"] for r in rows]))
            return rows

    def next_due_at(self) -> float | None:
        return self.q("SELECT MIN(due_at) FROM followups WHERE state = 'pending'").fetchone()[0]

    def of_trigger(self, trigger_id: int) -> list[Row]:
        return self.q("SELECT * FROM followups WHERE trigger_id = ? ORDER BY id", (trigger_id,)).fetchall()
