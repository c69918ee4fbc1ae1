"""Silences: hold back the notifications of a rule, a source or a number for a while.

A silence has exactly one matcher:

- ``rule_id``: the notifications of that rule (the trigger's rule id);
- ``source``: triggers with that source (the notify API's ``source`` field,
  or a rule's, which defaults to ``rule:<id>``);
- ``to``: one recipient number, compared in E.164.

A row a silence holds back is still written to the trigger log, with status
``silenced`` and the silence's id, and gets no outbox item: nothing is dropped
without a trace. Rows that are already ``failed`` (a template that would not
render, a bad number) stay failed: that is news about a broken rule, which a
silence should not hide.

A silence starts when it is created and ends at its ``until`` (or
``now + duration``), or earlier when removed. Removed and expired silences
stay in the table, so a log row's ``silence_id`` always leads somewhere.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import structlog

from .. import phones
from ..clock import from_timestamp, iso
from ..durations import parse_duration
from ..store import Store

log = structlog.get_logger("alertd.silences")
MAX_REASON = 1000
MATCHERS = ("rule_id", "source", "to")
# a silence forgotten for longer than this hides alerts nobody remembers muting; past it,
# make a new one (and year 10000 can be neither stored nor shown)
MAX_SILENCE = timedelta(days=365)


class SilenceError(ValueError):
    """A silence that cannot be made; the message starts with the field's name."""


@dataclass(frozen=True)
class Silence:
    silence_id: str
    matcher: str        # rule_id | source | to
    value: str
    starts_at: float
    ends_at: float
    reason: str
    created_at: float
    created_by: str | None = None

    def applies(self, *, source: str | None, rule_id: str | None, to: str | None, at: float) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        wanted = {"rule_id": rule_id, "source": source, "to": to}[self.matcher]
        return wanted is not None and wanted == self.value

    def as_dict(self) -> dict[str, Any]:
        """As the API and ``alertd silence list`` show it: the two unused matchers are null."""
        return {"silence_id": self.silence_id,
                **{m: (self.value if m == self.matcher else None) for m in MATCHERS},
                "starts_at": iso(from_timestamp(self.starts_at)), "ends_at": iso(from_timestamp(self.ends_at)),
                "reason": self.reason, "created_at": iso(from_timestamp(self.created_at)),
                "created_by": self.created_by}


def _silence(row) -> Silence:
    return Silence(row["silence_id"], row["matcher"], row["value"], row["starts_at"], row["ends_at"],
                   row["reason"], row["created_at"], row["created_by"])


def _ts(now: datetime | float) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


def parse_until(text: str, tz: ZoneInfo) -> datetime:
    """ISO 8601; a time without an offset is in ``tz`` (the config timezone, as
    for a rule's notify.at). Raises SilenceError."""
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise SilenceError(f"until: not an ISO 8601 time: {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def build(*, rule_id: str | None = None, source: str | None = None, to: str | None = None,
          duration: str | int | float | None = None, until: str | None = None, reason: str | None = None,
          now: datetime, tz: ZoneInfo) -> tuple[str, str, float, float, str]:
    """Check what a person asked for; returns (matcher, value, starts_at, ends_at, reason).

    Shared by the API and the CLI so both refuse the same things with the same
    words. Raises SilenceError naming the field.
    """
    given = {k: v for k, v in (("rule_id", rule_id), ("source", source), ("to", to)) if v is not None}
    if not given:
        raise SilenceError("rule_id, source or to: one is required (what to silence)")
    if len(given) > 1:
        raise SilenceError(f"{', '.join(given)}: give exactly one of rule_id, source or to")
    (matcher, value), = given.items()
    value = str(value).strip()
    if not value:
        raise SilenceError(f"{matcher}: must not be empty")
    if matcher == "to":
        try:
            value = phones.normalize(value)
        except ValueError as exc:
            raise SilenceError(f"to: {exc}") from None
    if duration is not None and until is not None:
        raise SilenceError("duration, until: give either duration or until, not both")
    if duration is None and until is None:
        raise SilenceError("duration or until: one is required (how long to silence)")
    start = _ts(now)
    if duration is not None:
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            raise SilenceError(f"duration: {exc}") from None
        if length <= timedelta(0):
            raise SilenceError("duration: must be more than 0")
        if length > MAX_SILENCE:
            raise SilenceError(f"duration: at most {MAX_SILENCE.days} days (a silence ends within a year)")
        end = start + length.total_seconds()
    else:
        end = parse_until(until, tz).timestamp()
        if end <= start:
            raise SilenceError(f"until: must be in the future (it is now {iso(from_timestamp(start))})")
        if end - start > MAX_SILENCE.total_seconds():
            raise SilenceError(f"until: at most {MAX_SILENCE.days} days from now (a silence ends within a year;"
                               f" the latest is {iso(from_timestamp(start + MAX_SILENCE.total_seconds()))})")
    reason = (reason or "").strip()
    if not reason:
        raise SilenceError("reason: is required (say why, for whoever finds the silence later)")
    if len(reason) > MAX_REASON:
        raise SilenceError(f"reason: at most {MAX_REASON} characters")
    return matcher, value, start, end, reason


def create(store: Store, *, now: datetime, tz: ZoneInfo, created_by: str | None = None, **fields: Any) -> Silence:
    """Validate (see ``build``) and store a silence. Raises SilenceError."""
    matcher, value, start, end, reason = build(now=now, tz=tz, **fields)
    silence_id = "sil_" + secrets.token_hex(6)
    store.silences.add(silence_id, matcher, value, start, end, reason, start, created_by)
    return Silence(silence_id, matcher, value, start, end, reason, start, created_by)


def active(store: Store, now: datetime | float) -> list[Silence]:
    """Silences not yet ended or removed at ``now``, oldest first."""
    return [_silence(r) for r in store.silences.active(_ts(now))]


def remove(store: Store, silence_id: str, now: datetime | float) -> bool:
    """End a silence now; False when there is no such silence in force."""
    return store.silences.end(silence_id, _ts(now))


def pick(silences: Iterable[Silence], *, source: str | None, rule_id: str | None, to: str | None,
         at: float) -> str | None:
    """The id of the first silence (oldest first) that holds back this notification at ``at``."""
    for s in silences:
        if s.applies(source=source, rule_id=rule_id, to=to, at=at):
            return s.silence_id
    return None


def _e164(number: str | None) -> str | None:
    if not number:
        return None
    try:
        return phones.normalize(number)
    except ValueError:
        return number


def hold_back(store: Store, trigger: dict, rows: list, now: float) -> int:
    """Mark the Notifications an active silence holds back: status 'silenced' and its
    ``silence_id``. Returns how many. A policy of intake (alertd/dispatch/intake.py).

    A deferred row (``send_at`` later) is matched at its send time: a silence
    that will be over by then does not hold it back.
    """
    silences = active(store, now)
    if not silences:
        return 0
    held = 0
    for row in rows:
        if row.status != "queued" or not row.to:
            continue
        at = max(now, row.send_at or now)
        silence_id = pick(silences, source=trigger.get("source"), rule_id=trigger.get("rule_id"),
                          to=_e164(row.to), at=at)
        if silence_id is not None:
            row.status, row.silence_id = "silenced", silence_id
            held += 1
            log.info("notification silenced", silence_id=silence_id, to=row.to,
                     rule_id=trigger.get("rule_id"), source=trigger.get("source"))
    return held
