"""APScheduler jobs for poll and schedule rules, rebuilt from the rule set.

Job id = rule id, replace_existing, coalesce (ticks missed while the daemon
was down are not replayed as a burst), max_instances=1 (a slow poll does not
pile up), and an explicit misfire_grace_time: the default of 1 s silently
drops a tick that starts late on a busy box.
"""
from __future__ import annotations

from datetime import datetime
from typing import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ..rules.ruleset import RuleSet
from ..rules.schedule import trigger_for

MISFIRE_GRACE = 30  # seconds


class Scheduler:
    def __init__(self, run_rule: Callable[[str], Awaitable[None]]):
        self.run_rule = run_rule
        self.scheduler = AsyncIOScheduler()
        self._specs: dict[str, object] = {}

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
        for rule_id, rule in wanted.items():
            tz = ruleset.timezone_of(rule)
            spec = (rule.source.model_dump_json(), tz)
            if self._specs.get(rule_id) == spec:
                continue  # unchanged: keep its place in the schedule
            self.scheduler.add_job(self.run_rule, trigger_for(rule, tz), args=[rule_id], id=rule_id,
                                   name=rule_id, replace_existing=True, coalesce=True, max_instances=1,
                                   misfire_grace_time=MISFIRE_GRACE)
            self._specs[rule_id] = spec

    def jobs(self) -> dict[str, datetime | None]:
        """Rule id -> next run, for the rules' jobs only (not housekeeping such as retention)."""
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs() if job.id in self._specs}
