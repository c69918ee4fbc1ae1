"""Heartbeats at work: pings in, deadlines watched, flips notified.

``Heartbeats`` keeps each heartbeat rule's row in step with the rule set,
takes pings (alertd/api/ping.py), and runs one timer task that sleeps until
the earliest stored deadline (``heartbeats.down_at``) and then ticks: exact
to the event loop's wake-up, not a poll. The states themselves come from the
pure alertd/engine/heartbeat.py.

A flip that notifies is stored with ``owed = 1`` in the same transaction as
the state; ``send_owed`` hands it to the rules' notification path
(evaluate -> rows -> Daemon.submit, so silences, escalation, retries and the
press of 1 apply as to any rule) and then clears ``owed``. A stop between
the two sends it at the next start: at least once, never lost. A deadline
that passed while alertd was stopped is due at start and ticks once: the
check goes down once, whatever number of periods it missed.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid as uuid_mod
from typing import Any

import structlog

from ..clock import from_timestamp, iso
from ..engine import heartbeat as hb
from ..store import StoreError
from ..store import heartbeats as q

log = structlog.get_logger("alertd.heartbeat")
BODY_LIMIT = 100_000   # bytes of a ping's body kept (hc-ping.com's limit)
MAX_WAIT = 10.0        # seconds: the timer also looks again this often (a CLI pause or resume)
RETRY_OWED = 5.0       # seconds, when the database refused a notification
OWED_BATCH = 100       # owed notifications read at a time (all are sent, batch after batch)
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
    def __init__(self, daemon):
        self.daemon = daemon
        self.rules: dict[str, Any] = {}
        self.specs: dict[str, hb.Spec] = {}
        self.by_uuid: dict[str, str] = {}
        self.by_slug: dict[str, str] = {}
        self._wake: asyncio.Event | None = None
        self._target: float | None = None  # the deadline the timer sleeps until
        self._task: asyncio.Task | None = None
        self._sending: asyncio.Lock | None = None
        self._background: set[asyncio.Task] = set()

    @property
    def store(self):
        return self.daemon.store

    # --- the rule set --------------------------------------------------------
    def sync(self, ruleset) -> None:
        """Make the rows match the heartbeat rules of ``ruleset``; deadlines follow changed periods."""
        now = self.daemon.clock.timestamp()
        wanted = {rid: r for rid, r in ruleset.rules.items() if r.source.heartbeat is not None}
        with self.store.tx() as c:
            held = {r["rule_id"]: r["uuid"] for r in c.execute("SELECT rule_id, uuid FROM heartbeats")}
            uuids = {rid: r.source.heartbeat.uuid or held.get(rid) or str(uuid_mod.uuid4())
                     for rid, r in wanted.items()}
            _free(c, uuids, held)
            c.execute("UPDATE heartbeats SET slug = NULL")  # slugs may move between rules in one reload
            q.mark_absent(c, set(wanted))
            for rid, rule in wanted.items():
                q.ensure(c, rid, uuids[rid], rule.source.heartbeat.slug, now)
                spec = hb.Spec.of(rule.source.heartbeat, ruleset.timezone_of(rule))
                check = q.check_of(q.get(c, rid))
                q.save(c, rid, check, hb.down_at(check, spec))
                self.specs[rid] = spec
        self.rules = wanted
        self.specs = {rid: s for rid, s in self.specs.items() if rid in wanted}
        self.by_uuid = {u: rid for rid, u in uuids.items()}
        self.by_slug = {r.source.heartbeat.slug: rid for rid, r in wanted.items() if r.source.heartbeat.slug}
        self.poke()

    # --- pings ---------------------------------------------------------------------
    async def ping(self, rule_id: str, kind: str, *, exit_status: int | None = None, rid: str = "",
                   body: str = "", method: str = "GET", remote: str | None = None) -> None:
        """Record a ping and apply it. Raises KeyError when ``rule_id`` is no longer loaded (a reload
        since its lookup), StoreError when it could not be stored."""
        rule, spec = self.rules[rule_id], self.specs[rule_id]
        now = self.daemon.clock.timestamp()
        try:
            owed, deadline = await self.store.group.run(_ping_write, rule, spec, kind, exit_status, rid, body,
                                                        method, remote, now)
        except sqlite3.Error as exc:
            log.error("ping not stored", rule_id=rule_id, error=str(exc))
            raise StoreError("The database cannot be written; the ping was not recorded.") from None
        if deadline is not None and (self._target is None or deadline < self._target):
            self.poke()  # sooner than the timer's sleep: a start, or a shorter period
        if owed:
            self._spawn(self.send_owed())

    def set_paused(self, name: str, paused: bool) -> hb.Flip | None:
        """set_paused for this daemon's rule set; the timer looks at the new deadline."""
        flip = set_paused(self.store, name, paused, self.specs.get(name), self.daemon.clock.timestamp())
        self.poke()
        return flip

    # --- deadlines ------------------------------------------------------------------
    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def tick(self) -> int:
        """Apply the deadlines that have passed, up to BATCH of them (the timer runs again at once
        while more are due, so a start after a long stop does not hold the event loop); returns
        the number of flips."""
        started = time.process_time()
        now = self.daemon.clock.timestamp()
        rows = q.due(self.store, now, BATCH)
        if not rows:
            return 0
        with self.store.tx() as c:
            flips = sum(self._tick_one(c, row, now) for row in rows)
        log.info("heartbeat deadlines", checked=len(rows), flips=flips,
                 late_ms=round((now - rows[0]["down_at"]) * 1000, 1),
                 cpu_ms=round((time.process_time() - started) * 1000, 2))
        return flips

    def _tick_one(self, c, row, now: float) -> int:
        rid = row["rule_id"]
        spec, rule = self.specs.get(rid), self.rules.get(rid)
        if spec is None or rule is None:  # not a loaded rule: no deadline to keep
            c.execute("UPDATE heartbeats SET down_at = NULL WHERE rule_id = ?", (rid,))
            return 0
        check = q.check_of(row)
        new, flip = hb.tick(check, spec, now)
        owed = flip is not None and notifies(rule, flip)
        event = event_for(rid, row, new, flip, now, last_ping_at=row["last_ping_at"]) if owed else None
        # only if the deadline is still the one read: it fires once
        if q.save(c, rid, new, hb.down_at(new, spec), flip, owed=owed, event=event,
                  expect_down_at=row["down_at"]) and flip is not None:
            log.info("heartbeat flip", rule_id=rid, old=flip.old, new=flip.new, reason=flip.reason)
            return 1
        return 0

    async def run(self) -> None:
        """The timer: tick at each deadline until cancelled. Notifications go out beside it (owed ones
        from before a stop first), so a slow provider never delays the next deadline."""
        self._wake = asyncio.Event()
        self._spawn(self.send_owed())
        while True:
            try:
                if self.tick():
                    self._spawn(self.send_owed())
            except Exception:  # the database refused, or a bug: try again, never stop watching
                log.exception("heartbeat deadlines failed")
            nxt = q.next_due(self.store)
            self._target = nxt
            wait = MAX_WAIT if nxt is None else min(MAX_WAIT, max(0.0, nxt - self.daemon.clock.timestamp()))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="heartbeats")

    async def stop(self) -> None:
        for task in (self._task, *self._background):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- notifications ---------------------------------------------------------------
    async def send_owed(self) -> int:
        """Notify every owed flip through the rules' path; returns how many were handed over."""
        if self._sending is None:
            self._sending = asyncio.Lock()
        sent = 0
        async with self._sending:  # a ping and the timer may both ask: each flip once
            while batch := q.owed_flips(self.store, OWED_BATCH):
                for flip in batch:
                    try:
                        await self._notify(flip)
                    except (StoreError, sqlite3.Error):
                        log.error("heartbeat notification not stored; trying again", rule_id=flip["rule_id"])
                        self._spawn(self._later(RETRY_OWED))
                        return sent
                    except Exception:  # a bug costs this notification, not the others or the timer
                        log.exception("heartbeat notification failed", rule_id=flip["rule_id"])
                    q.settle(self.store, flip["id"])
                    sent += 1
        return sent

    async def _later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.send_owed()

    async def _notify(self, flip) -> None:
        rule = self.rules.get(flip["rule_id"])
        if rule is None:
            log.warning("heartbeat flip of a rule no longer loaded; not notified", rule_id=flip["rule_id"])
            return
        daemon, runner = self.daemon, self.daemon.runner
        event = json.loads(flip["event"] or "{}")
        now = daemon.clock.now()
        event_id = daemon.store.record_event("heartbeat", rule.id, event, now.timestamp())
        decision = runner.evaluate(rule, event, now, resolved=flip["new"] == "up")
        if not decision.notify:  # outside the rule's active window
            log.info("heartbeat flip outside the active window; not notified", rule_id=rule.id)
            return
        decision.dedup_key = rule.id
        trigger, rows = runner.rows(rule, decision)
        trigger["event_id"] = event_id
        stored = await daemon.submit(trigger, rows)
        daemon.store.set_event_fired(event_id, [rule.id])
        log.info("rule fired", rule_id=rule.id, heartbeat=flip["new"], reason=event.get("reason"),
                 log_ids=[r["log_id"] for r in stored])


