"""The simulator: the whole flow without a Twilio account.

It logs what it would send, answers with CA.../SM... sids like Twilio, and
then plays the status callbacks (and, for a gather call, a press of 1)
through the same callback handler that Twilio's signed requests reach.
"""
from __future__ import annotations

import asyncio
import collections
import secrets

import structlog

from . import Outgoing

log = structlog.get_logger("alertd.simulator")
SENT_KEPT = 1000


class SimulatorProvider:
    configured = True

    def __init__(self, *, press: bool = True, delay: float = 0.2):
        self.press, self.delay = press, delay
        self.callbacks = None  # the daemon's CallbackHandler (alertd/dispatch/callbacks.py), given at its construction
        # the latest sends, for a look in tests and the REPL: bounded, `make run` may run for weeks
        self._sent: collections.deque[Outgoing] = collections.deque(maxlen=SENT_KEPT)
        self._tasks: set[asyncio.Task] = set()

    @property
    def sent(self) -> list[Outgoing]:
        """The latest SENT_KEPT sends, oldest first."""
        return list(self._sent)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def send(self, out: Outgoing) -> str:
        sid = ("SM" if out.channel == "sms" else "CA") + secrets.token_hex(16)
        self._sent.append(out)
        log.info("simulated " + out.channel, log_id=out.log_id, to=out.to, sid=sid, message=out.message)
        if self.callbacks is not None:
            task = asyncio.create_task(self._play(out, sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return sid

    async def _play(self, out: Outgoing, sid: str) -> None:
        cb = self.callbacks
        await asyncio.sleep(self.delay)
        if out.channel == "sms":
            cb.sms_status(out.log_id, sid, "sent")
            await asyncio.sleep(self.delay)
            cb.sms_status(out.log_id, sid, "delivered")
            return
        for status in ("ringing", "in-progress"):
            cb.call_status(out.log_id, sid, status)
            await asyncio.sleep(self.delay)
        if out.gather and self.press:
            cb.digits(out.log_id, "1", out.to)
            await asyncio.sleep(self.delay)
        cb.call_status(out.log_id, sid, "completed")
