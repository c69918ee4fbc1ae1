"""What a heartbeat's flip does: its notification, through the rules' path.

A flip that notifies is stored with ``owed = 1`` in the same transaction as
the check's new state (alertd/sources/heartbeat.py). ``HeartbeatNotices.send_owed``
hands each owed flip to the rules' path (evaluate -> rows -> Intake.submit, so
silences, escalation, retries and the press of 1 apply as to any rule) and then
clears ``owed``. A stop between the two sends it at the next start: at least
once, never lost.
"""
from __future__ import annotations

import asyncio
import json

import structlog

from ..store import StoreError

log = structlog.get_logger("alertd.heartbeat")
OWED_BATCH = 100  # owed notifications read at a time (all are sent, batch after batch)


class HeartbeatNotices:
    """``runner``: the rule runner (alertd/dispatch/rules.py) whose rule set and rows it uses;
    ``submit``: Intake.submit."""

    def __init__(self, store, clock, runner, *, submit):
        self.store, self.clock, self.runner, self.submit = store, clock, runner, submit
        self._sending: asyncio.Lock | None = None

    async def send_owed(self) -> tuple[int, bool]:
        """Notify every owed flip; returns (how many were handed over, whether all were: False when
        the database refused one, which stays owed for the caller to try again)."""
        if self._sending is None:
            self._sending = asyncio.Lock()
        sent = 0
        async with self._sending:  # a ping and the timer may both ask: each flip once
            while batch := self.store.heartbeats.owed_flips(OWED_BATCH):
                for flip in batch:
                    try:
                        await self._notify(flip)
                    except StoreError:
                        log.error("heartbeat notification not stored; trying again", rule_id=flip["rule_id"])
                        return sent, False
                    except Exception:  # a bug costs this notification, not the others or the timer
                        log.exception("heartbeat notification failed", rule_id=flip["rule_id"])
                    self.store.heartbeats.settle(flip["id"])
                    sent += 1
        return sent, True

    async def _notify(self, flip) -> None:
        rule = self.runner.ruleset.rules.get(flip["rule_id"])
        if rule is None or rule.source.heartbeat is None:
            log.warning("heartbeat flip of a rule no longer loaded; not notified", rule_id=flip["rule_id"])
            return
        runner, store = self.runner, self.store
        event = json.loads(flip["event"] or "{}")
        now = self.clock.now()
        event_id = store.events.record("heartbeat", rule.id, event, now.timestamp())
        decision = runner.evaluate(rule, event, now, resolved=flip["new"] == "up")
        if not decision.notify:  # outside the rule's active window
            log.info("heartbeat flip outside the active window; not notified", rule_id=rule.id)
            return
        decision.dedup_key = rule.id
        trigger, rows = runner.rows(rule, decision)
        trigger["event_id"] = event_id
        stored = await self.submit(trigger, rows)
        store.events.set_fired(event_id, [rule.id])
        log.info("rule fired", rule_id=rule.id, heartbeat=flip["new"], reason=event.get("reason"),
                 log_ids=[r.log_id for r in stored])
