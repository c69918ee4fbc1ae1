"""Heartbeats at work: pings in, deadlines watched, flips stored.

``Heartbeats`` keeps each heartbeat rule's row in step with the rule set,
takes pings (alertd/api/ping.py), and runs one timer task that sleeps until
the earliest stored deadline (``heartbeats.down_at``) and then ticks: exact
to the event loop's wake-up, not a poll. The states themselves come from the
pure alertd/engine/heartbeat.py.

A flip that notifies is stored with ``owed = 1`` in the same transaction as
the state; the notices (alertd/dispatch/heartbeats.py) hand it to the rules'
notification path and then clear ``owed``, beside the timer, so a slow
provider never delays the next deadline. A deadline that passed while alertd
was stopped is due at start and ticks once: the check goes down once,
whatever number of periods it missed.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from ..clock import from_timestamp, iso
from ..engine import heartbeat as hb

log = structlog.get_logger("alertd.heartbeat")
BODY_LIMIT = 100_000   # bytes of a ping's body kept (hc-ping.com's limit)
MAX_WAIT = 10.0        # seconds: the timer also looks again this often (a CLI pause or resume)
RETRY_OWED = 5.0       # seconds, when the database refused a notification
# seconds between looks for owed flips nobody is sending: on PostgreSQL, a node that died between
# claiming a flip and sending its notice leaves it owed, and its claim runs out (OWED_LEASE in
# store/postgres/heartbeats.py) with no flip, ping or start to come and find it
OWED_SWEEP = 15.0
BATCH = 200            # deadlines applied per transaction and turn of the event loop (about 30 ms)


def notifies(rule, flip: hb.Flip) -> bool:
    """Down always notifies; back up from down when the rule says notify_resolved."""
    return flip.new == "down" or (flip.old == "down" and flip.new == "up" and rule.notify_resolved)


def event_for(rule_id: str, row, check: hb.Check, flip: hb.Flip, now: float, *, body: str = "",
              last_ping_at: float | None, exit_status: int | None = None) -> dict:
    """What a notification's templates see as ``event`` (``last_ping_ago`` as of ``now``)."""
    return {"check": rule_id, "uuid": row["uuid"], "slug": row["slug"], "state": flip.new, "previous": flip.old,
            "reason": flip.reason if flip.new == "down" else (check.reason or row["reason"] or flip.reason),
            "last_ping_at": iso(from_timestamp(last_ping_at)),
            "last_ping_ago": hb.ago(now - last_ping_at) if last_ping_at is not None else "never",
            "body": body, "exit_status": exit_status, "at": iso(from_timestamp(flip.at))}


