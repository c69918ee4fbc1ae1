"""The durable outbox and its worker.

Every send is written to SQLite before the provider is asked (Store.create_trigger),
so an accepted request survives a crash. The API makes the first attempt
itself, inline, so the phone starts ringing without waiting for a poll; the
worker takes what is left: retries after backoff, deferred sends, and whatever
a crash interrupted (leases are released at start).
"""
from __future__ import annotations

import asyncio
import functools
import random
import sqlite3
import time
from typing import Any, Iterable

import structlog

from .. import silences, storm
from ..clock import SystemClock
from ..config import Config
from ..metrics import Metrics
from ..providers import Outgoing, Provider, ProviderError
from ..store import Store

log = structlog.get_logger("alertd.dispatch")
LEASE_SECONDS = 120.0  # longer than any provider timeout: an item in flight is not taken twice
# An API request makes its first attempt inline only when a provider slot is
# expected within this long; in a storm its send goes to the worker at once
HANDOVER_WAIT = 0.5


class Dispatcher:
    def __init__(self, store: Store, provider: Provider, config: Config, clock=None, *, rng=None, followups=None,
                 metrics=None):
        self.followups = followups  # alertd.escalation.Followups: due retries and escalation steps
        # more work with due times (rule groups): each has async run_due() -> int and next_due_at()
        self.timers: list[Any] = []
        self.store, self.provider, self.config = store, provider, config
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.base_url = config.server.base_url
        self._sem = asyncio.Semaphore(config.provider.max_concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        self.last_loop_at = time.monotonic()
        self.in_flight = 0
        # attempts started or waiting for a slot, inline and the worker's, and the provider's
        # recent request time: how long a new inline attempt would wait (see deliver_now)
        self.busy = 0
        self.latency: float | None = None
        self.handover_wait = HANDOVER_WAIT
        self.metrics = metrics or Metrics()
        # the provider's health, for the dead man's switch (alertd/deadman.py) and /metrics:
        # clock time of the first failed request since the last success, and what failed since
        self.failing_since: float | None = None
        self.failures = 0
        self.last_error: dict | None = None

    # --- building what the provider sends ---------------------------------
    def outgoing(self, row: Any, channel: str) -> Outgoing:
        params, log_id = row["params"], row["log_id"]
        base = self.base_url
        return Outgoing(
            log_id=log_id, channel=channel, to=row["to"],
            from_=params["from"], message=row["message"], voice=params.get("voice", "alice"),
            language=params.get("language"), repeat=params.get("repeat", 1), gather=params.get("gather", False),
            status_callback=f"{base}/twilio/status?log_id={log_id}&channel={channel}",
            gather_action=f"{base}/twilio/gather?log_id={log_id}",
            twiml_url=f"{base}/twilio/twiml?log_id={log_id}",
            machine_detection=self.config.provider.machine_detection)

    # --- attempts -----------------------------------------------------------
    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        cfg = self.config.dispatch
        delay = min(cfg.backoff_max.total_seconds(), cfg.backoff_base.total_seconds() * 2 ** (attempts - 1))
        delay *= self.rng.uniform(0.5, 1.0)  # jitter: retries of a burst do not return in step
        return max(delay, retry_after or 0.0)

    async def attempt(self, outbox_id: int, attempts_before: int, out: Outgoing) -> dict:
        """One provider request. Never raises; returns a result for Store.record_results."""
        started = time.perf_counter()
        result: dict[str, Any] = {"outbox_id": outbox_id, "log_id": out.log_id, "channel": out.channel}
        async with self._sem:
            self.in_flight += 1
            sending = time.perf_counter()
            try:
                sid = await self.provider.send(out)
                result.update(outcome="sent", sid=sid, sent_at=self.clock.timestamp(),
                              provider=getattr(sid, "provider", None))
                if self.failing_since is not None:
                    self._recovered()
            except Exception as exc:
                if not isinstance(exc, ProviderError):
                    # a bug in a provider (or an exception type it forgot to map) must not
                    # lose the item: retried like a transient failure, within max_attempts
                    log.exception("provider raised an unexpected exception", log_id=out.log_id)
                    exc = ProviderError(repr(exc), None)
                result["error"] = exc.as_dict()
                result["provider"] = getattr(exc, "provider", None)
                if not exc.permanent:  # a refused number says nothing about the provider
                    self._failed(result["error"])
                attempts = attempts_before + 1
                if exc.permanent:
                    result["outcome"] = "failed"
                elif attempts >= self.config.dispatch.max_attempts:
                    result["outcome"] = "failed"
                    result["error"] = {"code": exc.code, "message": f"gave up after {attempts} attempts: {exc.message}"}
                else:
                    result["outcome"] = "retry"
                    result["next_attempt_at"] = self.clock.timestamp() + self._backoff(attempts, exc.retry_after)
            finally:
                self.in_flight -= 1
                took = time.perf_counter() - sending
                self.latency = took if self.latency is None else 0.8 * self.latency + 0.2 * took
        elapsed = time.perf_counter() - started
        self.metrics.provider_request(out.channel, result["outcome"], elapsed)
        log.info("provider request", log_id=out.log_id, channel=out.channel, outcome=result["outcome"],
                 sid=result.get("sid"), error=result.get("error"), duration_ms=round(elapsed * 1000, 2))
        return result

    def _failed(self, error: dict) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock.timestamp()
        self.failures += 1
        self.last_error = error

    def _recovered(self) -> None:
        log.warning("provider requests succeed again", failures=self.failures,
                    failing_for_s=round(self.clock.timestamp() - self.failing_since, 1))
        self.failing_since, self.failures, self.last_error = None, 0, None

    async def deliver_now(self, rows: list[dict]) -> list[dict]:
        """First attempt for freshly stored rows, all channels concurrently.

        Inline only while a provider slot is expected within ``handover_wait``:
        in a storm the rest go to the worker at once (status 'queued', their
        place in the outbox kept), so a burst is accepted without waiting on
        the provider's pace. In calm times every send is attempted here and a
        refusal (an invalid number) comes back in the API's answer. Returns the
        rows with ``status`` ('initiated', 'queued' or 'failed'),
        ``call_sid``/``sms_sid`` and ``error`` filled in.
        """
        jobs, owners, handed = [], [], []
        for row in rows:
            for outbox_id, channel in row["items"]:
                if not self._slot_soon(self.busy + len(jobs)):
                    handed.append(outbox_id)
                    row["handed_over"] = True
                    continue
                jobs.append(self.attempt(outbox_id, 0, self.outgoing(row, channel)))
                owners.append(row)
        if handed:
            self.store.release_items(handed)
            self._wake.set()
        self.busy += len(jobs)
        try:
            if len(jobs) == 1:  # the common case: no task to create
                results = [await jobs[0]]
            else:
                results = list(await asyncio.gather(*jobs)) if jobs else []
        finally:
            self.busy -= len(jobs)
        if results:  # in one commit with the concurrent requests' (alertd/store/batch.py)
            try:
                await self.store.group.run(functools.partial(Store.apply_results, complete=not handed), results)
            except sqlite3.Error as exc:
                # the sends happened: answer with what the provider said. The items stay
                # leased, so the worker sends them again once the lease runs out; the
                # one case of a repeat, as when a crash loses the provider's answer
                log.error("could not store the provider's answers", error=str(exc),
                          log_ids=[r["log_id"] for r in results])
        for row in rows:
            row.setdefault("outcomes", [])
        for row, res in zip(owners, results):
            row["outcomes"].append(res)
            if res["outcome"] == "sent":
                row["call_sid" if res["channel"] == "call" else "sms_sid"] = res["sid"]
            else:
                row["error"] = res["error"]
            if res["outcome"] == "retry":
                self._wake.set()
        for row in rows:
            outs = [o["outcome"] for o in row["outcomes"]]
            if not row["items"]:
                continue  # created already failed (e.g. a template that would not render)
            if "retry" in outs or row.get("handed_over"):
                row["status"] = "queued"
            elif outs and all(o == "failed" for o in outs):
                row["status"] = "failed"
            else:
                row["status"] = "initiated"
        return rows

    def _slot_soon(self, ahead: int) -> bool:
        """Whether an attempt with ``ahead`` others before it gets a provider slot
        within ``handover_wait``: a slot frees every latency / max_concurrency."""
        cap = self.config.provider.max_concurrency
        if ahead < cap:
            return True
        if self.latency is None:
            return self.handover_wait > 0
        return (ahead - cap + 1) * self.latency / cap <= self.handover_wait

    # --- the background worker ------------------------------------------------
    async def run_once(self, limit: int = 200) -> int:
        """Attempt every due item (up to ``limit``); returns how many were attempted."""
        now = self.clock.timestamp()
        rows = self.store.claim_due(now, now + LEASE_SECONDS, limit)
        if rows:
            # a summary waits again when a send it counted on went out later than planned
            rows = storm.hold_summaries(self.store, rows, now, self.config.limits.per_number)
        if not rows:
            return 0
        self.busy += len(rows)
        try:
            results = await asyncio.gather(*(
                self.attempt(r["outbox_id"], r["attempts"], self.outgoing(r, r["channel"])) for r in rows))
        finally:
            self.busy -= len(rows)
        self.store.record_results(results)
        return len(rows)

    def poke(self) -> None:
        """Something new may be due sooner than the worker thinks."""
        self._wake.set()

    async def run(self) -> None:
        released = self.store.release_leases()
        if released:
            log.info("resuming deliveries interrupted by a stop", items=released)
        while not self._stopping:
            self.last_loop_at = time.monotonic()
            try:
                done = await self.run_once()
                if self.followups is not None:
                    done += await self.followups.run_due()
                for timer in self.timers:
                    done += await timer.run_due()
            except Exception:
                log.exception("dispatch loop error")
                done = 0
            if done:
                continue
            dues = [self.store.next_due_at(), self.store.next_followup_at() if self.followups else None,
                    *(timer.next_due_at() for timer in self.timers)]
            due = min((d for d in dues if d is not None), default=None)
            wait = 1.0 if due is None else min(1.0, max(0.02, due - self.clock.timestamp()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


async def submit(dispatcher: Dispatcher, trigger: dict, rows: list[dict]) -> list[dict]:
    """Store a trigger durably, then make the first attempt of every row now
    (rows with a future ``send_at`` wait for the worker). The one way into the
    outbox for the API and the rules engine alike. Raises sqlite3.Error when
    nothing could be stored: the caller must not answer ok then."""
    now = dispatcher.clock.timestamp()
    trigger.setdefault("created_at", now)
    stored = await dispatcher.store.group.run(_store, dispatcher.store, dispatcher.config, trigger, rows, now)
    if any(r.get("summary_log_id") for r in stored) or any(r.get("status") == "scheduled" for r in stored):
        dispatcher.poke()  # a new summary or deferred row may be due sooner than the worker's next look
    await dispatcher.deliver_now([r for r in stored if r.get("status") != "scheduled"])
    return stored


def _store(c, store: Store, config: Config, trigger: dict, rows: list[dict], now: float) -> list[dict]:
    """The decisions and the writes of submit, in one transaction: what silences
    and per-number limits decide is stored with the rows it decided on."""
    # a silenced row is stored with its silence's id and no outbox item (alertd/silences.py)
    silences.hold_back(store, trigger, rows, now)
    # a row over limits.per_number is stored 'throttled', folded into a summary (alertd/storm.py)
    summaries = storm.fold(store, rows, now, config.limits.per_number)
    # only rows still to send are deferred: a silenced or failed row keeps its status;
    # deferred rows are the worker's from the start (no lease to wait out)
    for r in rows:
        if r.get("send_at") and r["send_at"] > now and r.get("status", "queued") == "queued":
            r["status"] = "scheduled"
    return Store.insert_trigger(c, trigger, rows, now + LEASE_SECONDS, prepare=summaries)
