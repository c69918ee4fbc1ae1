"""Firing/resolved flips and cooldowns: notify on changes, not on ticks."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alertd.engine.state import AlertState, cooldown_allows, step

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def run(sequence, *, repeat_every=None, notify_resolved=False, can_notify=None):
    state, actions = None, []
    for i, firing in enumerate(sequence):
        allowed = True if can_notify is None else can_notify[i]
        state, action = step(state, firing, T0 + i * MINUTE, repeat_every=repeat_every,
                             notify_resolved=notify_resolved, can_notify=allowed)
        actions.append(action)
    return actions


def test_notifies_once_when_it_turns_true_and_again_after_clearing():
    assert run([False, True, True, False, True]) == [None, "firing", None, None, "firing"]


def test_notify_resolved_sends_one_resolved_when_it_clears():
    assert run([False, True, True, False, True], notify_resolved=True) == [None, "firing", None, "resolved", "firing"]


def test_repeat_every_notifies_again_while_still_firing():
    assert run([False, True, True, False, True], repeat_every=MINUTE) == [None, "firing", "repeat", None, "firing"]


def test_repeat_and_resolved_together():
    actions = run([False, True, True, False, True], repeat_every=MINUTE, notify_resolved=True)
    assert actions == [None, "firing", "repeat", "resolved", "firing"]


def test_repeat_waits_for_the_full_interval_since_the_last_notification():
    actions = run([True, True, True, True, True], repeat_every=2 * MINUTE)
    assert actions == ["firing", None, "repeat", None, "repeat"]


def test_first_evaluation_that_fires_notifies():
    state, action = step(None, True, T0, repeat_every=None, notify_resolved=False)
    assert action == "firing" and state == AlertState(firing=True, since=T0, notified_at=T0)


def test_clearing_without_a_notified_firing_sends_no_resolved():
    # fired while notifications were held back (outside the window), cleared
    actions = run([True, False], notify_resolved=True, can_notify=[False, True])
    assert actions == [None, None]


def test_firing_held_back_is_sent_when_notifying_becomes_allowed():
    actions = run([True, True, True], can_notify=[False, False, True])
    assert actions == [None, None, "firing"]


def test_flip_time_is_kept_while_state_holds():
    state, _ = step(None, True, T0, repeat_every=None, notify_resolved=False)
    state, _ = step(state, True, T0 + MINUTE, repeat_every=None, notify_resolved=False)
    assert state.since == T0
    state, _ = step(state, False, T0 + 2 * MINUTE, repeat_every=None, notify_resolved=False)
    assert state == AlertState(firing=False, since=T0 + 2 * MINUTE, notified_at=None)


@pytest.mark.parametrize(("elapsed", "expected"), [
    (timedelta(0), False),
    (timedelta(minutes=14, seconds=59), False),
    (timedelta(minutes=15) - timedelta(microseconds=1), False),
    (timedelta(minutes=15), True),
    (timedelta(hours=2), True),
])
def test_cooldown_boundaries(elapsed, expected):
    assert cooldown_allows(T0, T0 + elapsed, timedelta(minutes=15)) is expected


def test_no_cooldown_or_nothing_sent_yet_allows():
    assert cooldown_allows(None, T0, timedelta(minutes=15))
    assert cooldown_allows(T0, T0, None)
    assert cooldown_allows(T0, T0, timedelta(0))
