"""Due times on the database's clock: a node whose own clock is an hour off writes retries and
escalation steps due at the right moment for every node, and sends nothing of another node's
early or late. Real PostgreSQL, real daemons over loopback, the real twilio library against
FakeTwilio; the skewed node's machine clock is real time plus an hour (or minus one)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alertd.clock import FakeClock, SyncedClock

HOUR = 3600.0


# --- the measurement --------------------------------------------------------------------

def test_the_offset_is_the_other_clocks_time_less_the_midpoint_of_the_round_trip():
    base = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
    clock, t = SyncedClock(base), base.timestamp()
    assert clock.now() == base.now() and clock.offset == 0.0  # not measured yet: the machine's time
    assert clock.measured(t, t + HOUR + 0.2, t + 0.4)  # the database read an hour later, mid-trip
    assert clock.offset == pytest.approx(HOUR, abs=1e-6) and clock.round_trip == pytest.approx(0.4)
    assert clock.now() == base.now() + timedelta(seconds=HOUR)
    assert clock.timestamp() == pytest.approx(t + HOUR, abs=1e-6)
    # a slow round trip (1.5 s: known only to within 0.75 s) keeps the measurement in force
    assert not clock.measured(t + 10, t + 10.75, t + 11.5)
    assert clock.offset == pytest.approx(HOUR, abs=1e-6)
    # a quick one replaces it, whichever way the clocks moved
    assert clock.measured(t + 20, t + 20.05 - HOUR, t + 20.1)
    assert clock.offset == pytest.approx(-HOUR, abs=1e-6)
    base.advance(30)
    assert clock.now() == base.now() - timedelta(seconds=HOUR)
