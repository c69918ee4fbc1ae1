"""Rule groups: events of a rule with group_by wait for group_wait, then go out as one notification.

What a group is and how its message is made: alertd/engine/grouping.py. This
module stores the events (Store.groups) and is the worker's timer that sends
due groups.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from ..clock import from_timestamp
from ..engine.evaluate import Decision
from ..engine.grouping import group_key, name_the_first_few
from ..rules.models import Rule
from .notification import failed

log = structlog.get_logger("alertd.engine")
RETRY_AFTER = 5.0  # seconds, when the database refused the send


class Groups:
    """The pending groups of every rule; a timer of the worker."""

    def __init__(self, runner, store, clock, *, wake, loaded):
        self.runner, self.store, self.clock, self.wake = runner, store, clock, wake
        self.loaded = loaded  # () -> bool: a rule set is live (before it, a group's rule would look deleted)
        self._released = False

    def add(self, rule: Rule, decision: Decision, event: Any, event_id: int | None, now: datetime) -> int:
        """Store the event in its group; returns the group id."""
        key = group_key(rule, event, decision.resolved)
        group_id, count = self.store.groups.add_event(rule.id, key, decision.resolved, event, event_id,
                                      now.timestamp(), rule.group_wait.total_seconds())
        log.info("event grouped", rule_id=rule.id, group_id=group_id, events=count, group_key=key)
        if count == 1:
            self.wake.poke()  # a new due time the loop does not know yet
        return group_id

    def next_due_at(self) -> float | None:
        return self.store.groups.next_due_at()

    async def run_due(self) -> int:
        """Send every due group; returns how many."""
        if not self.loaded():
            return 0  # no rule set yet: a group's rule must not look deleted
        if not self._released:
            self._released = True
            released = self.store.groups.release_sending()
            if released:
                log.info("resuming groups interrupted by a stop", groups=released)
        now = self.clock.timestamp()
        due = self.store.groups.claim_due(now)
        for g in due:
            try:
                await self._send(g, now)
                self.store.groups.mark_sent(g["group_id"], self.clock.timestamp())
            except Exception:  # one bad group must not stop the others or the loop; it is tried again
                log.exception("group send failed", group_id=g["group_id"], rule_id=g["rule_id"])
                self.store.groups.retry_later(g["group_id"], now + RETRY_AFTER)
        return len(due)

    async def _send(self, g, now: float) -> None:
        runner, group_id, rule_id = self.runner, g["group_id"], g["rule_id"]
        if self.store.groups.trigger_of(group_id) is not None:
            return  # sent just before a stop; only the mark was missing
        events = self.store.groups.events_of(group_id)
        first_id, first = events[0] if events else (None, {})
        rule = runner.ruleset.rules.get(rule_id)
        if rule is None:  # deleted by a reload while its group waited: say so rather than drop it
            row = failed(f"rule '{rule_id}' was removed before its group of {len(events)} event(s) was sent")
            await runner.submit({"source": f"rule:{rule_id}", "rule_id": rule_id, "event_id": first_id,
                                 "group_id": group_id}, [row])
            return
        at, resolved, n = from_timestamp(g["first_at"]), bool(g["resolved"]), len(events)
        group = {"count": n, "events": [e for _, e in events]} if n > 1 else None
        # preview: the state machine decided when each event arrived; fill the notification regardless
        decision = runner.evaluate(rule, first, at, resolved=resolved, group=group, preview=True)
        if n > 1:
            name_the_first_few(rule, decision, events, at, resolved, evaluate=runner.evaluate,
                               templates=runner.ruleset.templates)
        trigger, rows = runner.rows(rule, decision)
        trigger.update(event_id=first_id, group_id=group_id)
        stored = await runner.submit(trigger, rows)
        runner.last_fired[rule.id] = now
        log.info("group sent", rule_id=rule.id, group_id=group_id, events=n, resolved=resolved,
                 log_ids=[r.log_id for r in stored], errors=decision.errors or None)
