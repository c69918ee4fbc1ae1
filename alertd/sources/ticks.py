"""Schedule ticks that several nodes agree on: each (rule, scheduled time) fires once.

On one box APScheduler's jobs are the schedule. On several nodes only the leader runs
them, and a tick is fired only after the database recorded it (store/postgres/cluster.py
``claim_tick``), keyed by rule and *scheduled* time. For two leaders to name the same
tick the same way, an interval schedule is laid on a grid from a fixed origin (every
10 s means :00, :10, :20 on every node, not 10 s after each one started); cron lines
already are.

A new leader fires, once each, the ticks that fell due while no node led, up to
``GRACE`` seconds late (docs/rules.md); an older one is skipped rather than fired
long after its moment.

Ticks are on the database's clock, as every due time of several nodes (alertd/clock.py
``SyncedClock``): APScheduler reads the machine's, so each trigger is handed to it
through ``OnClock``, which gives it the machine's time at which the tick falls due on
the node's clock. A leader whose clock is an hour off fires each tick on time.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from apscheduler.triggers.base import BaseTrigger

from ..rules.models import Rule
from ..rules.schedule import trigger_for

GRACE = 30  # seconds: how late a tick may still fire (the scheduler's misfire grace)
ORIGIN = datetime(2000, 1, 1, tzinfo=timezone.utc)  # where every interval grid starts
_MAX_REPLAYED = 100  # a very frequent schedule catching up fires at most this many


def aligned_trigger(rule: Rule, tz: str) -> BaseTrigger | None:
    """The rule's trigger with an interval laid on the grid from ORIGIN (the same on every node)."""
    return trigger_for(rule, tz, origin=ORIGIN)


def ticks_between(trigger: BaseTrigger, after: datetime, until: datetime, limit: int = _MAX_REPLAYED) -> list[datetime]:
    """The trigger's scheduled times in (after, until], oldest first (at most ``limit``, the newest)."""
    out: list[datetime] = []
    prev, now = None, after + timedelta(microseconds=1)
    while True:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt is None or nxt > until:
            break
        if nxt > after:
            out.append(nxt)
        prev, now = nxt, nxt + timedelta(microseconds=1)
    return out[-limit:]


def latest_tick(trigger: BaseTrigger, now: datetime, within: float = GRACE) -> datetime | None:
    """The scheduled time a run starting at ``now`` stands for: the latest one at or before
    ``now`` and not older than ``within`` seconds; None when there is none."""
    ticks = ticks_between(trigger, now - timedelta(seconds=within), now, limit=1)
    return ticks[-1] if ticks else None


def missed_ticks(trigger: BaseTrigger, last: datetime | None, now: datetime, grace: float = GRACE) -> list[datetime]:
    """The ticks a new leader still fires, oldest first: those after ``last`` (the latest
    recorded for the rule; None when it never fired) and at most ``grace`` seconds old."""
    since = now - timedelta(seconds=grace)
    return ticks_between(trigger, max(last, since) if last is not None else since, now)


class OnClock(BaseTrigger):
    """``trigger``'s fire times on ``clock`` (the node's SyncedClock), given to APScheduler
    as the times of the machine's clock they fall at (it reads the machine's and sleeps
    until them). ``tick(given)`` is the trigger's own time a fire time given stands for."""

    _KEPT = 8  # the fire times given lately (APScheduler asks for the one after each again)

    def __init__(self, trigger: BaseTrigger, clock):
        self.trigger, self.clock = trigger, clock
        self._given: dict[datetime, datetime] = {}  # a fire time given -> the trigger's own

    def tick(self, given: datetime) -> datetime:
        return self._given.get(given) or given + self.clock.ahead_of_machine()

    def due(self, now: datetime) -> datetime | None:
        """The trigger's own time of the latest fire time given at or before ``now`` (the
        machine's): the tick a run fired then stands for, whatever the offset did since."""
        given = [g for g in self._given if g <= now]
        return self._given[max(given)] if given else None

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        ahead = self.clock.ahead_of_machine()
        # the trigger's own previous time, not one moved by how the offset changed since (an
        # interval counts from it: its grid would drift)
        previous = None if previous_fire_time is None else self.tick(previous_fire_time)
        nxt = self.trigger.get_next_fire_time(previous, now + ahead)
        if nxt is None:
            return None
        given = nxt - ahead
        self._given[given] = nxt
        while len(self._given) > self._KEPT:
            del self._given[next(iter(self._given))]
        return given

    def __str__(self) -> str:
        return f"{self.trigger} on the database's clock"