def set_paused(store, name: str, paused: bool, spec: hb.Spec | None, now: float) -> hb.Flip | None:
    """Pause or resume check ``name`` (``spec`` is needed to resume); the flip, or None when it
    already was so. Raises KeyError for a name that is no loaded heartbeat."""
    with store.tx() as c:
        row = q.get(c, name)
        if row is None or not row["present"] or (not paused and spec is None):
            raise KeyError(name)
        check = q.check_of(row)
        new, flip = hb.pause(check, now) if paused else hb.resume(check, now)
        if flip is not None:
            q.save(c, name, new, hb.down_at(new, spec) if spec else None, flip)
    if flip is not None:
        log.info("heartbeat flip", rule_id=name, old=flip.old, new=flip.new, reason=flip.reason)
    return flip


def _free(c, uuids: dict[str, str], held: dict[str, str]) -> None:
    """Let each wanted uuid be taken: a row of another rule that holds it (a renamed rule, two
    rules trading uuids) gets a placeholder first; a gone rule's row that held it is dropped."""
    holder = {u: rid for rid, u in held.items()}
    for rid, u in uuids.items():
        other = holder.get(u)
        if other is None or other == rid:
            continue
        if other in uuids:
            c.execute("UPDATE heartbeats SET uuid = ? WHERE rule_id = ?", (f"moving:{other}", other))
        else:
            for table in ("heartbeats", "heartbeat_pings", "heartbeat_flips"):
                c.execute(f"DELETE FROM {table} WHERE rule_id = ?", (other,))


def _ping_write(c, rule, spec: hb.Spec, kind: str, exit_status, rid: str, body: str, method: str, remote,
                now: float) -> tuple[bool, float | None]:
    """Inside the group commit: the ping, the new state and its flip, together.
    Returns (a notification is owed, the new deadline)."""
    row = q.get(c, rule.id)
    check = q.check_of(row)
    new, flip, duration = hb.ping(check, spec, kind, now, rid=rid, exit_status=exit_status)
    stored_kind = kind if exit_status is None else ("success" if exit_status == 0 else "fail")
    q.add_ping(c, rule.id, at=now, kind=stored_kind, exit_status=exit_status, rid=rid, duration=duration,
               method=method, remote=remote, body=body)
    deadline = hb.down_at(new, spec)
    if new == check and deadline == row["down_at"]:
        return False, deadline
    owed = flip is not None and notifies(rule, flip)
    event = (event_for(rule.id, row, check, flip, now, body=body, last_ping_at=now, exit_status=exit_status)
             if owed else None)
    q.save(c, rule.id, new, deadline, flip, owed=owed, event=event)
    if flip is not None:
        log.info("heartbeat flip", rule_id=rule.id, old=flip.old, new=flip.new, reason=flip.reason)
    return owed, deadline
