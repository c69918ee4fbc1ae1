"""Durations as ops people write them: 30s, 5m, 1h, 1d, 1w (and 1h30m)."""
from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(value: str | int | float) -> timedelta:
    """'90s' / '5m' / '1h30m' / 2 (seconds) -> timedelta. Raises ValueError naming the value."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return _timedelta(value, value)
    text = str(value).strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {value!r}: write it like 30s, 5m, 2h, 1d or 1w")
    return _timedelta(total, value)


def _timedelta(seconds: float, value: object) -> timedelta:
    # timedelta stops at 999,999,999 days and overflows past it: that is a bad
    # value, not a crash (an API request with "after": 1e14 answered 500)
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise ValueError(f"invalid duration {value!r}: out of range") from None


def format_duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
