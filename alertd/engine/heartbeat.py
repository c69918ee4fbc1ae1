"""Heartbeat states, computed as Healthchecks computes them: pure, from one `now`.

A check's stored state (``Check``) changes only in two ways: a ping arrives
(``ping``) or a deadline passes (``tick``). Both take the stored state, the
spec and ``now`` and return the new state and at most one ``Flip``; the
caller stores both in one transaction and notifies for the flip, never for an
evaluation. No I/O, no clock.

Stored statuses are new, up, down and paused. ``state`` adds the two that
follow from the time: late (past the expected ping, within grace) and
started (a run is in progress).

- new: never pinged; it goes down only if a run it started overruns grace.
- up: the period counts from ``anchor_at`` (the last success, or a resume):
  the next ping is expected at ``anchor + every`` (or the cron line's next
  time after the anchor, in the rule's timezone) and it goes down ``grace``
  after that.
- a start opens a run (keyed by its ``rid``); a run open for longer than
  ``grace`` takes the check down. A success or fail closes the run with its
  rid, else the run without rid, else the oldest run.
- a fail (``/fail`` or an exit status 1-255) takes it down at once.
- a success brings it up from any status, paused included (as Healthchecks).
- paused: pings are recorded, only a success changes it (back to up).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from ..durations import format_duration
from ..rules.cron import parse_cron

MAX_RUNS = 50  # open runs kept per check: a job that only ever starts must not grow the row
NO_PING = "no ping in time"


@dataclass(frozen=True)
class Spec:
    """The period of a check: ``every`` seconds or a ``cron`` line in ``timezone``; ``grace`` seconds."""

    grace: float
    every: float | None = None
    cron: str | None = None
    timezone: str = "UTC"

    @classmethod
    def of(cls, heartbeat, timezone_name: str) -> Spec:
        """From a rule's ``source.heartbeat`` (alertd/rules/heartbeat.py)."""
        return cls(grace=heartbeat.grace.total_seconds(),
                   every=heartbeat.every.total_seconds() if heartbeat.every is not None else None,
                   cron=heartbeat.cron, timezone=timezone_name)


@dataclass(frozen=True)
class Check:
    status: str = "new"                      # new | up | down | paused
    anchor_at: float | None = None           # the period counts from here
    runs: tuple[tuple[str, float], ...] = ()  # open runs: (rid or "", started at), oldest first
    reason: str | None = None                # why it is down


@dataclass(frozen=True)
class Flip:
    at: float
    old: str
    new: str
    reason: str


def check_of(row) -> Check:
    """A stored check (a mapping with ``status``, ``anchor_at``, ``reason`` and ``runs`` as the JSON
    ``[[rid, started_at], ...]``) as a ``Check``."""
    return Check(status=row["status"], anchor_at=row["anchor_at"],
                 runs=tuple((str(r), float(t)) for r, t in json.loads(row["runs"])), reason=row["reason"])


@lru_cache(maxsize=4096)
def _trigger(cron: str, tz: str):
    return parse_cron(cron, tz)


def expected_at(spec: Spec, anchor: float) -> float:
    """When the ping after the one at ``anchor`` is due."""
    if spec.every is not None:
        return anchor + spec.every
    after = datetime.fromtimestamp(anchor, timezone.utc)
    nxt = _trigger(spec.cron, spec.timezone).get_next_fire_time(None, after)
    if nxt is not None and nxt.timestamp() <= anchor:  # APScheduler may return `after` itself
        nxt = _trigger(spec.cron, spec.timezone).get_next_fire_time(nxt, after)
    return nxt.timestamp() if nxt is not None else float("inf")


def down_at(check: Check, spec: Spec) -> float | None:
    """When the check goes down if nothing arrives: the deadline the timer waits for; None when none."""
    if check.status in ("down", "paused"):
        return None
    times = [started + spec.grace for _, started in check.runs]
    if check.status == "up" and check.anchor_at is not None:
        times.append(expected_at(spec, check.anchor_at) + spec.grace)
    return min(times) if times else None


