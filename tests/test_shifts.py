"""The shifts of a rotation over a window (alertd/shifts.py): what the feed, --weeks and shift notices read."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from alertd.config import Rotation
from alertd.oncall import Override
from alertd.shifts import Shift, timeline

NY = ZoneInfo("America/New_York")
DAILY = Rotation(members=["a", "b"], shift="1d", start="2026-01-05T09:00")


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def test_an_override_in_force_at_the_start_keeps_its_own_start_and_the_turn_resumes_after_it():
    ov = Override("m", ny(2026, 1, 6, 8), ny(2026, 1, 6, 12))  # across the 09:00 handoff
    shifts = timeline(DAILY, NY, ny(2026, 1, 6, 10), ny(2026, 1, 7, 10), [ov])
    assert shifts == [Shift("m", ny(2026, 1, 6, 8), ny(2026, 1, 6, 12), True),
                      Shift("b", ny(2026, 1, 6, 12), ny(2026, 1, 7, 9)),
                      Shift("a", ny(2026, 1, 7, 9), ny(2026, 1, 8, 9))]


def test_an_override_that_ended_earlier_in_the_turn_starts_the_scheduled_shift_at_its_end():
    ov = Override("m", ny(2026, 1, 6, 10), ny(2026, 1, 6, 12))
    (first, *_) = timeline(DAILY, NY, ny(2026, 1, 6, 15), ny(2026, 1, 6, 16), [ov])
    assert first == Shift("b", ny(2026, 1, 6, 12), ny(2026, 1, 7, 9))


def test_the_newest_of_overlapping_overrides_wins_and_the_older_resumes():
    older = Override("m", ny(2026, 1, 6, 10), ny(2026, 1, 6, 18))
    newer = Override("c", ny(2026, 1, 6, 12), ny(2026, 1, 6, 14))
    shifts = timeline(DAILY, NY, ny(2026, 1, 6, 9), ny(2026, 1, 6, 20), [newer, older])
    assert [(s.contact, s.starts_at.astimezone(NY).hour, s.ends_at.astimezone(NY).hour) for s in shifts] == [
        ("b", 9, 10), ("m", 10, 12), ("c", 12, 14), ("m", 14, 18), ("b", 18, 9)]


def test_the_autumn_change_makes_a_25_hour_shift():
    (shift,) = timeline(DAILY, NY, ny(2026, 10, 31, 10), ny(2026, 10, 31, 11))  # clocks go back on 1 Nov
    assert (shift.ends_at - shift.starts_at).total_seconds() == 25 * 3600
