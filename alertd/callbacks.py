"""What the provider tells us after a send: call and SMS status, and a press of 1.

Twilio's signed requests (api/twilio_hooks.py) and the simulator both land
here, so both exercise the same code.
"""
from __future__ import annotations

import structlog

from .clock import SystemClock
from .store import Store

log = structlog.get_logger("alertd.callbacks")

# Twilio can deliver status callbacks out of order; a late 'ringing' must not
# overwrite 'completed'.
CALL_FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
SMS_FINAL = {"delivered", "undelivered", "failed", "read"}


class CallbackHandler:
    def __init__(self, store: Store, clock=None):
        self.store, self.clock = store, clock or SystemClock()

    def _status(self, log_id: int, channel: str, sid: str | None, status: str) -> bool:
        row = self.store.get_log(log_id)
        if row is None:
            log.warning("callback for unknown log row", log_id=log_id, channel=channel)
            return False
        current = row[f"{channel}_status"]
        final = CALL_FINAL if channel == "call" else SMS_FINAL
        if current in final and status not in final:
            return True
        self.store.set_channel_status(log_id, channel, status, sid)
        log.info("status", log_id=log_id, channel=channel, status=status)
        return True

    def call_status(self, log_id: int, sid: str | None, status: str, answered_by: str | None = None) -> bool:
        return self._status(log_id, "call", sid, status)

    def sms_status(self, log_id: int, sid: str | None, status: str) -> bool:
        return self._status(log_id, "sms", sid, status)

    def digits(self, log_id: int, sid: str | None, digits: str, from_: str | None = None) -> bool:
        """A key press on a gather call; True when it acknowledged."""
        if (digits or "").strip() != "1":
            log.info("key pressed", log_id=log_id, digits=digits)
            return False
        ok = self.store.acknowledge(log_id, self.clock.timestamp(), by=from_)
        log.info("acknowledged", log_id=log_id, by=from_, known=ok)
        return ok