def state(check: Check, spec: Spec, now: float) -> str:
    """new | up | late | down | started | paused, as shown at ``now``."""
    if check.status in ("paused", "down"):
        return check.status
    due = down_at(check, spec)
    if due is not None and now >= due:
        return "down"  # the timer has not run yet; it will say the same
    if check.runs:
        return "started"
    if check.status == "up" and check.anchor_at is not None and now >= expected_at(spec, check.anchor_at):
        return "late"
    return check.status


def _close_run(runs: tuple, rid: str) -> tuple[tuple, float | None]:
    """(runs without the one this end closes, its start or None)."""
    if not runs:
        return runs, None
    pick = next((i for i, (r, _) in enumerate(runs) if r == rid), None)
    if pick is None and rid:
        return runs, None  # an end whose start was never seen (or already reported)
    if pick is None:
        pick = 0
    return runs[:pick] + runs[pick + 1:], runs[pick][1]


def _down(check: Check, spec: Spec, now: float, reason: str, at: float | None = None) -> tuple[Check, Flip | None]:
    # runs already past grace are told now; they must not take it down again once it is back up
    runs = tuple(r for r in check.runs if r[1] + spec.grace > now)
    if check.status == "down":
        return replace(check, runs=runs), None
    return replace(check, status="down", runs=runs, reason=reason), Flip(now if at is None else at, check.status,
                                                                         "down", reason)


def ping(check: Check, spec: Spec, kind: str, now: float, *, rid: str = "",
         exit_status: int | None = None) -> tuple[Check, Flip | None, float | None]:
    """A ping of ``kind`` success | fail | start | log (an exit status is success at 0, else fail).

    Returns (new state, flip or None, the closed run's duration in seconds or None)."""
    if exit_status is not None:
        kind = "success" if exit_status == 0 else "fail"
    if kind == "log":
        return check, None, None
    if check.status == "paused" and kind != "success":
        return check, None, None
    if kind == "start":
        runs = tuple(r for r in check.runs if r[0] != rid) + ((rid, now),)
        return replace(check, runs=runs[-MAX_RUNS:]), None, None
    runs, started = _close_run(check.runs, rid)
    duration = None if started is None else max(0.0, now - started)
    check = replace(check, runs=runs)
    if kind == "success":
        old = check.status
        new = replace(check, status="up", anchor_at=now, reason=None)
        flip = None if old == "up" else Flip(now, old, "up", "pinged" if old != "paused" else "pinged while paused")
        return new, flip, duration
    reason = f"exit status {exit_status}" if exit_status is not None else "it signalled failure"
    new, flip = _down(check, spec, now, reason)
    return new, flip, duration


def tick(check: Check, spec: Spec, now: float) -> tuple[Check, Flip | None]:
    """A deadline may have passed: down when ``now`` is at or after ``down_at``. The flip is dated
    at the deadline, when the check went down, however late it was noticed (a stopped alertd)."""
    due = down_at(check, spec)
    if due is None or now < due:
        return check, None
    overrun = [started for _, started in check.runs if started + spec.grace <= now]
    if overrun and min(overrun) + spec.grace == due:
        reason = f"a run took longer than its grace of {format_duration_s(spec.grace)}"
    else:
        reason = NO_PING
    return _down(check, spec, now, reason, at=due)


def pause(check: Check, now: float) -> tuple[Check, Flip | None]:
    if check.status == "paused":
        return check, None
    return replace(check, status="paused", runs=()), Flip(now, check.status, "paused", "paused by hand")


def resume(check: Check, now: float) -> tuple[Check, Flip | None]:
    """Back to up with the period counted from now (unlike Healthchecks' 'new', a job that
    never pings again after its maintenance is noticed)."""
    if check.status != "paused":
        return check, None
    return replace(check, status="up", anchor_at=now, reason=None), Flip(now, "paused", "up", "resumed by hand")


def format_duration_s(seconds: float) -> str:
    return format_duration(timedelta(seconds=round(seconds)))


def ago(seconds: float) -> str:
    """A short, human "how long": 45s, 12m, 3h 5m, 2d 4h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"
