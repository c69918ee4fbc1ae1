"""Due times on the database's clock: a node whose own clock is an hour off writes retries and
escalation steps due at the right moment for every node, and sends nothing of another node's
early or late. Real PostgreSQL, real daemons over loopback, the real twilio library against
FakeTwilio; the skewed node's machine clock is real time plus an hour (or minus one)."""
from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import requests

from alertd.clock import FakeClock, SyncedClock, SystemClock
from alertd.rules.models import Rule
from alertd.rules.ruleset import RuleSet
from alertd.runtime.cluster import ClusterNode
from alertd.sources.schedule import Scheduler
from alertd.sources.ticks import OnClock, aligned_trigger
from alertd.store.postgres import migrate
from conftest import twilio_overrides

HOUR = 3600.0
A = "+15551234567"
SECONDARY = "+15551230003"  # oncall_secondary in conftest's config
DELAY = 3  # seconds: the retry's Retry-After and the escalation step's `after`


class Skewed(SystemClock):
    """A machine whose clock is ``by`` seconds off real time."""

    def __init__(self, by: float):
        self.by = by

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.by)


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


@pytest.mark.parametrize("skew", [HOUR, -HOUR], ids=["ahead", "behind"])
def test_a_node_measures_its_clock_against_postgresqls_at_start_and_at_each_tick(pg_url, skew):
    async def main():
        pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            clock = SyncedClock(Skewed(skew))
            node = ClusterNode(pool, "web1", 10, clock=clock)
            assert await node.measure_clock() == pytest.approx(-skew, abs=0.5)
            async with pool.acquire() as conn:
                db_now = await conn.fetchval("SELECT extract(epoch from clock_timestamp())::float8")
            assert clock.timestamp() == pytest.approx(db_now, abs=0.5)  # the node now reads the database's time
            clock.offset = 0.0  # as if the machine's clock had jumped: the next tick follows it again
            assert await node.tick()
            assert clock.offset == pytest.approx(-skew, abs=0.5)
        finally:
            await pool.close()
    asyncio.run(main())


# --- several nodes, one of them skewed ----------------------------------------------------

def start(make_daemon, fake, tmp_path, pg_url: str, name: str, skew: float = 0.0):
    (tmp_path / name).mkdir()
    overrides = {"database": pg_url, **twilio_overrides(fake), "cluster": {"node_id": name}}
    d = make_daemon(overrides, folder=tmp_path / name, node_clock=Skewed(skew) if skew else None)
    d.fake = fake
    return d


def called(fake, numbers: list[str], started: float, timeout: float) -> dict[str, float | None]:
    """Seconds from ``started`` (monotonic) to the first call that went out to each number,
    waiting at most ``timeout`` seconds for all of them; None for a number never called."""
    def first(number: str) -> float | None:
        calls = [c for c in fake.calls if c.form["To"] == number]
        return calls[0].time - started if calls else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(first(n) is None for n in numbers):
        time.sleep(0.02)
    return {n: first(n) for n in numbers}


def offset_metric(d) -> float:
    text = requests.get(d.url("/metrics"), timeout=10).text
    return float(re.search(r"^alertd_clock_offset_seconds (\S+)$", text, re.M).group(1))


@pytest.mark.parametrize("skew", [HOUR, -HOUR], ids=["ahead", "behind"])
@pytest.mark.parametrize("writer", ["skewed", "other"], ids=["skewed_writes", "skewed_runs"])
def test_a_retry_and_an_escalation_step_run_on_time_whichever_node_wrote_or_runs_them(
        pg_url, make_daemon, fake_twilio, tmp_path, structlog_output, skew, writer):
    """One node's machine clock is an hour ahead (or behind); the other's is right. The writer
    takes the request (its first call gets a 429 with Retry-After: 3 s, and an escalation step
    is due 3 s after it); its worker is paused, so only the other node can run what is due.
    Both are run about 3 s later: not at once (early), not an hour on (late)."""
    skewed = start(make_daemon, fake_twilio, tmp_path, pg_url, "skewed", skew)
    other = start(make_daemon, fake_twilio, tmp_path, pg_url, "other")
    wrote, runs = (skewed, other) if writer == "skewed" else (other, skewed)
    wrote.pause_worker()
    fake_twilio.script(A, [("http", 429, DELAY)])
    started = time.monotonic()
    r = wrote.notify({"to": A, "message": "Disk full", "escalate": [{"after": f"{DELAY}s", "to": [SECONDARY]}]})
    assert r.status_code == 200 and r.json()["calls"][0]["status"] == "queued", r.text
    # the retry of A's call, and the escalation step's call to the secondary
    got = called(fake_twilio, [A, SECONDARY], started, timeout=DELAY + 7)
    early = {n: round(t, 2) for n, t in got.items() if t is not None and t < DELAY - 1}
    late = [n for n, t in got.items() if t is None]
    assert not early and not late, (f"due {DELAY} s after the request; called that many seconds after it,"
                                    f" early: {early}; not called within {DELAY + 7} s, late: {late}")
    # the node says how far off it is: in its metrics, and in a warning naming it
    assert offset_metric(skewed) == pytest.approx(-skew, abs=0.5)
    assert offset_metric(other) == pytest.approx(0, abs=0.5)
    lines = [json.loads(line) for line in structlog_output.getvalue().splitlines() if line.startswith("{")]
    warned = [(e["node"], e["offset_seconds"]) for e in lines if e.get("event") == "clock off the database's"]
    assert [node for node, _ in warned] == ["skewed"] and warned[0][1] == pytest.approx(-skew, abs=0.5)