class Heartbeats:
    """``notices``: what sends owed flips (alertd/dispatch/heartbeats.py, ``send_owed``)."""

    def __init__(self, store, clock, notices):
        self.store, self.clock, self.notices = store, clock, notices
        self.rules: dict[str, Any] = {}
        self.specs: dict[str, hb.Spec] = {}
        self.by_uuid: dict[str, str] = {}
        self.by_slug: dict[str, str] = {}
        self._wake: asyncio.Event | None = None
        self._target: float | None = None  # the deadline the timer sleeps until
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.syncing: asyncio.Task | None = None  # the latest sync_soon, until it is done
        self._background: set[asyncio.Task] = set()
        self.sweep_every = OWED_SWEEP

    # --- the rule set --------------------------------------------------------
    async def sync(self, ruleset) -> None:
        """Make the rows match the heartbeat rules of ``ruleset``; deadlines follow changed periods."""
        now = self.clock.timestamp()
        wanted = {rid: r for rid, r in ruleset.rules.items() if r.source.heartbeat is not None}
        specs = {rid: hb.Spec.of(r.source.heartbeat, ruleset.timezone_of(r)) for rid, r in wanted.items()}
        uuids = await self.store.heartbeats.write(_sync_write, self.store.heartbeats, wanted, specs, now)
        self.rules, self.specs = wanted, specs
        self.by_uuid = {u: rid for rid, u in uuids.items()}
        self.by_slug = {r.source.heartbeat.slug: rid for rid, r in wanted.items() if r.source.heartbeat.slug}
        self.poke()

    def sync_soon(self, ruleset) -> None:
        """``sync`` from a caller that cannot wait (a reload): it runs on the loop at once."""
        self.syncing = self._spawn(self._sync_logged(ruleset))

    async def _sync_logged(self, ruleset) -> None:
        try:
            await self.sync(ruleset)
        except Exception:  # the database refused: the rows catch up at the next reload or start
            log.exception("heartbeat rules not synced")

    # --- pings ---------------------------------------------------------------------
    async def ping(self, rule_id: str, kind: str, *, exit_status: int | None = None, rid: str = "",
                   body: str = "", method: str = "GET", remote: str | None = None) -> None:
        """Record a ping and apply it. Raises KeyError when ``rule_id`` is no longer loaded (a reload
        since its lookup), the store's StoreError when it could not be stored."""
        rule, spec = self.rules[rule_id], self.specs[rule_id]
        now = self.clock.timestamp()
        try:
            owed, deadline = await self.store.batch.run(_ping_write, self.store.heartbeats, rule, spec, kind,
                                                        exit_status, rid, body, method, remote, now)
        except Exception as exc:
            log.error("ping not stored", rule_id=rule_id, error=str(exc))
            raise
        if deadline is not None and (self._target is None or deadline < self._target):
            self.poke()  # sooner than the timer's sleep: a start, or a shorter period
        if owed:
            self._spawn(self.send_owed())

    async def set_paused(self, name: str, paused: bool) -> hb.Flip | None:
        """set_paused for this daemon's rule set; the timer looks at the new deadline."""
        flip = await set_paused(self.store, name, paused, self.specs.get(name), self.clock.timestamp())
        self.poke()
        return flip

    # --- deadlines ------------------------------------------------------------------
    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def tick(self) -> int:
        """Apply the deadlines that have passed, up to BATCH of them (the timer runs again at once
        while more are due, so a start after a long stop does not hold the event loop); returns
        the number of flips."""
        started = time.process_time()
        now = self.clock.timestamp()
        rows = await self.store.heartbeats.due(now, BATCH)
        if not rows:
            return 0
        flips = await self.store.heartbeats.write(self._tick_rows, rows, now)
        log.info("heartbeat deadlines", checked=len(rows), flips=flips,
                 late_ms=round((now - rows[0]["down_at"]) * 1000, 1),
                 cpu_ms=round((time.process_time() - started) * 1000, 2))
        return flips

    async def _tick_rows(self, tx, rows, now: float) -> int:
        return sum([await self._tick_one(tx, row, now) for row in rows])

    async def _tick_one(self, tx, row, now: float) -> int:
        table, rid = self.store.heartbeats, row["rule_id"]
        spec, rule = self.specs.get(rid), self.rules.get(rid)
        if spec is None or rule is None:  # not a loaded rule: no deadline to keep
            await table.clear_deadline(tx, rid)
            return 0
        check = hb.check_of(row)
        new, flip = hb.tick(check, spec, now)
        owed = flip is not None and notifies(rule, flip)
        event = event_for(rid, row, new, flip, now, last_ping_at=row["last_ping_at"]) if owed else None
        # only if the deadline is still the one read: it fires once
        if await table.save(tx, rid, new, hb.down_at(new, spec), flip, owed=owed, event=event,
                      expect_down_at=row["down_at"]) and flip is not None:
            log.info("heartbeat flip", rule_id=rid, old=flip.old, new=flip.new, reason=flip.reason)
            return 1
        return 0

    async def run(self) -> None:
        """The timer: tick at each deadline until cancelled. Notifications go out beside it (owed ones
        from before a stop first), so a slow provider never delays the next deadline."""
        self._wake = asyncio.Event()
        self._spawn(self.send_owed())
        loop = asyncio.get_running_loop()
        sweep_at = loop.time() + self.sweep_every
        while not self._stopping:
            nxt = None
            # cleared before looking, not after: a poke (a ping's sooner deadline, a pause) that comes
            # while this turn awaits the database stays set, and the wait below returns at once for it
            self._wake.clear()
            try:
                sweep = loop.time() >= sweep_at  # also what another node owed and never sent (OWED_SWEEP)
                if sweep:
                    sweep_at = loop.time() + self.sweep_every
                if await self.tick() or sweep:
                    self._spawn(self.send_owed())
                nxt = await self.store.heartbeats.next_due()
            except Exception:  # the database refused, or a bug: try again, never stop watching
                log.exception("heartbeat deadlines failed")
            self._target = nxt
            wait = MAX_WAIT if nxt is None else min(MAX_WAIT, max(0.0, nxt - self.clock.timestamp()))
            wait = min(wait, max(0.0, sweep_at - loop.time()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="heartbeats")

    async def stop(self) -> None:
        # the flag and the poke as well as the cancel: a cancel that lands as the timer's wait ends can be
        # swallowed (Python 3.11's wait_for then returns the wait's result), and the timer went on turning
        # while stop() awaited it for ever: a stop just after a ping hung the daemon's shutdown
        self._stopping = True
        self.poke()
        for task in (self._task, *self._background):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- notifications ---------------------------------------------------------------
    async def send_owed(self) -> int:
        """Have every owed flip notified; when the database refused one, try again RETRY_OWED later.
        Returns how many were handed over."""
        sent, done = await self.notices.send_owed()
        if not done:
            self._spawn(self._later(RETRY_OWED))
        return sent

    async def _later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.send_owed()



async def set_paused(store, name: str, paused: bool, spec: hb.Spec | None, now: float) -> hb.Flip | None:
    """Pause or resume check ``name`` (``spec`` is needed to resume); the flip, or None when it
    already was so. Raises KeyError for a name that is no loaded heartbeat."""
    flip = await store.heartbeats.write(_pause_write, store.heartbeats, name, paused, spec, now)
    if flip is not None:
        log.info("heartbeat flip", rule_id=name, old=flip.old, new=flip.new, reason=flip.reason)
    return flip


async def _pause_write(tx, table, name: str, paused: bool, spec: hb.Spec | None, now: float) -> hb.Flip | None:
    row = await table.read(tx, name)
    if row is None or not row["present"] or (not paused and spec is None):
        raise KeyError(name)
    check = hb.check_of(row)
    new, flip = hb.pause(check, now) if paused else hb.resume(check, now)
    if flip is not None:
        await table.save(tx, name, new, hb.down_at(new, spec) if spec else None, flip)
    return flip


async def _sync_write(tx, table, wanted: dict, specs: dict[str, hb.Spec], now: float) -> dict[str, str]:
    """One transaction: the rows of the loaded heartbeat rules claimed, each deadline from its spec."""
    uuids = await table.claim(tx, {rid: (r.source.heartbeat.uuid, r.source.heartbeat.slug) for rid, r in wanted.items()},
                        now)
    for rid, spec in specs.items():
        check = hb.check_of(await table.read(tx, rid))
        await table.save(tx, rid, check, hb.down_at(check, spec))
    return uuids


async def _ping_write(tx, table, rule, spec: hb.Spec, kind: str, exit_status, rid: str, body: str, method: str, remote,
                now: float) -> tuple[bool, float | None]:
    """Inside the group commit: the ping, the new state and its flip, together.
    Returns (a notification is owed, the new deadline)."""
    row = await table.read(tx, rule.id)
    check = hb.check_of(row)
    new, flip, duration = hb.ping(check, spec, kind, now, rid=rid, exit_status=exit_status)
    stored_kind = kind if exit_status is None else ("success" if exit_status == 0 else "fail")
    await table.add_ping(tx, rule.id, at=now, kind=stored_kind, exit_status=exit_status, rid=rid, duration=duration,
                   method=method, remote=remote, body=body)
    deadline = hb.down_at(new, spec)
    if new == check and deadline == row["down_at"]:
        return False, deadline
    owed = flip is not None and notifies(rule, flip)
    event = (event_for(rule.id, row, check, flip, now, body=body, last_ping_at=now, exit_status=exit_status)
             if owed else None)
    await table.save(tx, rule.id, new, deadline, flip, owed=owed, event=event)
    if flip is not None:
        log.info("heartbeat flip", rule_id=rule.id, old=flip.old, new=flip.new, reason=flip.reason)
    return owed, deadline
