"""Active windows: is a rule allowed to notify at this moment?

Contract of ``is_active(active, now, default_tz)``:

- ``active`` None: always active.
- Times are wall-clock times in the window's timezone (``active.timezone``,
  else ``default_tz``): ``from: "09:00"`` means 09:00 on the local clock,
  whatever the UTC offset is that day.
- ``from`` is inclusive, ``until`` exclusive: 09:00-17:00 is active at 09:00
  and 16:59:59, not at 08:59:59 or 17:00.
- Only ``from``: active from then to midnight. Only ``until``: from midnight.
  Neither: the whole day. ``from == until``: 24 hours starting at ``from``.
- ``from`` later than ``until`` crosses midnight. Such a window belongs to the
  day it **starts** on: with ``days: [mon]``, ``from: "18:00"``,
  ``until: "07:00"``, Monday 23:00 and Tuesday 02:00 are active, Sunday
  23:00 and Monday 02:00 are not.
- ``days`` default to every day.
- DST: on the spring-forward day a window edge inside the skipped hour takes
  effect at the first wall-clock time after it (02:30 -> 03:00); on the
  fall-back day the repeated hour is judged by the clock, so both 01:30s are
  in or out together. Neither day changes the window's wall-clock edges.
"""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from alertd.rules.models import Active

_MIDNIGHT = time(0, 0)


def is_active(active: Active | None, now: datetime, default_tz: str) -> bool:
    """Whether ``now`` (an aware datetime) is inside the window."""
    if active is None:
        return True
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    local = now.astimezone(ZoneInfo(active.timezone or default_tz))
    clock = local.time().replace(tzinfo=None)
    today = local.weekday()
    start = active.from_ or _MIDNIGHT
    end = active.until

    if end is None or (end == _MIDNIGHT and start != _MIDNIGHT):
        # no end, or "until 24:00": the window runs to the end of its day
        started_today = clock >= start
        return started_today and _day_ok(active, today)
    if start < end:
        return start <= clock < end and _day_ok(active, today)
    # start >= end: crosses midnight (start == end: a full 24 hours)
    if clock >= start:
        return _day_ok(active, today)
    if clock < end:
        return _day_ok(active, (today - 1) % 7)  # the window that started yesterday
    return False


def _day_ok(active: Active, weekday: int) -> bool:
    return active.days is None or weekday in active.days
