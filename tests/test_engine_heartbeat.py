"""Heartbeat states and flips, pure: the stored state, a ping or a deadline, and `now` in; state and flip out."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alertd.engine import heartbeat as hb
from alertd.engine.heartbeat import Check, Spec

T0 = datetime(2026, 3, 10, 14, 0, tzinfo=timezone.utc).timestamp()
HOURLY = Spec(every=3600, grace=600)


def up_at(t: float) -> Check:
    return Check(status="up", anchor_at=t)


def test_new_check_has_no_deadline_and_goes_up_on_its_first_ping():
    check = Check()
    assert hb.down_at(check, HOURLY) is None
    assert hb.tick(check, HOURLY, T0 + 10**6) == (check, None)
    new, flip, duration = hb.ping(check, HOURLY, "success", T0)
    assert new.status == "up" and new.anchor_at == T0 and duration is None
    assert flip == hb.Flip(T0, "new", "up", "pinged")
    assert hb.state(new, HOURLY, T0) == "up"


def test_up_turns_late_at_the_expected_ping_and_down_after_grace_to_the_second():
    check = up_at(T0)
    assert hb.state(check, HOURLY, T0 + 3599.9) == "up"
    assert hb.state(check, HOURLY, T0 + 3600) == "late"
    assert hb.down_at(check, HOURLY) == T0 + 4200
    assert hb.tick(check, HOURLY, T0 + 4199.999) == (check, None)
    down, flip = hb.tick(check, HOURLY, T0 + 4200)
    assert down.status == "down" and down.reason == hb.NO_PING
    assert flip == hb.Flip(T0 + 4200, "up", "down", "no ping in time")
    assert hb.down_at(down, HOURLY) is None  # once down, no further deadline: one flip, not one per period
    assert hb.tick(down, HOURLY, T0 + 10**6) == (down, None)


def test_a_success_while_up_moves_the_deadline_without_a_flip():
    new, flip, _ = hb.ping(up_at(T0), HOURLY, "success", T0 + 1800)
    assert flip is None and hb.down_at(new, HOURLY) == T0 + 1800 + 4200


def test_down_comes_back_up_on_a_success_with_a_flip():
    down = Check(status="down", anchor_at=T0, reason=hb.NO_PING)
    new, flip, _ = hb.ping(down, HOURLY, "success", T0 + 5000)
    assert new.status == "up" and new.reason is None
    assert flip == hb.Flip(T0 + 5000, "down", "up", "pinged")


@pytest.mark.parametrize("kind, exit_status, reason", [
    ("fail", None, "it signalled failure"),
    ("success", 3, "exit status 3"),
    ("success", 255, "exit status 255"),
])
def test_fail_signals_take_it_down_at_once(kind, exit_status, reason):
    new, flip, _ = hb.ping(up_at(T0), HOURLY, kind, T0 + 5, exit_status=exit_status)
    assert new.status == "down" and flip == hb.Flip(T0 + 5, "up", "down", reason)
    again, flip2, _ = hb.ping(new, HOURLY, "fail", T0 + 6)
    assert again.status == "down" and flip2 is None  # already down: no second flip


def test_exit_status_zero_is_a_success():
    new, flip, _ = hb.ping(Check(status="down", anchor_at=T0, reason="x"), HOURLY, "success", T0 + 1, exit_status=0)
    assert new.status == "up" and flip.new == "up"


def test_log_changes_nothing():
    check = up_at(T0)
    assert hb.ping(check, HOURLY, "log", T0 + 10) == (check, None, None)


def test_start_shows_started_and_a_run_longer_than_grace_goes_down():
    check, flip, _ = hb.ping(up_at(T0), HOURLY, "start", T0 + 3000)
    assert flip is None and hb.state(check, HOURLY, T0 + 3001) == "started"
    assert hb.down_at(check, HOURLY) == T0 + 3600  # the run's start + grace, before the period's deadline
    down, flip = hb.tick(check, HOURLY, T0 + 3605)
    assert flip.at == T0 + 3600 and flip.new == "down" and flip.reason == "a run took longer than its grace of 10m"
    assert down.runs == ()  # told once: the overrun run cannot take it down again after a recovery


def test_a_new_check_whose_first_run_hangs_goes_down():
    check, _, _ = hb.ping(Check(), HOURLY, "start", T0)
    assert hb.state(check, HOURLY, T0 + 1) == "started"
    down, flip = hb.tick(check, HOURLY, T0 + 600)
    assert flip == hb.Flip(T0 + 600, "new", "down", "a run took longer than its grace of 10m")


def test_rid_pairs_each_end_with_its_own_start_when_runs_overlap():
    a, b = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    check, _, _ = hb.ping(up_at(T0), HOURLY, "start", T0 + 10, rid=a)
    check, _, _ = hb.ping(check, HOURLY, "start", T0 + 70, rid=b)
    check, flip, dur_a = hb.ping(check, HOURLY, "success", T0 + 100, rid=a)
    assert dur_a == 90 and flip is None and check.runs == ((b, T0 + 70),)
    assert hb.state(check, HOURLY, T0 + 101) == "started"
    check, _, dur_b = hb.ping(check, HOURLY, "success", T0 + 400, rid=b)
    assert dur_b == 330 and check.runs == ()


def test_an_end_without_rid_closes_the_run_without_rid():
    check, _, _ = hb.ping(up_at(T0), HOURLY, "start", T0 + 10)
    check, _, duration = hb.ping(check, HOURLY, "success", T0 + 25)
    assert duration == 15 and check.runs == ()


def test_open_runs_are_bounded():
    check = up_at(T0)
    for i in range(hb.MAX_RUNS + 20):
        check, _, _ = hb.ping(check, HOURLY, "start", T0 + i, rid=f"{i:08d}-0000-0000-0000-000000000000")
    assert len(check.runs) == hb.MAX_RUNS and check.runs[0][1] == T0 + 20


def test_paused_records_pings_but_only_a_success_changes_it():
    paused, flip = hb.pause(up_at(T0), T0 + 1)
    assert flip == hb.Flip(T0 + 1, "up", "paused", "paused by hand")
    assert hb.down_at(paused, HOURLY) is None and hb.state(paused, HOURLY, T0 + 10**6) == "paused"
    for kind in ("fail", "start", "log"):
        assert hb.ping(paused, HOURLY, kind, T0 + 5) == (paused, None, None)
    up, flip, _ = hb.ping(paused, HOURLY, "success", T0 + 9)
    assert up.status == "up" and flip == hb.Flip(T0 + 9, "paused", "up", "pinged while paused")


def test_resume_counts_the_period_from_the_resume():
    paused, _ = hb.pause(Check(status="down", anchor_at=T0, reason="x"), T0 + 1)
    up, flip = hb.resume(paused, T0 + 100)
    assert flip.new == "up" and hb.down_at(up, HOURLY) == T0 + 100 + 4200
    assert hb.resume(up, T0 + 200) == (up, None)


def test_cron_expects_the_next_time_of_the_line_in_the_rules_timezone():
    nightly = Spec(cron="0 2 * * *", grace=1800, timezone="America/New_York")
    ran = datetime(2026, 3, 10, 6, 0, 5, tzinfo=timezone.utc).timestamp()  # 02:00:05 in New York (EDT)
    expected = datetime(2026, 3, 11, 6, 0, tzinfo=timezone.utc).timestamp()
    assert hb.expected_at(nightly, ran) == expected
    assert hb.down_at(up_at(ran), nightly) == expected + 1800


def test_cron_across_the_spring_dst_change():
    nightly = Spec(cron="30 3 * * *", grace=60, timezone="America/New_York")
    ran = datetime(2026, 3, 7, 8, 30, tzinfo=timezone.utc).timestamp()  # Sat 03:30 EST
    # Sunday 8 March 03:30 EDT is 07:30 UTC
    assert hb.expected_at(nightly, ran) == datetime(2026, 3, 8, 7, 30, tzinfo=timezone.utc).timestamp()


def test_a_deadline_missed_many_times_over_is_one_flip():
    check = Check(status="up", anchor_at=T0)
    down, flip = hb.tick(check, HOURLY, T0 + 30 * 86400)  # alertd was stopped for a month
    assert flip == hb.Flip(T0 + 4200, "up", "down", hb.NO_PING)  # dated when it went down
    assert hb.tick(down, HOURLY, T0 + 31 * 86400)[1] is None


def test_ago_is_short_and_human():
    assert [hb.ago(s) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == ["5s", "2m", "3h 5m", "2d 4h"]
