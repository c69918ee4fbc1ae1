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
"""
from __future__ import annotations

import asyncio
import inspect
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import structlog

from ..store import StoreError
from ..store.postgres import cluster, translated

log = structlog.get_logger("alertd.cluster")


class ClusterNode:
    def __init__(self, pool: Any, node_id: str, lease: float, *,
                 on_change: Callable[[bool], Awaitable[None] | None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 db_time: Callable[[], float | None] = lambda: None):
        """``pool``: an asyncpg pool; ``db_time`` replaces the database's clock (tests)."""
        self.pool, self.node_id, self.lease = pool, node_id, lease
        self.on_change = on_change
        self.monotonic, self.db_time = monotonic, db_time
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
                await cluster.heartbeat(conn, self.node_id, at=self.db_time())
                held = await cluster.acquire(conn, self.node_id, self.lease, at=self.db_time())
        except StoreError as exc:
            if self.reachable:
                log.warning("database unreachable", node=self.node_id, error=str(exc))
            self.reachable = False
            await self._set(self.leader and self.monotonic() < self._valid_until)
            return self.leader
        self.reachable = True
        if held is not None:
            self._valid_until = sent + self.lease - self.margin
            self.term = held.term
        await self._set(held is not None)
        return self.leader

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
