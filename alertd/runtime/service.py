"""alertd under systemd: the uvicorn server that says when it is ready, when it
stops, and that its loops are alive (the protocol is in alertd/runtime/sdnotify.py).

READY=1 goes out only after uvicorn listens: the lifespan startup (database
open, rules loaded, dispatcher and scheduler running) completes before uvicorn
binds its socket, so "lifespan done" would be too early for a client started
``After=alertd.service``.
"""
from __future__ import annotations

import asyncio
import math
import time

import uvicorn

from .sdnotify import Notifier, keep_alive

# Dispatcher.run_once attempts up to this many due items per turn of the loop
RUN_ONCE_BATCH = 200


def stalled_after(config) -> float:
    """Seconds without a turn of the dispatcher loop after which it counts as hung.

    An idle loop turns at least once a second, but one turn may legitimately
    last a whole burst: RUN_ONCE_BATCH attempts, ``max_concurrency`` at a time,
    each bounded by ``provider.timeout``. Restarting in the middle of that
    would repeat sends that were in flight, so the bound is that worst case.
    """
    waves = math.ceil(RUN_ONCE_BATCH / config.provider.max_concurrency)
    return max(60.0, waves * config.provider.timeout.total_seconds() + 30.0)


def loops_problem(daemon, now: float | None = None) -> str | None:
    """What is wrong with the daemon's own loops, or None while they are alive.

    ``now`` is a time.monotonic() reading (Dispatcher.last_loop_at's clock).
    """
    now = time.monotonic() if now is None else now
    worker, dispatcher = daemon._worker, daemon.dispatcher
    if worker is None or dispatcher is None or worker.done():
        return "the dispatcher task has ended"
    age = now - dispatcher.last_loop_at
    if age > stalled_after(daemon.config):
        return f"the dispatcher loop has not turned for {age:.0f}s"
    if daemon.scheduler is None or not daemon.scheduler.scheduler.running:
        return "the scheduler is not running"
    return None


class NotifyingServer(uvicorn.Server):
    """uvicorn.Server plus sd_notify: READY=1 once listening, WATCHDOG=1 while
    :func:`loops_problem` finds nothing, STOPPING=1 as shutdown begins.
    Without $NOTIFY_SOCKET it behaves exactly like uvicorn.Server."""

    def __init__(self, daemon, config: uvicorn.Config, notifier: Notifier | None = None):
        super().__init__(config)
        self.daemon = daemon
        self.notifier = notifier or Notifier()
        self._watchdog: asyncio.Task | None = None

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)  # exits the process when startup fails
        if not self.started:
            return
        rules = self.daemon.rules
        status = f"listening on {self.daemon.config.server.listen}; {len(self.daemon.runner.ruleset)} rules loaded"
        if rules.errors:
            status += f", {len(rules.errors)} rule file problems (see the log)"
        self.notifier.ready(status)
        interval = self.notifier.watchdog_interval()
        if interval:
            self._watchdog = asyncio.create_task(
                keep_alive(self.notifier, lambda: loops_problem(self.daemon), interval), name="systemd-watchdog")

    async def shutdown(self, sockets=None) -> None:
        self.notifier.stopping()
        if self._watchdog is not None:
            # what remains is bounded by TimeoutStopSec=, not by the watchdog
            self._watchdog.cancel()
        await super().shutdown(sockets=sockets)
