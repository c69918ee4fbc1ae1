"""The dashboard's heartbeats page: state, last ping, deadline, ping URL, the days' bar, recent pings, pause.
The page's test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import requests

from alertd.clock import FakeClock
from alertd.ui.heartbeats_view import day_bar
from conftest import both_backends
from test_heartbeats import RULE, UUID, tick, write_rules
from test_ui_pages import logged_in

NY = ZoneInfo("America/New_York")


def test_day_bar_tells_each_day_in_symbols_and_words():
    starts = [datetime(2026, 3, d, tzinfo=NY) for d in (7, 8, 9, 10)]
    at = lambda d, h: datetime(2026, 3, d, h, tzinfo=NY).timestamp()  # noqa: E731
    flips = [{"at": at(8, 6), "new": "up"}, {"at": at(9, 22), "new": "down"}, {"at": at(10, 1), "new": "up"},
             {"at": at(10, 5), "new": "paused"}]
    cells = day_bar(None, flips, starts, at(10, 12))
    assert [c["symbol"] for c in cells] == ["·", "✓", "✗", "✗"]
    assert [c["title"] for c in cells] == ["2026-03-07: no pings yet", "2026-03-08: up all day",
                                           "2026-03-09: down for 2h 0m", "2026-03-10: down for 1h 0m"]
    assert [c["symbol"] for c in day_bar("paused", [], starts[-1:], at(10, 12))] == ["⏸"]


@both_backends
def test_heartbeats_page_shows_state_ping_url_bar_pings_and_pauses(make_daemon, tmp_path):
    clock = FakeClock(datetime(2026, 3, 8, 12, tzinfo=NY).astimezone(timezone.utc))
    write_rules(tmp_path, RULE)
    d, s, _ = logged_in(make_daemon, clock=clock)
    requests.get(d.url(f"/ping/{UUID}"), timeout=10)
    clock.advance(timedelta(days=1))
    tick(d)  # down since the 8th 13:10
    requests.post(d.url(f"/ping/{UUID}/0"), data="backup done: 42 GB in 3 min <ok>".encode(), timeout=10)
    page = s.get(d.url("/ui/heartbeats"), timeout=5).text
    row = re.search(r'<tr class="hb-up">(.*?)</tr>', page, re.S).group(1)
    assert ">nightly-backup</a>" in row and '<span class="badge">up</span>' in row
    assert f"{d.base_url}/ping/{UUID}" in row and "2026-03-09 12:00:00 EDT" in row
    assert "2026-03-08: down for 10h 50m" in row and "2026-03-09: down for 12h 0m" in row
    detail = s.get(d.url("/ui/heartbeats/nightly-backup"), timeout=5).text
    assert "backup done: 42 GB in 3 min &lt;ok&gt;" in detail and "success (exit 0)" in detail
    csrf = re.search(r'name="csrf" value="([^"]+)"', detail).group(1)
    resp = s.post(d.url("/ui/heartbeats/nightly-backup/pause"), data={"csrf": csrf}, timeout=5)
    assert resp.status_code == 200 and '<span class="badge">paused</span>' in resp.text
    assert s.post(d.url("/ui/heartbeats/nightly-backup/resume"), data={"csrf": "wrong"}, timeout=5).status_code == 403
    assert s.get(d.url("/ui/heartbeats/nope"), timeout=5).status_code == 404
    assert requests.get(d.url("/ui/heartbeats"), timeout=5, allow_redirects=False).status_code == 303
