"""Rule groups waiting for their group_wait to pass (see alertd/engine/grouping.py)."""
from __future__ import annotations

import json
from typing import Any

from .claims import lock_key
from .connection import Table


class RuleGroups(Table):
    async def add_event(self, rule_id: str, group_key: str, resolved: bool, event: Any, event_id: int | None,
                        now: float, wait: float) -> tuple[int, int]:
        """Add an event to the rule's open group with that key, or open one due at
        ``now + wait``; one transaction. Returns (group id, events in it now). Two nodes
        adding to the same key at once join one group (the key is locked meanwhile)."""
        async with self.tx() as c:
            await lock_key(c.raw, f"group:{rule_id}", group_key)
            group_id = await c.fetchval("SELECT group_id FROM rule_groups WHERE rule_id = ? AND group_key = ?"
                                        " AND state = 'pending' ORDER BY group_id DESC LIMIT 1", rule_id, group_key)
            if group_id is None:
                group_id = await c.fetchval(
                    "INSERT INTO rule_groups (rule_id, group_key, resolved, first_at, due_at, state)"
                    " VALUES (?, ?, ?, ?, ?, 'pending') RETURNING group_id",
                    rule_id, group_key, int(resolved), now, now + wait)
            await c.execute("INSERT INTO rule_group_events (group_id, event_id, event) VALUES (?, ?, ?)",
                            group_id, event_id, json.dumps(event, default=str))
            count = await c.fetchval("UPDATE rule_groups SET events = events + 1 WHERE group_id = ? RETURNING events",
                                     group_id)
        return group_id, count

    async def claim_due(self, now: float, limit: int = 100) -> list:
        """Due groups, marked 'sending' (by one node) so events arriving meanwhile open a new group."""
        rows = await self.fetch(
            "UPDATE rule_groups g SET state = 'sending' FROM (SELECT group_id FROM rule_groups"
            " WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED) due"
            " WHERE g.group_id = due.group_id RETURNING g.*", now, limit)
        return sorted(rows, key=lambda r: (r["due_at"], r["group_id"]))

    async def release_sending(self) -> int:
        """At start nothing is being sent by this node: a group left 'sending' is due again.
        (On several nodes a group another node is sending this instant may be sent twice:
        the same at-least-once as an outbox item in flight at a death.)"""
        return await self.execute("UPDATE rule_groups SET state = 'pending' WHERE state = 'sending'")

    async def events_of(self, group_id: int) -> list[tuple[int | None, Any]]:
        """(event id, event) of a group, in arrival order."""
        return [(r[0], json.loads(r[1])) for r in await self.fetch(
            "SELECT event_id, event FROM rule_group_events WHERE group_id = ? ORDER BY id", group_id)]

    async def trigger_of(self, group_id: int) -> int | None:
        """The trigger a group was sent as, if it was (a stop between the two writes)."""
        return await self.fetchval("SELECT trigger_id FROM triggers WHERE group_id = ? LIMIT 1", group_id)

    async def mark_sent(self, group_id: int, now: float) -> None:
        """Done. The events themselves go: the events table keeps every payload as received."""
        async with self.tx() as c:
            await c.execute("UPDATE rule_groups SET state = 'sent', done_at = ? WHERE group_id = ?", now, group_id)
            await c.execute("DELETE FROM rule_group_events WHERE group_id = ?", group_id)

    async def retry_later(self, group_id: int, due_at: float) -> None:
        await self.execute("UPDATE rule_groups SET state = 'pending', due_at = ? WHERE group_id = ?", due_at, group_id)

    async def next_due_at(self) -> float | None:
        return await self.fetchval("SELECT MIN(due_at) FROM rule_groups WHERE state = 'pending'")

    async def get_groups(self, rule_id: str | None = None) -> list:
        if rule_id is None:
            return await self.fetch("SELECT * FROM rule_groups ORDER BY group_id")
        return await self.fetch("SELECT * FROM rule_groups WHERE rule_id = ? ORDER BY group_id", rule_id)
