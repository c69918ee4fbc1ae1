"""Shift notices: a text to each person before their shift starts.

A rotation with ``notify_shift: {before: 1h, action_type: sms}`` tells each
person "You are on call for ops from Mon 9 Mar 09:00 until Mon 16 Mar 09:00"
``before`` their shift starts, and at once when an override gives them a shift
(the override's shift starts when it is made). A shift is noticed while its
start is no more than ``before`` ahead of now and no more than ``before``
behind it: a shift already running for longer when alertd starts (or when the
setting is added) is not announced late.

Each notice is recorded by rotation, person and shift start in the same
transaction as its trigger and outbox items (intake.Once), so a shift is
noticed once, also across a restart; the outbox then delivers it like any
alert (retries, silences, the trigger log with source ``shift-notice``).
"""
from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from ..clock import from_timestamp
from ..shifts import Shift, rotation_shifts
from .intake import Once
from .notification import notification

log = structlog.get_logger("alertd.shift_notices")
SOURCE = "shift-notice"
# overrides are made by `alertd oncall override` in another process: looked for this often
RECHECK_SECONDS = 30.0


def notice_text(rotation: str, shift: Shift, tz) -> str:
    def when(dt: datetime) -> str:
        local = dt.astimezone(tz)
        return f"{local:%a} {local.day} {local:%b %H:%M}"
    return f"You are on call for {rotation} from {when(shift.starts_at)} until {when(shift.ends_at)} {shift.ends_at.astimezone(tz):%Z}."


class ShiftNotices:
    """A timer of the worker (``run_due`` / ``next_due_at``)."""

    def __init__(self, config, store, clock, *, submit, caller_id):
        self.config, self.store, self.clock = config, store, clock
        self.submit, self.caller_id = submit, caller_id
        self._next_check = 0.0

    def rotations(self):
        return {name: rot for name, rot in self.config.rotations.items() if rot.notify_shift is not None}

    async def next_due_at(self) -> float | None:
        return self._next_check if self.rotations() else None

    async def due(self, now: datetime) -> list[tuple[str, Shift]]:
        """(rotation, shift) of every shift whose notice is due at ``now``, sent or not."""
        out = []
        for name, rot in self.rotations().items():
            before = rot.notify_shift.before
            # the window's end is exclusive: a second more keeps a shift starting exactly `before` from now
            end = now + before + timedelta(seconds=1)
            for shift in await rotation_shifts(self.config, self.store, name, now - before, end):
                if now - before <= shift.starts_at <= now + before and shift.ends_at > now:
                    out.append((name, shift))
        return out

    async def run_due(self) -> int:
        """Send every due notice not sent before; returns how many were sent."""
        clock = self.clock
        if clock.timestamp() < self._next_check or not self.rotations():
            return 0
        now = clock.now()
        sent = 0
        try:
            due = await self.due(now)
        except Exception:  # the database, most likely: looked at again at the next recheck, not at once
            log.exception("shift notices: could not read the shifts")
            self._next_check = (now + timedelta(seconds=RECHECK_SECONDS)).timestamp()
            return 0
        for name, shift in due:
            try:
                sent += await self._send(name, shift)
            except Exception:  # one rotation's trouble must not stop the others or the loop
                log.exception("shift notice failed", rotation=name, contact=shift.contact)
        self._next_check = (await self._next_at(now)).timestamp()
        return sent

    async def _next_at(self, now: datetime) -> datetime:
        """The next notice time, or a recheck for overrides made meanwhile."""
        later = now + timedelta(seconds=RECHECK_SECONDS)
        for name, rot in self.rotations().items():
            before = rot.notify_shift.before
            for shift in await rotation_shifts(self.config, self.store, name, now, later + before):
                if shift.starts_at - before > now:
                    later = min(later, shift.starts_at - before)
        return later

    async def _send(self, name: str, shift: Shift) -> int:
        rot = self.config.rotations[name]
        phone = self.config.contacts[shift.contact].phone
        start = shift.starts_at.timestamp()
        now = self.clock.timestamp()
        row = notification(phone, rot.notify_shift.action_type, notice_text(name, shift, self.config.tz),
                           from_=self.caller_id.pick(phone))
        stored = await self.submit({"source": SOURCE}, [row], once=Once(
            lambda tx: self.store.reach.claim_shift_notice(tx, name, shift.contact, start, now),
            lambda tx, trigger_id: self.store.reach.set_shift_notice_trigger(tx, name, shift.contact, start,
                                                                            trigger_id)))
        if not stored:
            return 0
        log.info("shift notice", rotation=name, contact=shift.contact, shift_start=str(from_timestamp(start)),
                 override=shift.override, log_id=stored[0].log_id)
        return 1
