"""Who an inbound call rings, in order: one step per target, resolved at one moment.

A rotation is whoever is on call then (overrides included), a contact its
number, a group all its members at once (the first to answer takes the call),
a number itself. A number already rung in an earlier step is not rung again,
and a step left with nobody is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .. import phones
from ..config import Config
from ..oncall import load_overrides, on_call


@dataclass(frozen=True)
class Step:
    label: str            # "ops: oncall_primary", "manager", "group oncall", "+15551230009"
    numbers: list[str]    # E.164, rung at once


async def resolve(config: Config, store, name: str, now: datetime) -> Step:
    """One target as a step. Raises ValueError for a name that is none of the kinds."""
    if name in config.rotations:
        overrides = await load_overrides(store, name, now, config.contacts)
        current = on_call(config.rotations[name], config.tz, now, overrides)
        return Step(f"{name}: {current.contact}", [config.contacts[current.contact].phone])
    if name in config.contacts:
        return Step(name, [config.contacts[name].phone])
    if name in config.groups:
        return Step(f"group {name}", [config.contacts[m].phone for m in config.groups[name]])
    number = phones.normalize(name)
    label = next((n for n, c in config.contacts.items() if c.phone == number), number)
    return Step(label, [number])


async def steps(config: Config, store, targets: list[str], now: datetime) -> list[Step]:
    out: list[Step] = []
    rung: set[str] = set()
    for name in targets:
        step = await resolve(config, store, name, now)
        fresh = [n for n in dict.fromkeys(step.numbers) if n not in rung]
        if fresh:
            rung.update(fresh)
            out.append(Step(step.label, fresh))
    return out
