"""The one place alertd reads the time.

Everything that needs "now" takes a Clock (default: SystemClock) so tests can
inject a FakeClock and step it across retry, escalation and window boundaries
without sleeping. freezegun also works, because SystemClock reads
``datetime.now`` at call time.

Several nodes on PostgreSQL read the database's clock instead (``SyncedClock``):
the node's own clock moved by how far it is from the database's, measured on the
round trips the node makes anyway (alertd/runtime/cluster.py). Every due time a
node writes (a retry's backoff, an escalation step, a deferred send, a heartbeat's
deadline, a silence's end) and every "is it due" it asks is then on the one clock
the leases already run on, so a node whose clock is off sends nothing early or late.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


class SystemClock:
    offset = 0.0  # seconds this clock is ahead of the machine's (SyncedClock moves it)

    def now(self) -> datetime:
        """An aware datetime in UTC."""
        return datetime.now(timezone.utc)

    def timestamp(self) -> float:
        return self.now().timestamp()

    def ahead_of_machine(self) -> timedelta:
        """How far this clock is ahead of the machine's, which a library that reads the time
        itself (APScheduler) sees."""
        return self.now() - datetime.now(timezone.utc)


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


# seconds: a clock further than this from the one it follows (a node's from the database's)
# is worth a warning: its NTP is off
WARN_OFFSET = 1.0


class SyncedClock(SystemClock):
    """``base`` (the machine's clock) plus ``offset``: the time of another clock (the
    database's) this one follows. The offset is 0 until the first ``measured``."""

    # a round trip longer than this (a busy loop, a slow network) measures the offset only
    # to within half of it: it replaces no earlier measurement
    MAX_ROUND_TRIP = 1.0

    def __init__(self, base: SystemClock | None = None):
        self.base = base or SystemClock()
        self.offset = 0.0
        self.round_trip: float | None = None  # of the measurement in force; None before the first

    def now(self) -> datetime:
        return self.base.now() + timedelta(seconds=self.offset)

    def measured(self, sent: float, other: float, received: float) -> bool:
        """One round trip to the other clock: ``sent`` and ``received`` on ``base``
        (timestamps), ``other`` the other clock's reading in between, taken to be at the
        midpoint. Returns whether it became the offset (a slow round trip does not replace
        a measurement already made)."""
        trip = max(0.0, received - sent)
        if self.round_trip is not None and trip > self.MAX_ROUND_TRIP:
            return False
        self.offset, self.round_trip = other - (sent + received) / 2, trip
        return True


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
