"""The one directory of names: contacts, groups and rotations of the config, to numbers.

The rules engine resolves a rule's ``to`` through ``recipients()`` (pure: a
rotation stays a name until send time); the notify API's escalation steps and
the dead man's switch through ``resolve``; follow-ups and rules ask
``on_call`` for the number on call when a row is due, overrides included.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from . import oncall
from .clock import from_timestamp
from .engine.recipients import Recipients


class Directory:
    def __init__(self, config, store=None):
        self.config, self.store = config, store
        self.contacts: dict[str, str] = {name: c.phone for name, c in config.contacts.items()}
        self.groups: dict[str, Any] = config.groups
        self.rotations: tuple[str, ...] = tuple(getattr(config, "rotations", {}) or ())

    def recipients(self) -> Recipients:
        return Recipients(self.contacts, self.groups, self.rotations)

    def resolve(self, entries: list[str], key: str) -> tuple[list[str], list[str]]:
        """(numbers, rotations) of contact, group, rotation or number entries.
        Raises ValueError with the first problem, named by ``key``."""
        errors: list[str] = []
        numbers, rotations = self.recipients().resolve([str(e) for e in entries], {}, key, errors)
        if errors:
            raise ValueError(errors[0])
        return numbers, rotations

    def on_call(self, rotation: str, at: float | datetime) -> str:
        """The number on call for ``rotation`` at ``at``. Raises KeyError for an unknown rotation."""
        when = from_timestamp(at) if isinstance(at, (int, float)) else at
        return oncall.resolve_rotation(self.config, self.store, rotation, when)
