"""APScheduler jobs for poll and schedule rules, rebuilt from the rule set.

Job id = rule id, replace_existing, coalesce (ticks missed while the daemon
was down are not replayed as a burst), max_instances=1 (a slow poll does not
pile up), and an explicit misfire_grace_time: the default of 1 s silently
drops a tick that starts late on a busy box.

On several nodes (PostgreSQL) only the leader holds jobs, and a tick runs only once
``ticks.claim`` recorded it (alertd/sources/ticks.py): a tick fires once across the
cluster, and a new leader fires the ticks missed while nobody led (``catch_up``). Their
times are on the node's clock, which follows the database's there (ticks.py ``OnClock``).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Awaitable, Callable, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ..clock import SyncedClock
from ..rules.ruleset import RuleSet
from ..rules.schedule import trigger_for
from .ticks import GRACE, ORIGIN, OnClock, latest_tick, missed_ticks

MISFIRE_GRACE = GRACE  # seconds


class Ticks(Protocol):
    """The cluster's record of fired ticks (alertd/runtime/cluster.py)."""

    async def claim(self, rule_id: str, scheduled: datetime) -> bool: ...

    async def last(self, rule_id: str) -> datetime | None: ...


class Scheduler:
    def __init__(self, run_rule: Callable[[str], Awaitable[None]], ticks: Ticks | None = None,
                 clock: SyncedClock | None = None):
        """``clock``: the node's clock when it follows the database's (several nodes): ticks
        fall due on it. Without one, on the machine's clock, as APScheduler reads it."""
        self.run_rule = run_rule
        self.ticks = ticks  # several nodes: ticks are claimed before they run
        self.clock = clock
        self.scheduler = AsyncIOScheduler()
        self._specs: dict[str, object] = {}
        self._triggers: dict[str, object] = {}
        self._clocked: dict[str, OnClock] = {}  # with a clock: each job's trigger, as APScheduler has it

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def sync(self, ruleset: RuleSet) -> None:
        """Make the jobs match ``ruleset``: add new, replace changed, remove gone."""
        wanted: dict[str, Rule] = {rid: r for rid, r in ruleset.rules.items()
                                   if r.source.poll is not None or r.source.schedule is not None}
        for rule_id in list(self._specs):
            if rule_id not in wanted:
                self.scheduler.remove_job(rule_id)
                del self._specs[rule_id]
                self._triggers.pop(rule_id, None)
                self._clocked.pop(rule_id, None)
        for rule_id, rule in wanted.items():
            tz = ruleset.timezone_of(rule)
            spec = (rule.source.model_dump_json(), tz)
            if self._specs.get(rule_id) == spec:
                continue  # unchanged: keep its place in the schedule
            trigger = trigger_for(rule, tz, origin=ORIGIN if self.ticks is not None else None)
            clocked = OnClock(trigger, self.clock) if self.clock is not None else None
            self.scheduler.add_job(self.run_rule if self.ticks is None else self._claimed, clocked or trigger,
                                   args=[rule_id], id=rule_id, name=rule_id, replace_existing=True, coalesce=True,
                                   max_instances=1, misfire_grace_time=MISFIRE_GRACE)
            if clocked is not None:
                self._clocked[rule_id] = clocked
            self._specs[rule_id] = spec
            self._triggers[rule_id] = trigger

    def clear(self) -> None:
        """Remove every rule's job (a node that stops leading)."""
        for rule_id in list(self._specs):
            self.scheduler.remove_job(rule_id)
        self._specs.clear()
        self._triggers.clear()
        self._clocked.clear()

    async def _claimed(self, rule_id: str) -> None:
        """Run a tick only once the cluster recorded it for this node (the leader)."""
        trigger, clocked = self._triggers.get(rule_id), self._clocked.get(rule_id)
        fired = datetime.now(timezone.utc)  # the machine's time, as APScheduler fired on it
        scheduled = (clocked.due(fired) if clocked is not None
                     else latest_tick(trigger, fired) if trigger is not None else None)
        if scheduled is not None and await self.ticks.claim(rule_id, scheduled):
            await self.run_rule(rule_id)

    async def catch_up(self, now: datetime) -> int:
        """Fire, once each, the ticks that fell due while no node led (at most GRACE
        seconds ago); returns how many ran. For a new leader, after ``sync``."""
        ran = 0
        for rule_id, trigger in list(self._triggers.items()):
            last = await self.ticks.last(rule_id)
            if last is None:
                continue  # never fired: it starts with its next tick, as on one box
            for scheduled in missed_ticks(trigger, last, now):
                if await self.ticks.claim(rule_id, scheduled):
                    await self.run_rule(rule_id)
                    ran += 1
        return ran

    def jobs(self) -> dict[str, datetime | None]:
        """Rule id -> next run (on the node's clock), for the rules' jobs only (not housekeeping
        such as retention)."""
        return {job.id: self._clocked[job.id].tick(job.next_run_time) if job.id in self._clocked and job.next_run_time
                else job.next_run_time for job in self.scheduler.get_jobs() if job.id in self._specs}
