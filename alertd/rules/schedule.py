"""When a poll or schedule rule runs: its APScheduler trigger and its next fire times.

Pure computation on the rule (no scheduler running): the scheduler
(alertd/sources/schedule.py) adds jobs with these triggers; ``alertd
test-rule`` and the dashboard show the next runs.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .cron import parse_cron
from .models import Rule


def trigger_for(rule: Rule, timezone: str) -> BaseTrigger | None:
    spec = rule.source.poll or rule.source.schedule
    if spec is None:
        return None
    if spec.cron is not None:
        return parse_cron(spec.cron, timezone)
    # jitter 0: a poll every 10 s means every 10 s; spread comes from start times
    return IntervalTrigger(seconds=max(spec.every.total_seconds(), 1), timezone=timezone)


def next_fire_times(rule: Rule, timezone: str, after: datetime, count: int = 3) -> list[datetime]:
    """When the rule would run next (for test-rule and the rules API)."""
    trigger = trigger_for(rule, timezone)
    out: list[datetime] = []
    prev = None
    now = after
    while trigger is not None and len(out) < count:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt is None:
            break
        out.append(nxt)
        prev, now = nxt, nxt + timedelta(microseconds=1)
    return out
