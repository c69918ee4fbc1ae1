"""Until someone answers: retries of unanswered calls and escalation steps.

"Delivered" means a human answered: with gather, answered *and* pressed 1.
A call that ends busy, no-answer, failed or canceled, that reached a
voicemail (Twilio's AnsweredBy), or, with gather, ended without a press, is
placed again ``retry.times`` more times, ``retry.every`` apart. Escalation
steps are stored with the trigger at send time (Store.logs.insert_trigger) and run
when the trigger is still unacknowledged ``after`` the first attempt. Every
pending step lives in SQLite, so a restart or kill -9 loses none; one that
fell due while the daemon was down runs once at start.

The trigger's ``spec`` (JSON) holds what a follow-up needs, resolved at send:
``{"retry": {"times", "every"}, "escalate": [{"after", "to", "rotations",
"type", "message", "params", "retry"}]}`` (times in seconds).
"""
from __future__ import annotations

import json
from typing import Any

import structlog

from ..runtime.metrics import Metrics
from ..store import Store
from .notification import failed, notification

log = structlog.get_logger("alertd.escalation")
UNANSWERED = {"busy", "no-answer", "failed", "canceled"}


def retry_spec(value: Any) -> dict | None:
    """A Retry model / dict -> {"times": int, "every": seconds} or None."""
    if value is None:
        return None
    times = value["times"] if isinstance(value, dict) else value.times
    every = value["every"] if isinstance(value, dict) else value.every
    every = every.total_seconds() if hasattr(every, "total_seconds") else float(every)
    return {"times": int(times), "every": every} if times else None


def unanswered(status: str, row, answered_by: str | None, gather: bool) -> bool:
    if status in UNANSWERED:
        return True
    if status != "completed":
        return False
    if answered_by and (answered_by.startswith("machine") or answered_by == "fax"):
        return True  # a voicemail is not a human
    return gather and row["acknowledged_at"] is None


class Followups:
    """A timer of the worker (``run_due`` / ``next_due_at``), told by the callbacks when a call ended."""

    def __init__(self, store: Store, clock, *, submit, directory, caller_id, wake, metrics=None):
        self.store, self.clock = store, clock
        self.metrics = metrics or Metrics()
        self.submit = submit  # async (trigger, rows) -> rows: Intake.submit, the one way into the outbox
        self.directory = directory  # rotations -> the number on call (alertd/directory.py)
        self.caller_id = caller_id
        self.wake = wake

    def _retry_for(self, spec: dict, step: int) -> dict | None:
        if step and step <= len(spec.get("escalate") or ()):
            return spec["escalate"][step - 1].get("retry")
        return spec.get("retry")

    def call_ended(self, log_id: int, status: str, answered_by: str | None = None) -> None:
        """A call's final status arrived: place it again when nobody answered."""
        row = self.store.logs.get(log_id)
        if row is None or row["type"] not in ("call", "both"):
            return
        trigger = self.store.logs.trigger(row["trigger_id"])
        if trigger is None or trigger["acknowledged_at"] is not None:
            return
        gather = bool(json.loads(row["params"]).get("gather"))
        if not unanswered(status, row, answered_by, gather):
            return
        retry = self._retry_for(trigger["spec"], row["step"])
        if not retry or row["attempt"] > retry["times"]:
            return
        now = self.clock.timestamp()
        if not self.store.followups.add_retry_once(row["trigger_id"], log_id, now + retry["every"], now):
            log.info("call already has its retry", log_id=log_id, status=status)
            return
        log.info("call unanswered; retry scheduled", log_id=log_id, status=status, answered_by=answered_by,
                 attempt=row["attempt"], of=retry["times"] + 1, trigger_id=row["trigger_id"])
        self.wake.poke()

    def next_due_at(self) -> float | None:
        return self.store.followups.next_due_at()

    async def run_due(self) -> int:
        """Run every due follow-up once; returns how many ran."""
        now = self.clock.timestamp()
        due = self.store.followups.claim(now)
        for f in due:
            try:
                await self._run(f, now)
            except Exception:  # one bad follow-up must not stop the others or the loop
                log.exception("follow-up failed", followup_id=f["id"], trigger_id=f["trigger_id"])
        return len(due)

    async def _run(self, f, now: float) -> None:
        trigger = self.store.logs.trigger(f["trigger_id"])
        if trigger is None or trigger["acknowledged_at"] is not None:
            return
        head = {"trigger_id": trigger["trigger_id"], "source": trigger["source"], "rule_id": trigger["rule_id"],
                "event_id": trigger["event_id"], "created_at": trigger["created_at"], "now": now}
        if f["kind"] == "retry":
            old = self.store.logs.get(f["log_id"])
            row = notification(old["to_number"], "call", old["message"], params=json.loads(old["params"]),
                               template_id=old["template_id"], attempt=old["attempt"] + 1, step=old["step"])
            stored = await self.submit(head, [row])
            self.metrics.call_retries.inc()
            log.info("retry placed", trigger_id=trigger["trigger_id"], log_ids=[r.log_id for r in stored],
                     attempt=row.attempt)
            return
        step = trigger["spec"]["escalate"][f["step"] - 1]
        numbers = list(step.get("to") or [])
        for name in step.get("rotations") or ():
            try:
                numbers.append(self.directory.on_call(name, now))
            except (KeyError, ValueError) as exc:
                log.error("escalation rotation unresolved", rotation=name, error=str(exc))
        rows = [notification(n, step["type"], step["message"], step=f["step"],
                             params=dict(step["params"], **{"from": step["params"].get("from") or self.caller_id.pick(n)}))
                for n in dict.fromkeys(numbers)]
        if not rows:
            rows = [failed(f"escalation step {f['step']}: no recipient", step["type"], step["message"],
                           params=step["params"], step=f["step"])]
        stored = await self.submit(head, rows)
        self.metrics.escalation_steps.inc()
        log.info("escalation step", trigger_id=trigger["trigger_id"], step=f["step"],
                 log_ids=[r.log_id for r in stored])


def build_spec(retry: Any, steps: list[dict], base: dict) -> dict:
    """The trigger's spec from a notification's retry and escalation steps.

    ``base``: the notification's type, message and params, which a step
    inherits unless it sets its own (as does its retry). Each step dict: after
    (seconds), to (numbers), rotations, and optionally action_type, message,
    voice, language, repeat, gather, retry.
    """
    spec: dict[str, Any] = {}
    base_retry = retry_spec(retry)
    if base_retry:
        spec["retry"] = base_retry
    out = []
    for st in steps:
        params = dict(base["params"])
        for key in ("voice", "language", "repeat", "gather"):
            if st.get(key) is not None:
                params[key] = st[key]
        out.append({"after": float(st["after"]), "to": list(st.get("to") or ()),
                    "rotations": list(st.get("rotations") or ()),
                    "type": st.get("action_type") or base["type"], "message": st.get("message") or base["message"],
                    "params": params, "retry": retry_spec(st.get("retry")) or base_retry})
    if out:
        spec["escalate"] = out
    return spec