# --- schedule ticks -------------------------------------------------------------------------

def rule(**schedule) -> Rule:
    return Rule.model_validate({"id": "tick", "source": {"schedule": schedule},
                                "notify": {"to": ["+15551230001"], "message": "tick"}})


def off_by(seconds: float) -> SyncedClock:
    """The node's clock, measured ``seconds`` behind the database's."""
    clock, t = SyncedClock(), time.time()
    clock.measured(t, t + seconds, t)
    return clock


def test_apscheduler_is_given_the_machines_time_at_which_a_tick_falls_due_on_the_databases_clock():
    clock = off_by(HOUR + 0.5)  # the database's clock is an hour and half a second ahead
    every_10s = OnClock(aligned_trigger(rule(every="10s"), "UTC"), clock)
    machine_now = datetime.now(timezone.utc)
    first = every_10s.get_next_fire_time(None, machine_now)
    tick = every_10s.tick(first)
    assert tick.timestamp() % 10 == 0  # on the grid of the database's clock
    assert first - machine_now <= timedelta(seconds=10) and tick - first == pytest.approx(
        timedelta(seconds=HOUR + 0.5), abs=timedelta(milliseconds=50))
    clock.offset += 0.004  # measured again: a few ms apart. The grid does not drift with it
    second = every_10s.get_next_fire_time(first, first)
    assert every_10s.tick(second) == tick + timedelta(seconds=10)
    assert every_10s.due(second + timedelta(milliseconds=1)) == tick + timedelta(seconds=10)
    assert every_10s.due(second - timedelta(milliseconds=1)) == tick  # fired early: still the first tick
    # a daily cron line: 09:00 in New York on the database's clock is 08:00 on a machine an hour behind
    daily = OnClock(aligned_trigger(rule(cron="0 9 * * *"), "America/New_York"), off_by(HOUR))
    given = daily.get_next_fire_time(None, machine_now)
    local = daily.tick(given).astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)
    assert given.astimezone(ZoneInfo("America/New_York")).hour == 8


class Recorded:
    """The cluster's record of ticks (sources/schedule.py ``Ticks``), in memory: each tick
    claimed with the node's time of the claim."""

    def __init__(self, clock):
        self.clock, self.claims = clock, []

    async def claim(self, rule_id: str, scheduled: datetime) -> bool:
        self.claims.append((scheduled, self.clock.now()))
        return True

    async def last(self, rule_id: str) -> datetime | None:
        return None


@pytest.mark.parametrize("skew", [HOUR + 0.5, -HOUR - 0.5], ids=["ahead", "behind"])
def test_a_leader_whose_clock_is_off_fires_each_tick_at_its_time_on_the_databases_clock(skew):
    clock = off_by(skew)
    ticks, ran = Recorded(clock), []

    async def run_rule(rule_id: str) -> None:
        ran.append(rule_id)

    async def main():
        scheduler = Scheduler(run_rule, ticks, clock)
        scheduler.start()
        try:
            scheduler.sync(RuleSet(rules={"tick": rule(every="1s")}))
            deadline = time.monotonic() + 5
            while len(ticks.claims) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            scheduler.shutdown()
    asyncio.run(main())
    assert len(ticks.claims) >= 2 and len(ran) == len(ticks.claims)
    for scheduled, claimed_at in ticks.claims:
        assert scheduled.timestamp() % 1 == 0
        assert 0 <= (claimed_at - scheduled).total_seconds() < 0.5  # at its time, not an hour or half a second off
