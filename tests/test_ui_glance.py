"""At a glance: notifications per hour and per day by outcome, and time to acknowledge, from the daemon's clock.
The pages run on SQLite and on PostgreSQL (the counting is the database's)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from alertd.clock import FakeClock
from alertd.ui import glance
from alertd.dispatch.notification import Notification
from test_ui_pages import logged_in
from conftest import both_backends

NY = ZoneInfo("America/New_York")  # the test config's timezone; DST began on Sunday 8 March 2026


def local(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=NY).timestamp()


def notification(d, at: str, status: str = "initiated", ack_after: float | None = None) -> int:
    ts = local(at)
    (row,) = d.run(d.daemon.store.logs.create_trigger({"created_at": ts, "source": "glance"}, [
        Notification(to="+15551230001", type="call", message=at, params={}, status=status)], ts))
    if ack_after is not None:
        d.run(d.daemon.store.logs.acknowledge(row.log_id, ts + ack_after, by="+15551230001"))
    return row.log_id


def counts(page: str, key: str) -> dict[str, int]:
    row = re.search(rf'<tr id="{key}">(.*?)</tr>', page).group(1)
    return {k: int(n) for k, n in re.findall(r'data-outcome="(\w+)">(\d+)<', row) if int(n) or k == "all"}


@both_backends
def test_counts_per_hour_and_per_day_by_outcome_and_time_to_acknowledge(make_daemon):
    clock = FakeClock(datetime(2026, 3, 10, 14, 30, tzinfo=NY).astimezone(timezone.utc))
    d, s, _ = logged_in(make_daemon, clock=clock)
    notification(d, "2026-03-03T23:59:59")                          # before the 7 days
    notification(d, "2026-03-04T00:00:00")                          # the first day's first second
    notification(d, "2026-03-07T23:59:59", status="failed")
    notification(d, "2026-03-08T00:30:00", status="silenced")
    notification(d, "2026-03-08T03:30:00", ack_after=90)            # after the clocks went forward
    notification(d, "2026-03-09T14:59:59")                          # 24 h and a second ago: days only
    no_answer = notification(d, "2026-03-09T15:00:00")              # the first of the 24 hours
    d.run(d.daemon.callbacks.call_status(no_answer, "CA1", "no-answer"))
    notification(d, "2026-03-10T09:00:00", ack_after=30)
    notification(d, "2026-03-10T13:59:59")
    notification(d, "2026-03-10T14:00:00", ack_after=600)
    notification(d, "2026-03-10T14:31:00")                          # after now: not counted
    page = s.get(d.url("/ui/glance"), timeout=5).text

    assert re.findall(r'<tr id="(day-[\d-]+)">', page) == [f"day-2026-03-{n:02}" for n in range(4, 11)]
    assert counts(page, "day-2026-03-04") == {"sent": 1, "all": 1}
    assert counts(page, "day-2026-03-05") == {"all": 0}
    assert counts(page, "day-2026-03-07") == {"failed": 1, "all": 1}
    assert counts(page, "day-2026-03-08") == {"acknowledged": 1, "held": 1, "all": 2}
    assert counts(page, "day-2026-03-09") == {"sent": 1, "failed": 1, "all": 2}
    assert counts(page, "day-2026-03-10") == {"acknowledged": 2, "sent": 1, "all": 3}
    hours = re.findall(r'<tr id="(hour-[\dT-]+)">', page)
    assert len(hours) == 24 and hours[0] == "hour-2026-03-09T15" and hours[-1] == "hour-2026-03-10T14"
    busy = {h: counts(page, h) for h in hours if counts(page, h) != {"all": 0}}
    assert busy == {"hour-2026-03-09T15": {"failed": 1, "all": 1}, "hour-2026-03-10T09": {"acknowledged": 1, "all": 1},
                    "hour-2026-03-10T13": {"sent": 1, "all": 1}, "hour-2026-03-10T14": {"acknowledged": 1, "all": 1}}
    # nearest rank: 24 h [30 s, 600 s]; 7 days [30 s, 90 s, 600 s]
    assert "<dt>Last 24 h</dt><dd>median 30 s, p90 10 min (2 acknowledged)</dd>" in page
    assert "<dt>Last 7 days</dt><dd>median 1 min 30 s, p90 10 min (3 acknowledged)</dd>" in page
    # the charts: one patterned segment per outcome of a bar, each bar named in words
    days_svg = re.search(r'<figure class="chart" id="chart-days">(.*?)</figure>', page, re.S).group(1)
    assert days_svg.count('class="seg"') == 8
    assert "<title>Sun 8 Mar: 1 acknowledged, 1 silenced or throttled</title>" in days_svg
    assert 'fill="url(#pat-held)"' in days_svg and '<pattern id="pat-held"' in page


def test_a_day_the_clocks_go_forward_has_23_hours_and_hours_skip_2am():
    now = datetime(2026, 3, 8, 12, 0, tzinfo=NY)
    days = glance.day_starts(now, NY)
    assert [(b - a) for a, b in zip(days, days[1:])][-1] == timedelta(hours=24)  # 7 Mar 00:00 -> 8 Mar 00:00
    assert days[-1] == datetime(2026, 3, 8, tzinfo=NY) and days[0] == datetime(2026, 3, 2, tzinfo=NY)
    hours = glance.hour_starts(now, NY)
    assert [h.hour for h in hours[-12:]] == [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert all(b.timestamp() - a.timestamp() == 3600 for a, b in zip(hours, hours[1:]))
    monday = datetime(2026, 3, 9, 12, 0, tzinfo=NY)
    starts = glance.day_starts(monday, NY)
    assert starts[-1].timestamp() - starts[-2].timestamp() == 23 * 3600  # Sunday 8 March


def test_nearest_rank_and_durations_in_words():
    assert glance.nearest_rank([], 0.5) is None and glance.nearest_rank([5], 0.9) == 5
    assert glance.nearest_rank(list(range(1, 11)), 0.9) == 9 and glance.nearest_rank([4, 1, 3, 2], 0.5) == 2
    assert [glance.duration_text(s) for s in (None, 42, 60, 125, 3720)] == ["–", "42 s", "1 min", "2 min 5 s",
                                                                            "1 h 2 min"]


def test_the_page_needs_a_login(make_daemon):
    d = make_daemon()
    import requests
    r = requests.get(d.url("/ui/glance"), timeout=5, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"


@both_backends
def test_the_current_hour_and_day_end_now_in_local_time(make_daemon):
    clock = FakeClock(datetime(2026, 3, 10, 14, 30, tzinfo=NY).astimezone(timezone.utc))
    d, s, _ = logged_in(make_daemon, clock=clock)
    page = s.get(d.url("/ui/glance"), timeout=5).text
    assert '<tr id="hour-2026-03-10T14"><th scope="row">Tue 14:00–14:30</th>' in page
    assert '<tr id="hour-2026-03-09T15"><th scope="row">Mon 15:00–16:00</th>' in page
