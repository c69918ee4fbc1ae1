"""Shift notices: a text before each shift and when an override gives someone a shift, sent
through the outbox once per shift, also across a restart (an injected clock, no sleeping).
Every test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from alertd import oncall
from alertd.clock import FakeClock
from alertd.runtime import retention
from conftest import both_backends, run_async, sync

NY = ZoneInfo("America/New_York")
PRIMARY, SECONDARY, MANAGER = "+15551230002", "+15551230003", "+15551230001"
ROTATIONS = {"ops": {"members": ["oncall_primary", "oncall_secondary"], "shift": "1d", "start": "2026-01-05T09:00",
                     "notify_shift": {"before": "1h", "action_type": "sms"}},
             "quiet": {"members": ["manager"], "shift": "1d", "start": "2026-01-05T09:00"}}

pytestmark = both_backends


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def start(make_daemon, tmp_path, at: datetime):
    d = make_daemon({"rotations": ROTATIONS}, clock=FakeClock(at.astimezone(timezone.utc)), folder=tmp_path)
    d.pause_worker()  # the test runs the timer itself
    return d


def run(d) -> int:
    return d.run(d.daemon.shift_notices.run_due())


def sent(d) -> list[tuple[str, str]]:
    return [(o.to, o.message) for o in d.daemon.provider.sent]


def test_each_person_is_told_once_before_their_shift_also_across_a_restart(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, ny(2026, 1, 6, 7, 30))  # Tuesday: oncall_secondary's day starts at 09:00
    assert run(d) == 0 and sent(d) == []
    d.clock.set(ny(2026, 1, 6, 7, 59, 59).astimezone(timezone.utc))
    assert run(d) == 0
    d.clock.set(ny(2026, 1, 6, 8, 0).astimezone(timezone.utc))
    assert run(d) == 1
    assert sent(d) == [(SECONDARY, "You are on call for ops from Tue 6 Jan 09:00 until Wed 7 Jan 09:00 EST.")]
    (row,) = d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"]
    assert (row["source"], row["type"], row["status"]) == ("shift-notice", "sms", "initiated")
    d.clock.advance(timedelta(minutes=30))
    assert run(d) == 0
    d.stop()

    d = start(make_daemon, tmp_path, ny(2026, 1, 6, 8, 45))  # a restart before the shift starts
    assert run(d) == 0 and sent(d) == []
    d.clock.set(ny(2026, 1, 7, 8, 0).astimezone(timezone.utc))
    assert run(d) == 1
    assert sent(d) == [(PRIMARY, "You are on call for ops from Wed 7 Jan 09:00 until Thu 8 Jan 09:00 EST.")]
    notices = d.run(d.daemon.store.reach.shift_notices("ops"))
    assert [(r["contact"], r["trigger_id"] is not None) for r in notices] == [
        ("oncall_secondary", True), ("oncall_primary", True)]


def test_a_shift_already_running_when_alertd_starts_is_not_announced_late(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, ny(2026, 1, 6, 12, 0))
    assert run(d) == 0 and sent(d) == []


def test_an_override_tells_its_contact_at_once_and_the_scheduled_person_before_taking_over_again(
        make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, ny(2026, 1, 6, 12, 0))
    d.run(oncall.add_override(d.config, d.daemon.store, "ops", "manager", timedelta(hours=4), d.clock.now()))
    # made by the CLI, in another process: the daemon looks for new overrides every 30 seconds
    d.clock.advance(timedelta(seconds=30))
    assert run(d) == 1
    assert sent(d) == [(MANAGER, "You are on call for ops from Tue 6 Jan 12:00 until Tue 6 Jan 16:00 EST.")]
    d.clock.set(ny(2026, 1, 6, 15, 0).astimezone(timezone.utc))
    assert run(d) == 1
    assert sent(d)[1] == (SECONDARY, "You are on call for ops from Tue 6 Jan 16:00 until Wed 7 Jan 09:00 EST.")
    assert run(d) == 0


def test_a_call_notice_is_a_call(make_daemon, tmp_path):
    rotations = {"ops": {**ROTATIONS["ops"], "notify_shift": {"before": "15m", "action_type": "call"}}}
    d = make_daemon({"rotations": rotations}, clock=FakeClock(ny(2026, 1, 6, 8, 50).astimezone(timezone.utc)))
    d.pause_worker()
    run(d)  # the worker may have sent it already, as it started: once either way
    assert [(o.channel, o.to) for o in d.daemon.provider.sent] == [("call", SECONDARY)]


def test_retention_prunes_the_records_of_shifts_long_past(make_daemon, tmp_path, backend_store):
    d = start(make_daemon, tmp_path, ny(2026, 1, 6, 8, 0))
    run(d)  # the worker may have sent it already, as it started
    assert len(d.run(d.daemon.store.reach.shift_notices("ops"))) == 1
    d.stop()
    store = backend_store  # the daemon's database, through a store of the test's own
    assert run_async(retention.prune(store, ny(2026, 4, 6, 8, 0).timestamp(), d.config.retention))["reach"] == 0
    assert run_async(retention.prune(store, ny(2026, 4, 7, 8, 0).timestamp(), d.config.retention))["reach"] == 1
    assert sync(store.reach.shift_notices("ops")) == []
