"""The dead man's switch: tell someone when alertd itself cannot send.

    deadman: {to: owner, after: 10m, action_type: sms}

When no provider request has succeeded, and at least one has failed, for
``after`` (Twilio down, credentials revoked, the account suspended, the
network gone), ``to`` is told, once, through whichever channel still works:
the configured one first, then the other (a call when SMS fails, an SMS when
calls fail). It re-arms when a provider request succeeds again. A spell is
measured by the provider's health (ProviderHealth.failing_since): a permanent refusal
of one number (invalid, unsubscribed) is news about that number, not about
the provider, and neither starts nor ends one.

The message goes straight to the provider, not through the outbox: a queue
that is not draining is what it reports, and no silence or storm limit may
hold it back. It is still written to the trigger log (source
``alertd:deadman``), so it shows in ``alertd log`` and its status callbacks
land. When no channel gets through, alertd logs that at critical level and
tries again RETRY_EVERY later, for as long as the spell lasts.
"""
from __future__ import annotations

import socket

import structlog

from ..providers import ProviderError
from ..store import StoreError
from .notification import notification

log = structlog.get_logger("alertd.deadman")
SOURCE = "alertd:deadman"
RETRY_EVERY = 60.0  # seconds between tries while no channel gets through
ORDER = {"call": (("call",), ("sms",)), "sms": (("sms",), ("call",)), "both": (("call", "sms"),)}


class DeadMan:
    """A timer of the worker (``run_due`` / ``next_due_at``)."""

    def __init__(self, config, store, clock, attempts, *, directory, caller_id, metrics, leads=lambda: True):
        self.leads = leads  # several nodes: only the leader watches (it is periodic work)
        self.store, self.clock, self.attempts, self.metrics = store, clock, attempts, metrics
        self.health, self.caller_id = attempts.health, caller_id
        self.config = config.deadman
        (self.to,), _ = directory.resolve([self.config.to], "deadman.to")  # a contact or a number (checked at load)
        self.fired_for: float | None = None  # the failing_since of the spell already reported
        self.retry_at = 0.0
        self._busy = False

    def _due_at(self) -> float | None:
        since = self.health.failing_since
        if not self.leads() or since is None or since == self.fired_for:
            return None
        return max(since + self.config.after.total_seconds(), self.retry_at)

    async def next_due_at(self) -> float | None:
        return self._due_at()

    async def run_due(self) -> int:
        """Notify when a spell has lasted ``after``; returns 1 when it tried, else 0."""
        due = self._due_at()
        if due is None or self._busy or self.clock.timestamp() < due:
            return 0
        self._busy = True  # the worker and a test may both ask; one notification
        try:
            since = self.health.failing_since
            if await self.notify(since):
                self.fired_for = since
            else:
                self.retry_at = self.clock.timestamp() + RETRY_EVERY
        finally:
            self._busy = False
        return 1

    def message(self, since: float, now: float) -> str:
        d = self.health
        minutes = max(1, round((now - since) / 60))
        error = (d.last_error or {}).get("message") or "unknown error"
        if len(error) > 80:
            error = error[:77] + "..."
        return (f"alertd on {socket.gethostname()}: no call or SMS has gone out for {minutes} minutes; "
                f"{d.failures} provider requests failed, the last with: {error}. Alerts are not being delivered.")

    async def notify(self, since: float) -> bool:
        """Try the configured channel(s), then the other; True when one got through."""
        d = self.health
        now = self.clock.timestamp()
        text = self.message(since, now)
        log.critical("dead man's switch: provider requests have been failing", failing_since=since,
                     failures=d.failures, last_error=d.last_error, to=self.to, action_type=self.config.action_type)
        trigger: dict = {"source": SOURCE, "created_at": now}
        for channels in ORDER[self.config.action_type]:
            rows = [notification(self.to, ch, text, from_=self.caller_id.pick(self.to), repeat=2,
                                 status="initiated") for ch in channels]
            try:
                # no outbox item ('initiated'): a row for the log and for the status callbacks
                rows = await self.store.logs.create_trigger(trigger, rows, lease_until=now)
            except StoreError as exc:
                log.error("dead man's switch: cannot write its log row; sending anyway", error=str(exc))
                for row in rows:
                    row.log_id = 0
            sent = [await self._send(row) for row in rows]
            if any(sent):
                return True
        log.critical("dead man's switch: no channel got through; trying again later", to=self.to,
                     retry_in_s=RETRY_EVERY)
        return False

    async def _send(self, row) -> bool:
        channel, metrics = row.type, self.metrics
        try:
            out = self.attempts.outgoing(row.to, row.message, row.params, row.log_id, channel)
            # with several providers, through each in turn (failover.Router), as any send
            sid = await self.attempts.provider.send(out)
        except Exception as exc:
            error = exc.as_dict() if isinstance(exc, ProviderError) else {"code": None, "message": repr(exc)}
            log.critical("dead man's switch: send failed", channel=channel, to=self.to, error=error)
            metrics.deadman.labels(channel, "failed").inc()
            outcome: dict = {"status": "failed", "error": error, "channel": channel,
                             "provider": getattr(exc, "provider", None)}
        else:
            log.critical("dead man's switch: sent", channel=channel, to=self.to, sid=sid, log_id=row.log_id)
            metrics.deadman.labels(channel, "sent").inc()
            outcome = {"status": "initiated", "error": None, "channel": channel, "sid": sid,
                       "provider": getattr(sid, "provider", None)}
        if row.log_id:
            try:
                await self.store.logs.set_outcome(row.log_id, **outcome)
            except StoreError as exc:
                log.error("dead man's switch: cannot record the outcome", error=str(exc))
        return outcome["status"] == "initiated"
