"""What the provider tells us after a send: call and SMS status, and a press of 1.

Twilio's signed requests (api/twilio_hooks.py) and the simulator both land
here, so both exercise the same code.
"""
from __future__ import annotations

import structlog

from ..clock import SystemClock
from ..runtime.metrics import Metrics
from ..store import Store

log = structlog.get_logger("alertd.callbacks")

# Twilio can deliver status callbacks out of order; a late 'ringing' must not
# overwrite 'completed'.
CALL_FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
SMS_FINAL = {"delivered", "undelivered", "failed", "read"}


class CallbackHandler:
    def __init__(self, store: Store, clock=None, followups=None, metrics=None):
        self.store, self.clock = store, clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.followups = followups  # Followups (followups.py): retries of unanswered calls

    async def _status(self, log_id: int, channel: str, sid: str | None, status: str, error_code: int | None = None,
                      provider_status: str | None = None) -> str:
        """'new', 'repeat' (a final status this row already had: ignored) or 'unknown' (no such row).
        ``status`` in alertd's (Twilio's) words; ``provider_status`` the provider's own, when different."""
        row = await self.store.logs.get(log_id)
        if row is None:
            log.warning("callback for unknown log row", log_id=log_id, channel=channel)
            return "unknown"
        current = row[f"{channel}_status"]
        final = CALL_FINAL if channel == "call" else SMS_FINAL
        # Twilio retries a delivery, and its signature has no timestamp, so a captured callback can be
        # replayed: a final status is acted on once per row, or each copy would place another retry
        if status in final and await self.store.status.seen(log_id, channel, status):
            log.info("repeated status callback, ignored", log_id=log_id, channel=channel, status=status)
            return "repeat"
        late = current in final and status not in final
        # a late callback is still kept in the history (it is what the provider sent), not as the row's status
        await self.store.status.record(log_id, channel, status, self.clock.timestamp(), sid=sid,
                                       error_code=error_code, update=not late, provider_status=provider_status)
        log.info("late status, kept in the history only" if late else "status", log_id=log_id, channel=channel,
                 status=status, error_code=error_code)
        return "new"

    async def call_status(self, log_id: int, sid: str | None, status: str, answered_by: str | None = None,
                          error_code: int | None = None, provider_status: str | None = None) -> bool:
        """False for an unknown log row."""
        outcome = await self._status(log_id, "call", sid, status, error_code, provider_status)
        if outcome == "new" and answered_by:
            await self.store.logs.set_answered_by(log_id, answered_by)
        if outcome == "new" and status in CALL_FINAL and self.followups is not None:
            await self.followups.call_ended(log_id, status, answered_by)
        return outcome != "unknown"

    async def sms_status(self, log_id: int, sid: str | None, status: str, error_code: int | None = None,
                         provider_status: str | None = None) -> bool:
        return (await self._status(log_id, "sms", sid, status, error_code, provider_status)) != "unknown"

    async def digits(self, log_id: int, digits: str, from_: str | None = None) -> bool:
        """A key press on a gather call; True when it acknowledged."""
        if (digits or "").strip() != "1":
            log.info("key pressed", log_id=log_id, digits=digits)
            return False
        trigger_id = await self.store.logs.acknowledge(log_id, self.clock.timestamp(), by=from_)
        log.info("acknowledged", log_id=log_id, trigger_id=trigger_id, by=from_, via="call")
        if trigger_id is not None:
            self.metrics.acknowledged("call")
        return trigger_id is not None

    async def acknowledge(self, log_id: int, by: str | None, via: str) -> int | None:
        """Acknowledge the trigger of ``log_id`` (SMS reply, API, dashboard); its trigger id or None."""
        trigger_id = await self.store.logs.acknowledge(log_id, self.clock.timestamp(), by=by)
        if trigger_id is not None:
            log.info("acknowledged", log_id=log_id, trigger_id=trigger_id, by=by, via=via)
            self.metrics.acknowledged(via)
        return trigger_id
