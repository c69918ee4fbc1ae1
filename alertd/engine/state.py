"""Firing/resolved flips for stateful sources, and cooldowns.

Notify on changes of state, not on ticks: a poll that keeps failing every
10 s, or an Alertmanager that re-sends a firing alert every 5 minutes, is
one notification, not one per tick. ``step`` is the whole state machine; the
caller stores the returned AlertState per (rule id, dedup key) and acts on
the returned action.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["firing", "repeat", "resolved"]


@dataclass(frozen=True)
class AlertState:
    """What the engine remembers about one (rule, dedup key).

    - ``firing``: the condition held at the last evaluation.
    - ``since``: when ``firing`` last changed (the flip).
    - ``notified_at``: the last firing/repeat notification of the current
      firing episode; None when none was sent (yet) in this episode.
    """

    firing: bool
    since: datetime
    notified_at: datetime | None = None


def step(
    prev: AlertState | None,
    firing: bool,
    now: datetime,
    *,
    repeat_every: timedelta | None,
    notify_resolved: bool,
    can_notify: bool = True,
) -> tuple[AlertState, Action | None]:
    """Advance the state by one evaluation; returns (new state, action or None).

    - turns true: "firing".
    - stays true: None, or "repeat" once ``repeat_every`` has passed since the
      last notification (at the first evaluation at or after that time).
    - turns false: "resolved" if ``notify_resolved`` and this episode's
      firing was notified; else None.
    - stays false: None.

    ``can_notify=False`` (outside the active window, or in a cooldown) holds
    a notification back without losing the flip: a firing held back is sent
    at the first later evaluation that may notify while the condition still
    holds; a repeat waits likewise; a resolved notice held back is dropped
    (the episode is over). ``prev`` None means nothing is known: treated as
    not firing, so a first evaluation that fires notifies.
    """
    if prev is None:
        prev = AlertState(firing=False, since=now)

    if firing and not prev.firing:
        if can_notify:
            return AlertState(True, now, now), "firing"
        return AlertState(True, now, None), None

    if firing:
        if not can_notify:
            return prev, None
        if prev.notified_at is None:
            return replace(prev, notified_at=now), "firing"
        if repeat_every and now - prev.notified_at >= repeat_every:
            return replace(prev, notified_at=now), "repeat"
        return prev, None

    if prev.firing:
        notified = prev.notified_at is not None
        action: Action | None = "resolved" if notify_resolved and notified and can_notify else None
        return AlertState(False, now, None), action
    return prev, None


def cooldown_allows(last_sent_at: datetime | None, now: datetime, cooldown: timedelta | None) -> bool:
    """Whether a notification may go out now.

    At most one notification per (rule, dedup key) per ``cooldown``: one sent
    at 09:00 with ``cooldown: 15m`` blocks until 09:14:59.999999 and allows at
    09:15:00 exactly. No cooldown, or nothing sent yet: allowed.
    """
    if not cooldown or last_sent_at is None:
        return True
    return now - last_sent_at >= cooldown
