"""Standard 5-field cron lines, turned into APScheduler triggers.

APScheduler 3.x's ``CronTrigger.from_crontab`` differs from cron in two ways
that would make a rule fire on the wrong days without any error:

- weekday numbers: APScheduler 3 reads 0 as Monday, cron reads 0 (and 7) as
  Sunday. We translate the weekday field to names before handing it over,
  so ``0 9 * * 1-5`` means Monday to Friday, as in every crontab.
- day of month *and* day of week: cron fires when *either* matches,
  APScheduler only when *both* do. We refuse a line that restricts both
  rather than guess which one the author meant.
"""
from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

# cron's numbering: 0 = Sunday ... 6 = Saturday (7 = Sunday too)
_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_LONG = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_NUMBER = {name: i for names in (_NAMES, _LONG) for i, name in enumerate(names)}


def _day(token: str) -> int:
    """A weekday name or cron number (0-7, 7 = Sunday) -> 0..7."""
    token = token.strip().lower()
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _NUMBER:
        return _NUMBER[token]
    raise ValueError(f"unknown weekday {token!r}")


def _weekdays(field: str) -> set[int]:
    """Expand a cron weekday field into cron day numbers 0..6."""
    days: set[int] = set()
    for part in field.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid step {step_text!r} in weekday field")
            step = int(step_text)
        if rng == "*":
            first, last = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            first, last = _day(a), _day(b)
            if last == 0:  # "fri-sun": Sunday at the end of a range means 7
                last = 7
            if first == 7:
                first = 0
            if first > last:
                raise ValueError(f"weekday range {rng!r} goes backwards")
        else:
            first = _day(rng)
            last = 6 if step_text else first
        days.update(d % 7 for d in range(first, last + 1, step))
    return days


def _apscheduler_weekdays(field: str) -> str:
    days = _weekdays(field)
    if len(days) == 7:
        return "*"
    # APScheduler accepts names in any numbering, so names are unambiguous
    order = [1, 2, 3, 4, 5, 6, 0]
    return ",".join(_NAMES[d] for d in order if d in days)


def parse_cron(expr: str, timezone: str = "UTC") -> CronTrigger:
    """A standard cron line -> CronTrigger in ``timezone``.

    Raises ValueError with a readable reason.
    """
    if not isinstance(expr, str):
        raise ValueError("a cron line must be a string like '15 9 * * mon-fri'")
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron line has 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
        )
    minute, hour, dom, month, dow = fields
    if dom not in ("*", "?") and dow not in ("*", "?"):
        raise ValueError(
            "restricts both day of month and day of week, which cron reads as "
            "'either'; use two rules or restrict only one"
        )
    dom = "*" if dom == "?" else dom
    dow = "*" if dow == "?" else dow
    weekdays = _apscheduler_weekdays(dow)
    return CronTrigger.from_crontab(f"{minute} {hour} {dom} {month} {weekdays}", timezone=timezone)
