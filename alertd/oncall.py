"""Who is on call: pure functions of a rotation, the config timezone and ``now``.

A rotation's members take turns of ``shift``, the first starting at ``start``.
Handoff k happens at the wall-clock time ``start + k * shift`` in the config
timezone, not after a fixed number of seconds: a daily or weekly rotation that
starts at 09:00 hands over at 09:00 local on the DST change days too, so the
shift that contains the change is an hour shorter (spring) or longer (autumn).
For a 12h shift starting 09:00 the handoffs stay at 09:00 and 21:00.

The edge cases follow PEP 495, as ``zoneinfo`` does: a handoff whose wall time
does not exist (02:30 on the spring-forward day) is read with the offset in
force before the change, i.e. 03:30 after it; one that occurs twice (01:30 on
the autumn day) is the first. Before ``start`` the cycle runs backwards, so
someone is always on call: the last member has the shift that ends at
``start``.

Overrides (``alertd oncall override``) hand the rotation to a contact for a
while; the newest override in force wins, and when it ends the schedule
applies again. The functions that read or write overrides in the database
(``resolve_rotation``, ``load_overrides``, ``add_override``) are at the end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator, Sequence
from zoneinfo import ZoneInfo

from .clock import from_timestamp
from .config import Config, Rotation

class OnCallError(ValueError):
    """A rotation, contact or duration that does not exist or make sense."""


@dataclass(frozen=True)
class Override:
    contact: str
    starts_at: datetime
    ends_at: datetime

    def in_force(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class OnCall:
    """Who is on call at one moment. ``until`` is the next scheduled handoff,
    or the override's end; ``scheduled`` is the member the schedule names."""

    contact: str
    since: datetime
    until: datetime
    scheduled: str
    override: Override | None = None


@dataclass(frozen=True)
class Handoff:
    at: datetime       # UTC
    contact: str       # who is on call from then
    note: str | None = None  # "override ends"


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(timezone.utc)


def _local_start(rot: Rotation, tz: ZoneInfo) -> datetime:
    """``start`` as a naive wall time in ``tz`` (an explicit offset is converted)."""
    if rot.start.tzinfo is None:
        return rot.start
    return rot.start.astimezone(tz).replace(tzinfo=None)


def handoff(rot: Rotation, tz: ZoneInfo, k: int) -> datetime:
    """The UTC instant of handoff ``k`` (0 is ``start``; negative is before it)."""
    wall = _local_start(rot, tz) + k * rot.shift
    return wall.replace(tzinfo=tz).astimezone(timezone.utc)


def shift_index(rot: Rotation, tz: ZoneInfo, now: datetime) -> int:
    """The k of the shift in progress at ``now``: handoff(k) <= now < handoff(k + 1)."""
    now = _aware(now)
    wall_now = now.astimezone(tz).replace(tzinfo=None)
    k = math.floor((wall_now - _local_start(rot, tz)) / rot.shift)
    # the estimate uses wall-clock differences; correct it against real instants
    # (it is off by one at most near a DST change)
    while handoff(rot, tz, k + 1) <= now:
        k += 1
    while handoff(rot, tz, k) > now:
        k -= 1
    return k


def member(rot: Rotation, k: int) -> str:
    return rot.members[k % len(rot.members)]


def override_at(overrides: Sequence[Override], at: datetime) -> Override | None:
    """The override in force at ``at``: the newest one (``overrides`` are newest first)."""
    at = _aware(at)
    return next((o for o in overrides if o.in_force(at)), None)


def on_call(rot: Rotation, tz: ZoneInfo, now: datetime, overrides: Sequence[Override] = ()) -> OnCall:
    """Who is on call at ``now``. ``overrides``: newest first."""
    now = _aware(now)
    k = shift_index(rot, tz, now)
    scheduled = member(rot, k)
    ov = override_at(overrides, now)
    if ov is not None:
        return OnCall(ov.contact, ov.starts_at, ov.ends_at, scheduled, ov)
    until = handoff(rot, tz, k + 1)
    return OnCall(scheduled, handoff(rot, tz, k), until, scheduled)


def _scheduled_after(rot: Rotation, tz: ZoneInfo, now: datetime) -> Iterator[tuple[datetime, int]]:
    k = shift_index(rot, tz, now) + 1
    at = handoff(rot, tz, k)
    while True:
        after = handoff(rot, tz, k + 1)
        if after != at:  # a shift that a DST gap shrank to nothing is no handoff
            yield at, k
        k, at = k + 1, after


def next_handoffs(rot: Rotation, tz: ZoneInfo, now: datetime, n: int,
                  overrides: Sequence[Override] = ()) -> list[Handoff]:
    """The next ``n`` moments after ``now`` when the rotation changes hands.

    Scheduled handoffs that fall inside an override are left out (the override's
    contact stays on call); the end of an override is a handoff of its own,
    noted "override ends".
    """
    now = _aware(now)
    ends = sorted({o.ends_at for o in overrides if o.ends_at > now})
    out: list[Handoff] = []
    scheduled = _scheduled_after(rot, tz, now)
    next_sched = next(scheduled)
    while len(out) < n:
        if ends and ends[0] <= next_sched[0]:
            at = ends.pop(0)
            if at == next_sched[0]:
                next_sched = next(scheduled)
            ov = override_at(overrides, at)
            who = ov.contact if ov else member(rot, shift_index(rot, tz, at))
            out.append(Handoff(at, who, "override ends" if ov is None else "next override"))
            continue
        at, k = next_sched
        next_sched = next(scheduled)
        if override_at(overrides, at) is None:
            out.append(Handoff(at, member(rot, k)))
    return out


# --- with the database ----------------------------------------------------------
def load_overrides(store, rotation: str, now: datetime, contacts=None) -> list[Override]:
    """The overrides of ``rotation`` not over at ``now``, newest first; those
    naming a contact no longer in ``contacts`` (when given) are left out."""
    rows = store.overrides.of_rotation(rotation, _aware(now).timestamp())
    return [Override(r["contact"], from_timestamp(r["starts_at"]), from_timestamp(r["ends_at"]))
            for r in rows if contacts is None or r["contact"] in contacts]


def resolve_rotation(config: Config, store, name: str, now: datetime) -> str:
    """The E.164 number of whoever is on call for rotation ``name`` at ``now``,
    overrides included. Raises KeyError for an unknown rotation."""
    rot = config.rotations[name]
    current = on_call(rot, config.tz, now, load_overrides(store, name, now, config.contacts))
    return config.contacts[current.contact].phone


def add_override(config: Config, store, name: str, contact: str, length: timedelta, now: datetime) -> Override:
    """Hand rotation ``name`` to ``contact`` from ``now`` for ``length``. Raises OnCallError."""
    if name not in config.rotations:
        known = ", ".join(config.rotations) or "none configured"
        raise OnCallError(f"unknown rotation '{name}' (rotations: {known})")
    if contact not in config.contacts:
        raise OnCallError(f"unknown contact '{contact}' (contacts: {', '.join(config.contacts) or 'none'})")
    if length <= timedelta(0):
        raise OnCallError("--for: must be more than 0")
    now = _aware(now)
    ov = Override(contact, now, now + length)
    store.overrides.add(name, contact, ov.starts_at.timestamp(), ov.ends_at.timestamp(), now.timestamp())
    return ov
