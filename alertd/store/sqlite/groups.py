"""Rule groups waiting for their group_wait to pass (see alertd/engine/grouping.py)."""
from __future__ import annotations

import json
from typing import Any

from .connection import Row, Table


class RuleGroups(Table):
    def add_event(self, rule_id: str, group_key: str, resolved: bool, event: Any, event_id: int | None,
                  now: float, wait: float) -> tuple[int, int]:
        """Add an event to the rule's open group with that key, or open one due at
        ``now + wait``. One transaction: an accepted event is stored before the
        webhook is answered. Returns (group id, events in it now)."""
        with self.tx() as c:
            row = c.execute("SELECT group_id FROM rule_groups WHERE rule_id = ? AND group_key = ? AND state = 'pending'"
                            " ORDER BY group_id DESC LIMIT 1", (rule_id, group_key)).fetchone()
            if row is None:
                group_id = c.execute(
                    "INSERT INTO rule_groups (rule_id, group_key, resolved, first_at, due_at, state)"
                    " VALUES (?, ?, ?, ?, ?, 'pending')", (rule_id, group_key, int(resolved), now, now + wait)).lastrowid
            else:
                group_id = row[0]
            c.execute("INSERT INTO rule_group_events (group_id, event_id, event) VALUES (?, ?, ?)",
                      (group_id, event_id, json.dumps(event, default=str)))
            count = c.execute("UPDATE rule_groups SET events = events + 1 WHERE group_id = ? RETURNING events",
                              (group_id,)).fetchone()[0]
        return group_id, count

    def claim_due(self, now: float, limit: int = 100) -> list[Row]:
        """Due groups, marked 'sending' so that events arriving meanwhile open a new group."""
        with self.tx() as c:
            rows = c.execute("SELECT * FROM rule_groups WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?",
                             (now, limit)).fetchall()
            if rows:
                marks = ",".join("?" * len(rows))
                c.execute(f"UPDATE rule_groups SET state = 'sending' WHERE group_id IN ({marks})",
                          [r["group_id"] for r in rows])
            return rows

    def release_sending(self) -> int:
        """At start nothing is being sent: a group left 'sending' by a stop is due again."""
        with self.tx() as c:
            return c.execute("UPDATE rule_groups SET state = 'pending' WHERE state = 'sending'").rowcount

    def events_of(self, group_id: int) -> list[tuple[int | None, Any]]:
        """(event id, event) of a group, in arrival order."""
        return [(r[0], json.loads(r[1])) for r in self.q(
            "SELECT event_id, event FROM rule_group_events WHERE group_id = ? ORDER BY id", (group_id,))]

    def trigger_of(self, group_id: int) -> int | None:
        """The trigger a group was sent as, if it was (a stop between the two writes)."""
        row = self.q("SELECT trigger_id FROM triggers WHERE group_id = ?", (group_id,)).fetchone()
        return row[0] if row else None

    def mark_sent(self, group_id: int, now: float) -> None:
        """Done. The events themselves go: the events table keeps every payload as received."""
        with self.tx() as c:
            c.execute("UPDATE rule_groups SET state = 'sent', done_at = ? WHERE group_id = ?", (now, group_id))
            c.execute("DELETE FROM rule_group_events WHERE group_id = ?", (group_id,))

    def retry_later(self, group_id: int, due_at: float) -> None:
        with self.tx() as c:
            c.execute("UPDATE rule_groups SET state = 'pending', due_at = ? WHERE group_id = ?", (due_at, group_id))

    def next_due_at(self) -> float | None:
        return self.q("SELECT MIN(due_at) FROM rule_groups WHERE state = 'pending'").fetchone()[0]

    def get_groups(self, rule_id: str | None = None) -> list[Row]:
        sql, args = "SELECT * FROM rule_groups", ()
        if rule_id is not None:
            sql, args = sql + " WHERE rule_id = ?", (rule_id,)
        return self.q(sql + " ORDER BY group_id", args).fetchall()
