"""The one place alertd reads the time.

Everything that needs "now" takes a Clock (default: SystemClock) so tests can
inject a FakeClock and step it across retry, escalation and window boundaries
without sleeping. freezegun also works, because SystemClock reads
``datetime.now`` at call time.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


class SystemClock:
    def now(self) -> datetime:
        """An aware datetime in UTC."""
        return datetime.now(timezone.utc)

    def timestamp(self) -> float:
        return self.now().timestamp()


class FakeClock(SystemClock):
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as every API and log field shows times."""
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# the latest time shown: a day short of datetime.max, so it converts to any timezone
LATEST = datetime.max.replace(tzinfo=timezone.utc) - timedelta(days=1)
EARLIEST = datetime.min.replace(tzinfo=timezone.utc) + timedelta(days=1)


def from_timestamp(ts: float | None, tz=timezone.utc) -> datetime | None:
    """``ts`` as an aware datetime in ``tz``; a time past year 9999 (or before year 1) is shown
    as the nearest one that can be, so a stored row from an older alertd never breaks a listing."""
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, timezone.utc).astimezone(tz)
    except (OverflowError, ValueError, OSError):
        return (LATEST if ts > 0 else EARLIEST).astimezone(tz)
