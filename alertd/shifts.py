"""A rotation's shifts over a window: the schedule with the overrides laid on it.

The calendar feed, ``alertd oncall NAME --weeks N`` and the shift notices all
read this one list, so what a calendar shows is what people are told and who
the daemon rings. A shift is a stretch with one person on call for one reason:
a scheduled turn, or an override. An override cuts the scheduled turn it lands
in, so the scheduled person has a shift before it and another after it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence
from zoneinfo import ZoneInfo

from .config import Config, Rotation
from .oncall import Override, handoff, load_overrides, member, override_at, shift_index


@dataclass(frozen=True)
class Shift:
    contact: str
    starts_at: datetime  # UTC
    ends_at: datetime    # UTC
    override: bool = False


def timeline(rot: Rotation, tz: ZoneInfo, start: datetime, end: datetime,
             overrides: Sequence[Override] = ()) -> list[Shift]:
    """The shifts that overlap [start, end), in order, each with its real start
    and end (the first may start before ``start``). ``overrides``: newest first,
    including those that ended after the scheduled turn in force at ``start`` began."""
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    k = shift_index(rot, tz, start)
    first = handoff(rot, tz, k)
    in_force = override_at(overrides, start)
    if in_force is not None:
        first = min(first, in_force.starts_at)
    last_k = shift_index(rot, tz, end) + 1
    points = {first, handoff(rot, tz, last_k)}
    points.update(handoff(rot, tz, i) for i in range(k, last_k))
    points.update(t for o in overrides for t in (o.starts_at, o.ends_at) if first < t < handoff(rot, tz, last_k))
    cuts = sorted(points)
    merged: list[tuple[tuple, Shift]] = []
    for a, b in zip(cuts, cuts[1:]):
        if a == b:
            continue
        ov = override_at(overrides, a)
        if ov is not None:
            key, contact = ("override", ov.starts_at, ov.contact), ov.contact
        else:
            i = shift_index(rot, tz, a)
            key, contact = ("shift", i), member(rot, i)
        if merged and merged[-1][0] == key:
            prev = merged[-1][1]
            merged[-1] = (key, Shift(prev.contact, prev.starts_at, b, prev.override))
        else:
            merged.append((key, Shift(contact, a, b, ov is not None)))
    return [s for _, s in merged if s.ends_at > start and s.starts_at < end]


async def rotation_shifts(config: Config, store, name: str, start: datetime, end: datetime) -> list[Shift]:
    """``timeline`` of rotation ``name`` with its stored overrides. Raises KeyError for an unknown rotation."""
    rot, tz = config.rotations[name], config.tz
    # overrides that ended since the turn in force at `start` began still shape its shifts
    since = handoff(rot, tz, shift_index(rot, tz, start)) - timedelta(seconds=1)
    overrides = await load_overrides(store, name, min(since, start), config.contacts)
    return timeline(rot, tz, start, end, overrides)
