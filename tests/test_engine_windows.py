"""Active windows at their edges: 08:59/09:00, 16:59/17:00, midnight, DST days."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from alertd.engine.windows import is_active
from alertd.rules.models import Active

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
UTC = timezone.utc


def window(**kw) -> Active:
    return Active.model_validate(kw)


OFFICE = window(days=["mon", "tue", "wed", "thu", "fri"], **{"from": "09:00", "until": "17:00"}, timezone="America/Chicago")


@pytest.mark.parametrize(("hour", "minute", "second", "expected"), [
    (8, 59, 59, False),
    (9, 0, 0, True),
    (16, 59, 59, True),
    (17, 0, 0, False),
])
def test_office_hours_edges_from_inclusive_until_exclusive(hour, minute, second, expected):
    # Tuesday 2026-03-10 in Chicago
    assert is_active(OFFICE, datetime(2026, 3, 10, hour, minute, second, tzinfo=CHI), "UTC") is expected


def test_window_is_judged_in_its_own_timezone_whatever_now_is_expressed_in():
    at_9_chicago = datetime(2026, 3, 10, 9, 0, tzinfo=CHI).astimezone(UTC)
    assert is_active(OFFICE, at_9_chicago, "Europe/Paris")
    assert not is_active(OFFICE, datetime(2026, 3, 14, 12, 0, tzinfo=CHI), "UTC")  # Saturday


def test_default_timezone_is_used_when_the_window_has_none():
    w = window(**{"from": "09:00", "until": "17:00"})
    nine_ny = datetime(2026, 3, 10, 9, 0, tzinfo=NY)
    assert is_active(w, nine_ny, "America/New_York")
    assert not is_active(w, nine_ny, "America/Chicago")  # 08:00 there


NIGHT = window(days=["mon"], **{"from": "18:00", "until": "07:00"}, timezone="America/New_York")


@pytest.mark.parametrize(("day", "hour", "minute", "expected"), [
    (8, 23, 0, False),   # Sunday night: Sunday's window is not listed
    (9, 2, 0, False),    # Monday 02:00 belongs to Sunday's window
    (9, 17, 59, False),
    (9, 18, 0, True),    # Monday's window starts
    (9, 23, 59, True),
    (10, 0, 0, True),    # Tuesday 00:00 still Monday's window
    (10, 2, 0, True),
    (10, 6, 59, True),
    (10, 7, 0, False),   # ends, exclusive
    (10, 18, 0, False),  # Tuesday's window is not listed
])
def test_window_across_midnight_belongs_to_the_day_it_starts(day, hour, minute, expected):
    assert is_active(NIGHT, datetime(2026, 3, day, hour, minute, tzinfo=NY), "UTC") is expected


def test_spring_forward_2026_03_08_new_york_keeps_wall_clock_edges():
    w = window(**{"from": "09:00", "until": "17:00"}, timezone="America/New_York")
    # 09:00 is 14:00Z on Saturday (EST) and 13:00Z on Sunday (EDT)
    assert is_active(w, datetime(2026, 3, 7, 14, 0, tzinfo=UTC), "UTC")
    assert not is_active(w, datetime(2026, 3, 7, 13, 59, tzinfo=UTC), "UTC")
    assert not is_active(w, datetime(2026, 3, 8, 12, 59, tzinfo=UTC), "UTC")
    assert is_active(w, datetime(2026, 3, 8, 13, 0, tzinfo=UTC), "UTC")
    assert is_active(w, datetime(2026, 3, 8, 20, 59, tzinfo=UTC), "UTC")  # 16:59 EDT
    assert not is_active(w, datetime(2026, 3, 8, 21, 0, tzinfo=UTC), "UTC")


def test_spring_forward_edge_in_the_skipped_hour_takes_effect_at_three():
    w = window(**{"from": "02:30", "until": "04:00"}, timezone="America/New_York")
    assert not is_active(w, datetime(2026, 3, 8, 6, 59, tzinfo=UTC), "UTC")  # 01:59 EST
    assert is_active(w, datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "UTC")  # 03:00 EDT


def test_spring_forward_night_window_in_chicago():
    w = window(days=["sat"], **{"from": "22:00", "until": "06:00"}, timezone="America/Chicago")
    # Saturday night into Sunday 2026-03-08: 06:00 CDT is 11:00Z
    assert is_active(w, datetime(2026, 3, 8, 10, 59, tzinfo=UTC), "UTC")
    assert not is_active(w, datetime(2026, 3, 8, 11, 0, tzinfo=UTC), "UTC")


def test_fall_back_2026_11_01_repeated_hour_counts_both_times():
    w = window(**{"from": "01:00", "until": "02:00"}, timezone="America/Chicago")
    first_0130 = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)   # 01:30 CDT
    second_0130 = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)  # 01:30 CST
    assert first_0130.astimezone(CHI).hour == second_0130.astimezone(CHI).hour == 1
    assert is_active(w, first_0130, "UTC") and is_active(w, second_0130, "UTC")
    assert not is_active(w, datetime(2026, 11, 1, 8, 0, tzinfo=UTC), "UTC")  # 02:00 CST


def test_fall_back_night_window_in_new_york_ends_at_wall_clock_six():
    w = window(days=["sat"], **{"from": "22:00", "until": "06:00"}, timezone="America/New_York")
    # 06:00 EST on Sunday 2026-11-01 is 11:00Z; the night is 9 hours long
    assert is_active(w, datetime(2026, 11, 1, 2, 0, tzinfo=UTC), "UTC")  # Sat 22:00 EDT
    assert is_active(w, datetime(2026, 11, 1, 10, 59, tzinfo=UTC), "UTC")
    assert not is_active(w, datetime(2026, 11, 1, 11, 0, tzinfo=UTC), "UTC")
    assert not is_active(w, datetime(2026, 11, 1, 1, 59, tzinfo=UTC), "UTC")  # Sat 21:59 EDT


def test_open_ended_windows():
    t = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert is_active(None, t, "UTC")
    assert is_active(window(), t, "UTC")
    assert is_active(window(**{"from": "12:00"}), t, "UTC")
    assert not is_active(window(**{"from": "12:01"}), t, "UTC")
    assert is_active(window(until="12:01"), t, "UTC")
    assert not is_active(window(until="12:00"), t, "UTC")
    assert is_active(window(**{"from": "09:00", "until": "24:00"}), t.replace(hour=23, minute=59), "UTC")


def test_from_equal_until_is_a_full_day_starting_at_from():
    w = window(days=["tue"], **{"from": "07:00", "until": "07:00"})
    assert is_active(w, datetime(2026, 3, 10, 7, 0, tzinfo=UTC), "UTC")      # Tue 07:00
    assert is_active(w, datetime(2026, 3, 11, 6, 59, tzinfo=UTC), "UTC")     # Wed 06:59
    assert not is_active(w, datetime(2026, 3, 11, 7, 0, tzinfo=UTC), "UTC")  # Wed's window


def test_day_ranges_and_full_names():
    assert window(days="mon-fri").days == (0, 1, 2, 3, 4)
    assert window(days=["fri-mon"]).days == (0, 4, 5, 6)
    assert window(days=["Saturday", "sun"]).days == (5, 6)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        is_active(OFFICE, datetime(2026, 3, 10, 9, 0), "UTC")
