"""Cron lines mean what they mean in a crontab, not what APScheduler 3 reads."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from alertd.rules.cron import parse_cron

CHI = ZoneInfo("America/Chicago")


def fires(expr: str, after: datetime, n: int = 3, tz: str = "America/Chicago") -> list[datetime]:
    trigger, out, prev = parse_cron(expr, tz), [], None
    now = after
    for _ in range(n):
        prev = trigger.get_next_fire_time(prev, now)
        out.append(prev)
        now = prev.replace(second=1)
    return out


def test_weekday_numbers_are_crontabs_sunday_is_zero_and_seven():
    # 2026-03-08 is a Sunday
    assert fires("0 9 * * 0", datetime(2026, 3, 1, tzinfo=CHI), 1)[0].date().isoformat() == "2026-03-01"
    assert fires("0 9 * * 7", datetime(2026, 3, 2, tzinfo=CHI), 1)[0].date().isoformat() == "2026-03-08"
    days = [d.strftime("%a") for d in fires("0 9 * * 1-5", datetime(2026, 3, 6, 10, tzinfo=CHI), 5)]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_names_and_ranges_ending_on_sunday():
    days = [d.strftime("%a") for d in fires("15 9 * * fri-sun", datetime(2026, 3, 2, tzinfo=CHI), 3)]
    assert days == ["Fri", "Sat", "Sun"]
    assert fires("0 8 * jan-mar mon", datetime(2026, 3, 31, tzinfo=CHI), 1)[0].date().isoformat() == "2027-01-04"


def test_fires_at_local_wall_clock_time_across_the_dst_change():
    times = fires("0 9 * * *", datetime(2026, 3, 6, 10, tzinfo=CHI), 2)
    assert [t.astimezone(timezone.utc).hour for t in times] == [15, 14]  # CST then CDT


@pytest.mark.parametrize(("expr", "reason"), [
    ("0 9 1 * mon", "restricts both day of month and day of week"),
    ("0 9 * *", "a cron line has 5 fields"),
    ("0 9 * * funday", "unknown weekday 'funday'"),
    ("0 9 * * 5-1", "weekday range '5-1' goes backwards"),
    ("0 25 * * *", "higher than the maximum value (23)"),
])
def test_bad_cron_lines_say_why(expr, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_cron(expr)
