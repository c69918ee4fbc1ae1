"""Rule grouping: one notification for the events of a group that arrive within group_wait.

    group_by: [labels.alertname]
    group_wait: 30s

A rule with ``group_by`` does not send each event that would notify; it adds
it to the open group of (rule, the event's group_by values, firing or
resolved), stored in SQLite before the webhook is answered. The first event
opens the group and sets its time: ``group_wait`` later the dispatcher loop
sends one notification for all of them (within about a second, and once at
start for a group that fell due while the daemon was down). Events that
arrive while a group is being sent open the next one.

For alertmanager/grafana rules and polls only flips that notify are grouped:
the state machine decides per alert first, so an alert Alertmanager re-sends
every 5 minutes still notifies once. Cooldowns, windows and dedup keys apply
per event, as without grouping.

The notification is the rule evaluated on the group's first event, at the
time it arrived, with ``group = {"count", "events"}`` in the template
context. A template that does not use ``group`` gets the count and the first
few distinct messages: "50 alerts: CPU high on a; CPU high on b; ...". A
group of one is sent as a plain notification (``group`` is None).

Sent exactly once across a stop: the trigger records its group id, so a group
found 'sending' at start whose trigger exists is only marked sent.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

import structlog

from ..clock import from_timestamp
from ..rules.models import Rule
from ..store import groups as q
from .evaluate import MAX_MESSAGE, Decision
from .templating import uses_variable

log = structlog.get_logger("alertd.engine")
NAMED = 3  # messages named in a grouped notification whose template does not use `group`
SCAN = 20  # events looked at to find them
RETRY_AFTER = 5.0  # seconds, when the database refused the send


def path_value(event: Any, path: str) -> Any:
    """``labels.alertname`` of an event; None when any step is missing."""
    value = event
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def group_key(rule: Rule, event: Any, resolved: bool) -> str:
    values = [path_value(event, p) for p in rule.group_by]
    return json.dumps({"by": values, "resolved": resolved}, sort_keys=True, default=str)


class Groups:
    """The pending groups of every rule; a timer of the dispatcher loop."""

    def __init__(self, runner):
        self.runner = runner
        self._released = False

    @property
    def store(self):
        return self.runner.daemon.store

    def add(self, rule: Rule, decision: Decision, event: Any, event_id: int | None, now: datetime) -> int:
        """Store the event in its group; returns the group id."""
        key = group_key(rule, event, decision.resolved)
        group_id, count = q.add_event(self.store, rule.id, key, decision.resolved, event, event_id,
                                      now.timestamp(), rule.group_wait.total_seconds())
        log.info("event grouped", rule_id=rule.id, group_id=group_id, events=count, group_key=key)
        if count == 1:
            dispatcher = self.runner.daemon.dispatcher
            if dispatcher is not None:
                dispatcher.poke()  # a new due time the loop does not know yet
        return group_id

    def next_due_at(self) -> float | None:
        return q.next_due_at(self.store)

    async def run_due(self) -> int:
        """Send every due group; returns how many."""
        daemon = self.runner.daemon
        if daemon.rules.loaded_at is None:
            return 0  # no rule set yet: a group's rule must not look deleted
        if not self._released:
            self._released = True
            released = q.release_sending(self.store)
            if released:
                log.info("resuming groups interrupted by a stop", groups=released)
        now = daemon.clock.timestamp()
        due = q.claim_due(self.store, now)
        for g in due:
            try:
                await self._send(g, now)
                q.mark_sent(self.store, g["group_id"], daemon.clock.timestamp())
            except Exception:  # one bad group must not stop the others or the loop; it is tried again
                log.exception("group send failed", group_id=g["group_id"], rule_id=g["rule_id"])
                q.retry_later(self.store, g["group_id"], now + RETRY_AFTER)
        return len(due)

    async def _send(self, g, now: float) -> None:
        runner, group_id, rule_id = self.runner, g["group_id"], g["rule_id"]
        if q.trigger_of(self.store, group_id) is not None:
            return  # sent just before a stop; only the mark was missing
        events = q.events_of(self.store, group_id)
        first_id, first = events[0] if events else (None, {})
        rule = runner.ruleset.rules.get(rule_id)
        if rule is None:  # deleted by a reload while its group waited: say so rather than drop it
            row = {"to": "", "type": "call", "message": None, "template_id": None, "params": {"from": None},
                   "status": "failed", "error": {"code": None, "message":
                                                 f"rule '{rule_id}' was removed before its group of"
                                                 f" {len(events)} event(s) was sent"}}
            await runner.daemon.submit({"source": f"rule:{rule_id}", "rule_id": rule_id, "event_id": first_id,
                                        "group_id": group_id}, [row])
            return
        at, resolved, n = from_timestamp(g["first_at"]), bool(g["resolved"]), len(events)
        group = {"count": n, "events": [e for _, e in events]} if n > 1 else None
        # preview: the state machine decided when each event arrived; fill the notification regardless
        decision = runner.evaluate(rule, first, at, resolved=resolved, group=group, preview=True)
        if n > 1:
            self._name_the_first_few(rule, decision, events, at, resolved)
        trigger, rows = runner.rows(rule, decision)
        trigger.update(event_id=first_id, group_id=group_id)
        stored = await runner.daemon.submit(trigger, rows)
        runner.last_fired[rule.id] = now
        log.info("group sent", rule_id=rule.id, group_id=group_id, events=n, resolved=resolved,
                 log_ids=[r["log_id"] for r in stored], errors=decision.errors or None)

    def _name_the_first_few(self, rule: Rule, decision: Decision, events: list, at: datetime,
                            resolved: bool) -> None:
        """"50 alerts: A; B; C; ..." instead of "50 alerts: A" when the template does not use `group`."""
        named = self.runner.ruleset.templates.get(rule.notify.template or "")
        source = rule.notify.message if rule.notify.message is not None else (named.message if named else None)
        if decision.message is None or source is None or uses_variable(source, "group"):
            return
        texts: list[str] = []
        for _, event in events[:SCAN]:
            text = self.runner.evaluate(rule, event, at, resolved=resolved, preview=True).message
            if text and text not in texts:
                texts.append(text)
                if len(texts) > NAMED:
                    break
        if not texts:
            return
        more = len(texts) > NAMED or len(events) > SCAN
        message = f"{len(events)} alerts: " + "; ".join(texts[:NAMED]) + ("; ..." if more else "")
        message = message[:MAX_MESSAGE]
        for step in decision.escalate:  # steps without a message of their own inherit it
            if step.message == decision.message:
                step.message = message
        decision.message = message
