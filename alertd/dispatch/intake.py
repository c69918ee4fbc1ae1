"""The one way into the outbox: store a trigger durably, then make each row's first attempt.

The API, the rules, follow-ups and the dashboard's test send all call
``Intake.submit``. Every send is written to the database before the provider
is asked, so an accepted request survives a crash. The first attempt is made
inline, so the phone starts ringing without waiting for the worker; the
worker (worker.py) takes what is left: retries after backoff, deferred sends,
and whatever a crash interrupted.

Before the rows are stored, the write-time policies run in the order of
POLICIES, inside the transaction that stores them, so what they decide is
stored with the rows it decided on:

    silence   a row an active silence holds back is stored 'silenced' (silences.py)
    storm     a row over limits.per_number is stored 'throttled', folded into a summary (storm.py)
    defer     a row still to send with a later send_at is stored 'scheduled' (the worker's from the start)

A send that must go out once per something (a shift notice, a voicemail)
passes ``once`` (``Once``): its claim runs first in that same transaction.
"""
from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import structlog

from ..store import Store, StoreError, StoreUnavailable, row_status
from . import silences, storm
from .attempt import Attempts
from .notification import Notification

log = structlog.get_logger("alertd.dispatch")


def lease_seconds(config) -> float:
    """How long an outbox item in flight stays its sender's: longer than a provider request
    can take (provider.timeout, with room for a retry's backoff), so it is never taken twice;
    short enough that, on several nodes, a dead node's items go to the others soon."""
    return 2 * config.provider.timeout.total_seconds() + 10
UNWRITABLE = "The database cannot be written; nothing was accepted. Try again."


async def _silence(store, tx, config, trigger: dict, rows: list[Notification], now: float) -> None:
    await silences.hold_back(store, trigger, rows, now)


async def _storm(store, tx, config, trigger: dict, rows: list[Notification], now: float) -> Callable | None:
    return await storm.fold(store, tx, rows, now, config.limits.per_number)


async def _defer(store, tx, config, trigger: dict, rows: list[Notification], now: float) -> None:
    # only rows still to send are deferred: a silenced or failed row keeps its status
    for r in rows:
        if r.send_at and r.send_at > now and r.status == "queued":
            r.status = "scheduled"


# (name, policy): each awaits (store, tx, config, trigger, rows, now) inside the transaction that
# stores the rows, may change their status and channels, and may return a write ``step(tx)``
# (a coroutine function) to run in it before they are stored
POLICIES: tuple[tuple[str, Callable], ...] = (("silence", _silence), ("storm", _storm), ("defer", _defer))


async def _nothing(tx, trigger_id: int) -> None:
    pass


@dataclass(frozen=True)
class Once:
    """A send that must go out once per something (a shift, a voicemail), also across a
    restart: ``await claim(tx)`` writes the record that says "this was sent" and returns False
    when it was there already; ``await record(tx, trigger_id)`` completes it. Both run in the
    transaction that stores the trigger and its outbox items, so a crash leaves both or
    neither: what the claim guards goes out at most once and, once stored, at least once."""
    claim: Callable[[Any], Awaitable[bool]]
    record: Callable[[Any, int], Awaitable[None]] = _nothing


class _AsGiven:
    """The trigger and rows as submit got them. A write of the group commit may run a second
    time, after its first run was rolled back with another write's failure
    (alertd/store/postgres/batch.py): it must start again from these, not from the ids and
    statuses its first run set (a trigger_id that was rolled back, a row already 'silenced')."""

    def __init__(self, trigger: dict, rows: list[Notification]):
        self.live, self.trigger = trigger, _copied(trigger)
        self.rows = [(r, _copied(vars(r))) for r in rows]
        self.runs = 0

    def start(self) -> None:
        """At the start of each run; from the second on, put everything back as given."""
        self.runs += 1
        if self.runs == 1:
            return
        self.live.clear()
        self.live.update(_copied(self.trigger))
        for row, fields in self.rows:
            for name, value in _copied(fields).items():
                setattr(row, name, value)


def _copied(fields: dict) -> dict:
    """A copy deep enough for what the policies and the insert change (lists and dicts they append to)."""
    return {k: v.copy() if isinstance(v, (list, dict)) else v for k, v in fields.items()}


