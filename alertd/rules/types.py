"""Value types for rule files: durations, cron lines, times, days, names.

Each is an ``Annotated`` type whose validator normalises what people write by
hand (an unquoted ``17:00``, ``mon-fri``, ``5m``) and raises ``problem(...)``:
a ``PydanticCustomError("alertd", ...)`` whose ``ctx`` carries the sentence,
optionally a sub-key (``key``) whose line is the better place to point at,
and a ``hint``. ``alertd.rules.errors`` turns those into file:line messages.
"""
from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from alertd.durations import parse_duration
from alertd.rules.cron import parse_cron


def problem(message: str, *, key: str | None = None, hint: str | None = None) -> PydanticCustomError:
    """A validation error the loader turns into ``file:line: ... message in <key>: hint``."""
    # The text travels in ctx, not in the template, so braces in user input
    # are never taken for format fields.
    return PydanticCustomError("alertd", "{text}", {"text": message, "key": key, "hint": hint})


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- value types -------------------------------------------------------------

def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except (ValueError, TypeError):
        raise problem(f"invalid duration {short(value)}", hint="write it like 30s, 5m, 2h, 1d or 1w") from None


def _positive(value: timedelta) -> timedelta:
    # "every: 0s" would spin the scheduler; a zero repeat would notify each tick
    if value <= timedelta(0):
        raise problem("zero duration", hint="it must be longer than 0s")
    return value


def _cron(value: Any) -> str:
    try:
        parse_cron(value)  # syntax does not depend on the timezone
    except ValueError as exc:
        raise problem(f"invalid cron {short(value)}", hint=str(exc)) from None
    return value


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise problem(f"unknown timezone {short(value)}", hint="use an IANA name like America/Chicago") from None
    return str(value)


def _clock(value: Any) -> time:
    # YAML 1.1 reads an unquoted 17:00 as the base-60 integer 1020 (and 9:30
    # as 570); such numbers can only come from H:MM with H >= 1, so read them
    # back. Anything else must be the string "HH:MM".
    if isinstance(value, int) and not isinstance(value, bool) and 60 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if match:
            hour, minute = int(match.group(1)), int(match.group(2))
            if (hour, minute) == (24, 0):
                return time(0, 0)  # "until: 24:00" is the end of the day
            if hour < 24 and minute < 60:
                return time(hour, minute)
    raise problem(f"invalid time {short(value)}", hint='write it as "HH:MM" in quotes, e.g. "09:00"')


_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_LONG_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_DAY_NUMBER = {n: i for names in (_DAYS, _LONG_DAYS) for i, n in enumerate(names)}


def _days(value: Any) -> tuple[int, ...]:
    """[mon, tue] or "mon-fri" or [mon-fri, sun] -> weekday numbers (Monday = 0)."""
    items = value if isinstance(value, list) else [value]
    days: set[int] = set()
    for item in items:
        text = str(item).strip().lower()
        first, _, last = text.partition("-")
        if first not in _DAY_NUMBER or (last and last not in _DAY_NUMBER):
            raise problem(f"unknown day {short(item)}", hint="use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri")
        a = _DAY_NUMBER[first]
        b = _DAY_NUMBER[last] if last else a
        # a range may wrap the week end: fri-mon is fri, sat, sun, mon
        span = (b - a) % 7
        days.update((a + i) % 7 for i in range(span + 1))
    return tuple(sorted(days))


def _str_list(value: Any) -> Any:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, list):
        # an unquoted phone number is read by YAML as an int
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


def _text(value: Any) -> Any:
    # `when: true` or `dedup_key: 42` arrive as bool/int; they are still text to Jinja
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]
Cron = Annotated[str, BeforeValidator(_cron)]
TimeZoneName = Annotated[str, BeforeValidator(_timezone)]
ClockTime = Annotated[time, BeforeValidator(_clock)]
Days = Annotated[tuple[int, ...], BeforeValidator(_days)]
StrList = Annotated[list[str], BeforeValidator(_str_list)]
Text = Annotated[str, BeforeValidator(_text)]

ActionType = Literal["call", "sms", "both"]
Voice = Literal["alice", "man", "woman"]
Repeat = Annotated[int, Field(ge=1, le=5)]

TPL_ID = re.compile(r"tpl_[0-9a-f]{12}")
RULE_ID = re.compile(r"[a-z0-9_-]+")
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_-]+")


def recipient_kind(entry: str) -> Literal["template", "number", "name"]:
    """How an entry of ``to`` is read: a Jinja2 template, a phone number, or a
    contact/group/rotation name. A number starts with +, a digit or "(".
    """
    if "{{" in entry or "{%" in entry:
        return "template"
    head = entry.strip()[:1]
    if head == "+" or head == "(" or head.isdigit():
        return "number"
    return "name"
