"""This node in a cluster on PostgreSQL: its heartbeat, and whether it leads.

Every ``lease / 3`` seconds a node records its contact and takes or renews the leader
lease (alertd/store/postgres/cluster.py: a row whose expiry is on the database's
clock). The leader runs the work that must run once (schedules and polls, retention,
the dead man's switch): ``on_change(True)`` starts it, ``on_change(False)`` stops it.

A leader that cannot reach the database steps down by itself before its lease can have
run out: it counts the lease from the moment it sent the renewal, on its own monotonic
clock, less a margin; so by the time another node may take the lease, this one has
stopped. Work fenced in the database (a schedule tick is recorded only by the node
holding an unexpired lease) stays safe even if this node was frozen meanwhile.

The same round trip measures how far this node's clock is from the database's (the
database's time the heartbeat recorded, against the midpoint of the round trip on the
node's clock): the daemon's clock (alertd/clock.py ``SyncedClock``) follows it, so every
due time this node writes or compares is on the database's clock. An offset over
``WARN_OFFSET`` seconds is logged as a warning naming the node: its NTP is off.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import structlog

from ..clock import WARN_OFFSET, SyncedClock
from ..store import StoreError
from ..store.postgres import cluster, translated

log = structlog.get_logger("alertd.cluster")


class ClusterNode:
    def __init__(self, pool: Any, node_id: str, lease: float, *,
                 on_change: Callable[[bool], Awaitable[None] | None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 db_time: Callable[[], float | None] = lambda: None, clock: SyncedClock | None = None):
        """``pool``: an asyncpg pool; ``db_time`` replaces the database's clock (tests);
        ``clock``: the daemon's clock, kept in step with the database's at each tick."""
        self.pool, self.node_id, self.lease = pool, node_id, lease
        self.on_change = on_change
        self.monotonic, self.db_time = monotonic, db_time
        self.clock = clock
        self._warned: float | None = None  # the offset last warned about, while it is over WARN_OFFSET
        self.leader = False
        self.term: int | None = None
        self.reachable = True
        self._valid_until = 0.0  # monotonic: until when the last renewal surely holds
        self._task: asyncio.Task | None = None

    @property
    def margin(self) -> float:
        return min(1.0, self.lease / 5)

    async def tick(self) -> bool:
        """Record this node's contact and take or renew the lease; returns whether it leads now."""
        sent = self.monotonic()
        try:
            async with translated(), self.pool.acquire() as conn:
                before = self._wall()
                db_now = await cluster.heartbeat(conn, self.node_id, at=self.db_time())
                after = self._wall()
                held = await cluster.acquire(conn, self.node_id, self.lease, at=self.db_time())
        except StoreError as exc:
            if self.reachable:
                log.warning("database unreachable", node=self.node_id, error=str(exc))
            self.reachable = False
            await self._set(self.leader and self.monotonic() < self._valid_until)
            return self.leader
        self.reachable = True
        self._measured(before, db_now, after)
        if held is not None:
            self._valid_until = sent + self.lease - self.margin
            self.term = held.term
        await self._set(held is not None)
        return self.leader

    async def measure_clock(self) -> float | None:
        """One round trip to read the database's clock (at start, before anything is
        written); returns the offset, or None when the database did not answer or this
        node's clock follows no database (a test's)."""
        if self.clock is None:
            return None
        try:
            async with translated(), self.pool.acquire() as conn:
                before = self._wall()
                db_now = self.db_time() or await cluster.now(conn)
                after = self._wall()
        except StoreError as exc:
            log.warning("database clock not read", node=self.node_id, error=str(exc))
            return None
        self._measured(before, db_now, after)
        return self.clock.offset

    def _wall(self) -> float:
        """The machine's own clock (what the offset is added to)."""
        return self.clock.base.timestamp() if self.clock is not None else 0.0

    def _measured(self, before: float, db_now: float, after: float) -> None:
        if self.clock is None or not self.clock.measured(before, db_now, after):
            return
        offset = self.clock.offset
        if abs(offset) > WARN_OFFSET:
            if self._warned is None or abs(offset - self._warned) > WARN_OFFSET:
                log.warning("clock off the database's", node=self.node_id, offset_seconds=round(offset, 3),
                            round_trip_ms=round(self.clock.round_trip * 1000, 1),
                            hint="this node follows the database's clock meanwhile; check its NTP")
                self._warned = offset
        elif self._warned is not None:
            log.info("clock back within a second of the database's", node=self.node_id,
                     offset_seconds=round(offset, 3))
            self._warned = None

    async def _set(self, leads: bool) -> None:
        if leads == self.leader:
            return
        self.leader = leads
        log.info("leader" if leads else "follower", node=self.node_id, term=self.term)
        if self.on_change is not None:
            done = self.on_change(leads)
            if inspect.isawaitable(done):
                await done

    async def run(self) -> None:
        """Tick every lease / 3 seconds until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(self.lease / 3)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        """Stop ticking; a leader gives the lease up so another node takes over at once."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.leader:
            try:
                async with translated(), self.pool.acquire() as conn:
                    await cluster.release(conn, self.node_id, at=self.db_time())
            except StoreError:
                pass  # it runs out by itself
            await self._set(False)


class ClusterTicks:
    """The fired schedule ticks in the database (alertd/sources/schedule.py's ``Ticks``):
    a tick runs only once recorded, and only for the node leading at that moment."""

    def __init__(self, pool: Any, node_id: str):
        self.pool, self.node_id = pool, node_id

    async def claim(self, rule_id: str, scheduled: datetime) -> bool:
        try:
            async with translated(), self.pool().acquire() as conn:
                return await cluster.claim_tick(conn, rule_id, scheduled.timestamp(), self.node_id)
        except StoreError as exc:  # not recorded: not run (the next leader catches it up)
            log.warning("tick not recorded", rule_id=rule_id, scheduled=scheduled.isoformat(), error=str(exc))
            return False

    async def last(self, rule_id: str) -> datetime | None:
        async with translated(), self.pool().acquire() as conn:
            at = await cluster.last_tick(conn, rule_id)
        return None if at is None else datetime.fromtimestamp(at, timezone.utc)