class Intake:
    def __init__(self, store: Store, attempts: Attempts, config, clock, metrics, wake, *, policies=POLICIES):
        self.store, self.attempts, self.config, self.clock = store, attempts, config, clock
        self.metrics, self.wake, self.policies = metrics, wake, policies

    async def submit(self, trigger: dict, rows: list[Notification], *, once: Once | None = None) -> list[Notification]:
        """Store a trigger durably, then make the first attempt of every row now
        (rows with a future ``send_at`` wait for the worker). Returns the rows
        with their ids and status; [] when ``once`` found its send made before.
        Raises StoreUnavailable when nothing could be stored: the caller must not answer ok then."""
        now = self.clock.timestamp()
        trigger.setdefault("created_at", now)
        try:
            stored = await self.store.batch.run(self._store, trigger, rows, now, once, _AsGiven(trigger, rows))
        except StoreUnavailable as exc:
            log.error("database write failed", error=str(exc))
            raise StoreUnavailable(UNWRITABLE) from exc
        if stored is None:
            return []
        if any(r.summary_log_id for r in stored) or any(r.status == "scheduled" for r in stored):
            self.wake.poke()  # a new summary or deferred row may be due sooner than the worker's next look
        await self.deliver_now([r for r in stored if r.status != "scheduled"])
        self.metrics.stored(stored)  # silenced, throttled, failed at once: the provider never saw them
        return stored

    async def _store(self, tx, trigger: dict, rows: list[Notification], now: float,
                     once: Once | None = None, given: "_AsGiven | None" = None) -> list[Notification] | None:
        """The policies and the writes of submit, in one transaction; None when ``once`` said no."""
        if given is not None:
            given.start()
        if once is not None and not await once.claim(tx):
            return None
        steps = [step for _, policy in self.policies
                 if (step := await policy(self.store, tx, self.config, trigger, rows, now)) is not None]

        async def prepare(t) -> None:
            for step in steps:
                await step(t)
        stored = await self.store.logs.insert_trigger(tx, trigger, rows, now + lease_seconds(self.config),
                                                      prepare=prepare if steps else None)
        if once is not None:
            await once.record(tx, trigger["trigger_id"])
        return stored

    async def deliver_now(self, rows: list[Notification]) -> list[Notification]:
        """First attempt for freshly stored rows, all channels concurrently.

        Inline only while a provider slot is expected within ``handover_wait``:
        in a storm the rest go to the worker at once (status 'queued', their
        place in the outbox kept), so a burst is accepted without waiting on
        the provider's pace. In calm times every send is attempted here and a
        refusal (an invalid number) comes back in the API's answer. Sets each
        row's ``status`` ('initiated', 'queued' or 'failed'), sids and ``error``.
        """
        attempts = self.attempts
        jobs, owners, handed = [], [], []
        for row in rows:
            for outbox_id, channel in row.items:
                if not attempts.slot_soon(attempts.busy + len(jobs)):
                    handed.append(outbox_id)
                    row.handed_over = True
                    continue
                jobs.append(attempts.attempt(outbox_id, 0, attempts.outgoing(row.to, row.message, row.params,
                                                                             row.log_id, channel)))
                owners.append(row)
        if handed:
            await self.store.outbox.release_items(handed)
            self.wake.poke()
        attempts.busy += len(jobs)
        try:
            if len(jobs) == 1:  # the common case: no task to create
                results = [await jobs[0]]
            else:
                results = list(await asyncio.gather(*jobs)) if jobs else []
        finally:
            attempts.busy -= len(jobs)
        if results:  # in one commit with the concurrent requests'
            try:
                await self.store.batch.run(functools.partial(self.store.outbox.apply_results, complete=not handed),
                                           results)
            except StoreError as exc:
                # the sends happened: answer with what the provider said. The items stay
                # leased, so the worker sends them again once the lease runs out; the
                # one case of a repeat, as when a crash loses the provider's answer
                log.error("could not store the provider's answers", error=str(exc),
                          log_ids=[r["log_id"] for r in results])
        for row, res in zip(owners, results):
            row.outcomes.append(res)
            if res["outcome"] == "sent":
                if res["channel"] == "call":
                    row.call_sid = res["sid"]
                else:
                    row.sms_sid = res["sid"]
            else:
                row.error = res["error"]
            if res["outcome"] == "retry":
                self.wake.poke()
        for row in rows:
            if not row.items:
                continue  # created already failed (e.g. a template that would not render)
            row.status = row_status([o["outcome"] for o in row.outcomes] + ["pending"] * row.handed_over)
        return rows
