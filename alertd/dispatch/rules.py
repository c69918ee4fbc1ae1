"""What a rule's decision does: the stored state per (rule, dedup key) and the rows it submits.

Pure decisions come from the engine (``evaluate`` and ``state.step``); this
module adds the side effects around them: reading and writing the state, and
the notifications handed to ``Intake.submit``. Nothing here raises for bad
data: a template that does not render becomes a 'failed' trigger-log row.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from ..clock import from_timestamp
from ..engine.evaluate import Decision, evaluate
from ..engine.state import AlertState, cooldown_allows, step
from ..rules.models import Rule
from ..rules.ruleset import RuleSet
from ..store import StoreError
from .followups import build_spec
from .groups import Groups
from .notification import Notification, failed, notification

log = structlog.get_logger("alertd.engine")


def _ts(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


class RuleRunner:
    def __init__(self, config, store, clock, *, submit, directory, caller_id, wake, loaded):
        self.config, self.store, self.clock = config, store, clock
        self.submit = submit  # Intake.submit
        self.directory, self.caller_id = directory, caller_id
        self.ruleset = RuleSet(timezone=config.timezone)
        self.last_evaluated: dict[str, float] = {}
        self.last_fired: dict[str, float] = {}
        self._when_errors: dict[str, str] = {}  # rule id -> the last `when` failure of a poll
        # group_by: events wait here for group_wait; ``loaded()``: whether a rule set is live yet
        self.groups = Groups(self, store, clock, wake=wake, loaded=loaded)

    # --- evaluation -----------------------------------------------------------
    def evaluate(self, rule: Rule, event: Any, now: datetime, **kwargs) -> Decision:
        names = self.directory
        return evaluate(rule, event, now, contacts=names.contacts, groups=names.groups,
                        ruleset=self.ruleset, rotations=names.rotations, **kwargs)

    async def handle(self, rule: Rule, event: Any, event_id: int | None, *, alert: bool = False) -> list[int]:
        """Evaluate ``rule`` on one event; returns the log ids of what it sent."""
        now = self.clock.now()
        self.last_evaluated[rule.id] = now.timestamp()
        try:
            decision = self.evaluate(rule, event, now)
            if any(e.startswith("when failed") for e in decision.errors):
                return await self._when_failed(rule, decision, event_id)
            self._when_errors.pop(rule.id, None)
            stateful = rule.source.stateful
            if not stateful:
                if not decision.matched:
                    return []
                return await self._send_if_cooled(rule, decision, event_id, now, event)
            # alert formats: `when` chooses which alerts the rule cares about; the
            # alert's own status says firing or resolved. polls: `when` is the condition.
            if alert:
                if not decision.when_held:
                    return []
                firing = event.get("status") != "resolved"
                key = f"{decision.dedup_key}:{event.get('fingerprint')}" if rule.dedup_key else str(
                    event.get("fingerprint"))
            else:
                firing, key = decision.when_held, decision.dedup_key
            return await self._step(rule, event, event_id, decision, key, firing, now)
        except StoreError:
            raise  # the database refused the write: the caller must not answer ok
        except Exception:  # a bug must cost one evaluation, never the daemon
            log.exception("rule evaluation failed", rule_id=rule.id)
            return []

    async def _when_failed(self, rule: Rule, decision: Decision, event_id) -> list[int]:
        """`when` could not be evaluated (``"hot" > 30``): nobody can be told whether
        it holds, so the event must not vanish: a failed row with the reason."""
        reason = "; ".join(decision.errors)
        log.error("rule condition failed", rule_id=rule.id, error=reason)
        if rule.source.poll is not None and self._when_errors.get(rule.id) == reason:
            return []  # a poll failing the same way every tick is one row, not one per tick
        self._when_errors[rule.id] = reason
        named = self.ruleset.templates.get(rule.notify.template or "")
        action = rule.notify.action_type or (named.action_type if named else None) or "call"
        stored = await self.submit({"source": f"rule:{rule.id}", "rule_id": rule.id, "event_id": event_id},
                                   [failed(reason, action)])
        return [r.log_id for r in stored]

    async def _step(self, rule: Rule, event: Any, event_id, decision: Decision, key: str, firing: bool,
                    now: datetime) -> list[int]:
        states = self.store.rule_state
        row = states.get(rule.id, key)
        prev = None
        last_sent = None
        if row is not None:
            prev = AlertState(bool(row["firing"]), from_timestamp(row["since"]) or now,
                              from_timestamp(row["notified_at"]))
            last_sent = from_timestamp(row["last_sent_at"])
        can = decision.active and cooldown_allows(last_sent, now, rule.cooldown)
        state, action = step(prev, firing, now, repeat_every=rule.repeat_every,
                             notify_resolved=rule.notify_resolved, can_notify=can)
        log_ids: list[int] = []
        if action == "resolved":
            decision = self.evaluate(rule, event, now, resolved=True)
        if action is not None:
            decision.dedup_key = key
            log_ids = await self._notify(rule, decision, event, event_id, now)
            last_sent = now
        states.put(rule.id, key, firing=state.firing, since=_ts(state.since),
                             notified_at=_ts(state.notified_at), last_sent_at=_ts(last_sent), now=now.timestamp())
        return log_ids

    async def _send_if_cooled(self, rule: Rule, decision: Decision, event_id, now: datetime,
                              event: Any = None) -> list[int]:
        if rule.cooldown is None:
            return await self._notify(rule, decision, event, event_id, now)
        states, key = self.store.rule_state, decision.dedup_key
        row = states.get(rule.id, key)
        last_sent = from_timestamp(row["last_sent_at"]) if row else None
        if not cooldown_allows(last_sent, now, rule.cooldown):
            log.info("cooldown", rule_id=rule.id, dedup_key=key)
            return []
        log_ids = await self._notify(rule, decision, event, event_id, now)
        states.put(rule.id, key, firing=False, since=None, notified_at=None,
                             last_sent_at=now.timestamp(), now=now.timestamp())
        return log_ids

    # --- sending --------------------------------------------------------------
    async def _notify(self, rule: Rule, decision: Decision, event: Any, event_id, now: datetime) -> list[int]:
        """Send now, or, for a rule with group_by, add the event to its group
        (sent group_wait later by Groups.run_due; nothing is sent now: [])."""
        if rule.group_by:
            self.groups.add(rule, decision, event, event_id, now)
            return []
        return await self._send(rule, decision, event_id, now)

    def rows(self, rule: Rule, decision: Decision) -> tuple[dict, list[Notification]]:
        """The trigger and the notifications a decision asks for (failed rows for its errors)."""
        template = self.store.templates.get(decision.template_id) if decision.template_id else None
        errors = list(decision.errors)
        if decision.template_id and template is None:
            errors.append(f"unknown API template '{decision.template_id}' in notify.template")

        def field(name: str, default: Any) -> Any:
            value = getattr(decision, name)
            if value is None and template is not None:
                value = template.get("from" if name == "from_" else name)
            return default if value is None else value

        message = field("message", None)
        action = field("action_type", "call")
        params = {"voice": field("voice", "alice"), "repeat": field("repeat", 1), "gather": bool(field("gather", False)),
                  "language": field("language", None)}
        source = decision.source or (template or {}).get("source") or f"rule:{rule.id}"
        trigger = {"source": source, "rule_id": rule.id}
        send_at = _ts(decision.send_at)
        rows: list[Notification] = []
        if message is None and not any("message" in e or "template" in e for e in errors):
            errors.append("nothing to say: no message")
        # an `at` that is not a time must not turn a reminder into a send right now
        unsendable = message is None or any(e.startswith("notify.at") for e in errors)
        for number in dict.fromkeys(decision.recipients + self._on_call(decision)):
            from_ = field("from_", None) or self.caller_id.pick(number)
            row_params = dict(params, **{"from": from_})
            if unsendable:
                rows.append(failed("; ".join(errors), action, message, to=number, params=row_params,
                                   template_id=decision.template_id, send_at=send_at))
            else:
                rows.append(notification(number, action, message, params=row_params,
                                         template_id=decision.template_id, send_at=send_at))
        if not unsendable and errors or not rows:
            # a bad recipient (or none at all) is a row of its own, so nothing vanishes
            rows.append(failed("; ".join(errors) or "no recipient", action, message,
                               params=dict(params, **{"from": None}), template_id=decision.template_id))
        if not unsendable and (decision.retry or decision.escalate):
            steps = [{"after": st.after.total_seconds(), "to": st.recipients, "rotations": st.rotations,
                      "action_type": st.action_type, "message": st.message, "voice": st.voice,
                      "language": st.language, "repeat": st.repeat, "gather": st.gather, "retry": st.retry}
                     for st in decision.escalate]
            trigger["spec"] = build_spec(decision.retry, steps, {"type": action, "message": message,
                                                                  "params": params})
        return trigger, rows

    async def _send(self, rule: Rule, decision: Decision, event_id, now: datetime) -> list[int]:
        trigger, rows = self.rows(rule, decision)
        trigger["event_id"] = event_id
        stored = await self.submit(trigger, rows)
        self.last_fired[rule.id] = now.timestamp()
        log.info("rule fired", rule_id=rule.id, dedup_key=decision.dedup_key, resolved=decision.resolved,
                 log_ids=[r.log_id for r in stored], errors=decision.errors or None)
        return [r.log_id for r in stored]

    def _on_call(self, decision: Decision) -> list[str]:
        """Decision.rotations as the numbers on call when the rows are due."""
        now = self.clock.now()
        at = max(now, decision.send_at) if decision.send_at else now
        numbers = []
        for name in decision.rotations:
            try:
                numbers.append(self.directory.on_call(name, at))
            except KeyError:  # the loader checks names against the config; a mismatch must not cost the others
                log.error("unknown rotation", rotation=name, rule_id=decision.rule_id)
        return numbers
