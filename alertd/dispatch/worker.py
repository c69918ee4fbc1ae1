"""The background worker: whatever is due in the outbox, and the timers that share its loop.

It attempts what the API's inline attempt left: retries after backoff,
deferred sends, storm summaries, and what a crash interrupted (leases are
released at start). Timers are more work with due times, each with
``async run_due() -> int`` and ``async next_due_at() -> float | None``: follow-ups
(followups.py), rule groups (groups.py) and the dead man's switch
(deadman.py). The loop sleeps until the next due time, at most a second, or
until something ``poke``s the shared ``Wakeup``.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

import structlog

from ..store import Store
from . import storm
from .attempt import Attempts
from .intake import lease_seconds

log = structlog.get_logger("alertd.dispatch")


class Wakeup:
    """Tells the worker that something may be due sooner than it thinks."""

    def __init__(self):
        self.event = asyncio.Event()

    def poke(self) -> None:
        self.event.set()


class Dispatcher:
    def __init__(self, store: Store, attempts: Attempts, config, clock, wake: Wakeup, timers: Sequence[Any] = ()):
        self.store, self.attempts, self.config, self.clock = store, attempts, config, clock
        self.health = attempts.health
        self.wake = wake
        self.timers = list(timers)
        self._stopping = False
        self.last_loop_at = time.monotonic()

    @property
    def in_flight(self) -> int:
        return self.attempts.in_flight

    async def run_once(self, limit: int = 200) -> int:
        """Attempt every due item (up to ``limit``); returns how many were attempted."""
        now = self.clock.timestamp()
        rows = await self.store.outbox.claim_due(now, now + lease_seconds(self.config), limit)
        if rows:
            # a summary waits again when a send it counted on went out later than planned
            rows = await storm.hold_summaries(self.store, rows, now, self.config.limits.per_number)
        if not rows:
            return 0
        attempts = self.attempts
        attempts.busy += len(rows)
        try:
            results = await asyncio.gather(*(
                attempts.attempt(r["outbox_id"], r["attempts"],
                                 attempts.outgoing(r["to"], r["message"], r["params"], r["log_id"], r["channel"]))
                for r in rows))
        finally:
            attempts.busy -= len(rows)
        await self.store.outbox.record_results(results)
        return len(rows)

    def poke(self) -> None:
        """Something new may be due sooner than the worker thinks."""
        self.wake.poke()

    async def run(self) -> None:
        released = await self.store.outbox.release_leases()
        if released:
            log.info("resuming deliveries interrupted by a stop", items=released)
        wake = self.wake.event
        while not self._stopping:
            self.last_loop_at = time.monotonic()
            # cleared before looking, not after: a poke (new work, stop()) that comes while this
            # turn awaits the database stays set, and the wait below returns at once for it
            wake.clear()
            try:
                done = await self.run_once()
                for timer in self.timers:
                    done += await timer.run_due()
            except Exception:
                log.exception("dispatch loop error")
                done = 0
            if done:
                continue
            dues = [await self.store.outbox.next_due_at(), *[await timer.next_due_at() for timer in self.timers]]
            due = min((d for d in dues if d is not None), default=None)
            wait = 1.0 if due is None else min(1.0, max(0.02, due - self.clock.timestamp()))
            try:
                await asyncio.wait_for(wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self.wake.poke()
