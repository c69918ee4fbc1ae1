"""config.yaml models for reaching whoever is on call: ``inbound:`` numbers and
a rotation's ``notify_shift``. config.py holds them; the checks that need the
rest of the config (names, the provider's numbers) are in ``reach_problems``.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import phones
from .durations import format_duration, parse_duration

_LANGUAGE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _duration(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)


def _within(low: timedelta, high: timedelta | None, example: str):
    """A validator: a duration from ``low`` to ``high`` (no upper bound when None)."""
    def check(v: timedelta) -> timedelta:
        if v < low or (high is not None and v > high):
            span = f"from {format_duration(low)} to {format_duration(high)}" if high else \
                f"at least {format_duration(low)}"
            raise ValueError(f"must be {span} (write it like {example})")
        return v
    return check


class ShiftNotice(_Strict):
    """Tell each person ``before`` their shift starts (alertd/dispatch/shift_notices.py)."""

    before: timedelta = timedelta(hours=1)
    action_type: Literal["sms", "call", "both"] = "sms"
    _norm = field_validator("before", mode="before")(_duration)
    _range = field_validator("before")(_within(timedelta(minutes=1), timedelta(days=7), "1h"))


class Voicemail(_Strict):
    """What happens when nobody answered: the caller may leave a message, which
    becomes a trigger (alertd/inbound/calls.py)."""

    transcribe: bool = False
    max_length: timedelta = timedelta(minutes=2)
    # each fallback of `then` is texted this long after the one before, until acknowledged
    escalate_after: timedelta = timedelta(minutes=10)
    prompt: str | None = Field(None, max_length=1000)  # default: "Nobody is available. Please leave a message..."
    _norm = field_validator("max_length", "escalate_after", mode="before")(_duration)
    _length = field_validator("max_length")(_within(timedelta(seconds=5), timedelta(hours=1), "2m"))
    _escalate = field_validator("escalate_after")(_within(timedelta(minutes=1), None, "10m"))


class InboundNumber(_Strict):
    """One of the provider's numbers, answered by alertd: who is rung, in order."""

    rotation: str | None = None
    contact: str | None = None
    group: str | None = None
    to: list[str] | None = None  # names or numbers, rung one after the other
    greeting: str | None = Field(None, max_length=1000)
    ring: timedelta = timedelta(seconds=20)  # per step
    then: list[str] = Field(default_factory=list)
    voicemail: Voicemail | None = None
    language: str = "en-US"
    _norm = field_validator("ring", mode="before")(_duration)
    # Twilio's <Dial timeout> takes 5 to 600 seconds
    _ring = field_validator("ring")(_within(timedelta(seconds=5), timedelta(minutes=10), "20s"))

    @field_validator("voicemail", mode="before")
    @classmethod
    def _voicemail(cls, v: Any) -> Any:
        if v is True:
            return {}
        return None if v is False else v

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        if not _LANGUAGE.match(v):
            raise ValueError(f"{v!r} is not a language tag like en-US")
        return v

    @model_validator(mode="after")
    def _one_target(self) -> "InboundNumber":
        given = [k for k in ("rotation", "contact", "group", "to") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of rotation, contact, group or to (a list)"
                             + (f"; got {', '.join(given)}" if given else ""))
        return self

    @property
    def targets(self) -> list[str]:
        """Every name or number tried, in order: the first target(s), then the fallbacks."""
        first = self.to or [self.rotation or self.contact or self.group]
        return [*first, *self.then]


def _name_problem(config, name: str) -> str | None:
    if name in config.contacts or name in config.groups or name in config.rotations:
        return None
    try:
        phones.normalize(name)
    except ValueError:
        return f"unknown name '{name}' (a contact, group or rotation, or a number like +15551230001)"
    return None


# the provider kinds whose numbers can route an inbound call (TwiML and its kin, Plivo XML,
# Vonage's NCCO: alertd/providers/inbound_voice.py)
INBOUND_KINDS = ("twilio", "signalwire", "telnyx", "simulator", "plivo", "vonage")


def reach_problems(config) -> list[tuple[tuple, str]]:
    """(key path, message) for each inbound number that is not the provider's, that
    only a provider without inbound calls owns, or that names something that does not exist."""
    problems: list[tuple[tuple, str]] = []
    for key, entry in config.inbound.items():
        loc = ("inbound", key)
        try:
            number = phones.normalize(str(key))
        except ValueError as exc:
            problems.append((loc, str(exc)))
            continue
        if number not in config.provider.numbers:
            owned = ", ".join(config.provider.numbers) or "none configured"
            problems.append((loc, f"{number} is not one of the provider's numbers (provider.numbers: {owned})"))
        owners = [e for e in config.providers if number in e.numbers]
        if owners and not any(e.kind in INBOUND_KINDS for e in owners):
            names = ", ".join(f"{e.name} ({e.kind})" for e in owners)
            problems.append((loc, f"{number} is a number of {names}, which does not route inbound calls"
                                  f" (these kinds do: {', '.join(INBOUND_KINDS)})"))
        for kind, names in (("rotation", config.rotations), ("contact", config.contacts), ("group", config.groups)):
            value = getattr(entry, kind)
            if value and value not in names:
                problems.append((loc + (kind,), f"unknown {kind} '{value}'"))
        for field in ("to", "then"):
            for i, name in enumerate(getattr(entry, field) or ()):
                msg = _name_problem(config, str(name))
                if msg:
                    problems.append((loc + (field, i), msg))
    return problems


def inbound_for(config, number: str) -> InboundNumber | None:
    """The inbound entry of ``number`` (any format), or None."""
    for key, entry in config.inbound.items():
        try:
            if phones.normalize(str(key)) == number:
                return entry
        except ValueError:
            continue
    return None
