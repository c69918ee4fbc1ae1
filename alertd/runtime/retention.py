"""Retention: once a day, history older than ``retention`` (default 90d) goes.

Log rows with their outbox items and status callbacks, their emptied triggers
and follow-ups, received events, inbound calls and shift-notice records. The SQL is
the store's (Store.retention, Store.reach.prune);
this module paces it: BATCH rows per transaction, and a turn of the event loop
between batches, so a first prune of a year of history does not stall the API or the
dispatcher. Anything still pending is kept (see the store module).
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import structlog
from apscheduler.triggers.interval import IntervalTrigger

from ..store import Store

log = structlog.get_logger("alertd.retention")
JOB_ID = "alertd:retention"  # a colon: no rule id can take it (rules are [a-z0-9_-]+)
FIRST_RUN = timedelta(minutes=5)  # after a start, not during it
PAUSE = 0.0  # seconds between batches: 0 still lets every waiting request and send run first


BATCH = 500  # rows per transaction: each takes a few milliseconds


async def prune(store: Store, now: float, retention: timedelta, *, batch: int = BATCH) -> dict[str, int]:
    """Delete what is older than ``now - retention``; returns counts per kind."""
    cutoff = now - retention.total_seconds()
    totals = {"logs": 0, "outbox": 0, "callbacks": 0, "triggers": 0, "followups": 0, "kept": 0, "events": 0,
              "groups": 0, "reach": 0, "batches": 0}
    cursor: tuple[float, int] | None = (float("-inf"), 0)
    while cursor is not None:
        counts, cursor = await store.retention.prune_logs(cutoff, cursor, batch)
        for k, v in counts.items():
            totals[k] += v
        totals["batches"] += 1
        await asyncio.sleep(PAUSE)
    # reach: inbound calls and shift-notice records
    for kind, step in (("events", store.retention.prune_events), ("groups", store.retention.prune_groups),
                       ("reach", store.reach.prune)):
        while True:
            deleted = await step(cutoff, batch)
            totals[kind] += deleted
            totals["batches"] += 1
            await asyncio.sleep(PAUSE)
            if deleted < batch:
                break
    return totals


async def run(daemon) -> None:
    """The daily job: one log line per run, and never an exception into the scheduler."""
    started = time.perf_counter()
    try:
        counts = await prune(daemon.store, daemon.clock.timestamp(), daemon.config.retention)
    except Exception:
        log.exception("retention: pruning failed; the next run tries again")
        return
    log.info("retention pruned", retention_days=daemon.config.retention.total_seconds() / 86400, **counts,
             duration_ms=round((time.perf_counter() - started) * 1000, 2))


def schedule(daemon) -> None:
    """Add the daily job to the daemon's APScheduler (call after it started)."""
    daemon.scheduler.scheduler.add_job(
        run, IntervalTrigger(days=1), args=[daemon], id=JOB_ID, name=JOB_ID, replace_existing=True,
        coalesce=True, max_instances=1, misfire_grace_time=3600,
        next_run_time=datetime.now(timezone.utc) + FIRST_RUN)


def unschedule(daemon) -> None:
    """Remove the daily job (a node that stops leading)."""
    if daemon.scheduler.scheduler.get_job(JOB_ID) is not None:
        daemon.scheduler.scheduler.remove_job(JOB_ID)
