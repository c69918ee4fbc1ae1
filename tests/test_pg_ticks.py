"""Schedule ticks across a leader handover: every tick fires once, late when no node led,
none twice; against a real PostgreSQL, with time moved by the test."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg

from alertd.rules.models import Rule
from alertd.sources.ticks import GRACE, aligned_trigger, latest_tick, missed_ticks, ticks_between
from alertd.store.postgres import cluster, migrate

START = datetime(2026, 12, 3, 18, 0, 0, tzinfo=timezone.utc)


def rule(**schedule) -> Rule:
    return Rule.model_validate({"id": "heartbeat", "source": {"schedule": schedule},
                                "notify": {"to": ["+15551230001"], "message": "tick"}})


def test_an_interval_lies_on_the_same_grid_on_every_node():
    first, second = aligned_trigger(rule(every="10s"), "UTC"), aligned_trigger(rule(every="10s"), "UTC")
    now = START + timedelta(seconds=3.7)
    assert latest_tick(first, now) == latest_tick(second, now) == START
    assert ticks_between(first, START, START + timedelta(seconds=30)) == [
        START + timedelta(seconds=s) for s in (10, 20, 30)]


def test_cron_ticks_and_how_late_a_missed_one_may_still_fire():
    trigger = aligned_trigger(rule(cron="*/1 * * * *"), "America/New_York")
    now = START + timedelta(minutes=3, seconds=10)
    assert latest_tick(trigger, now) == START + timedelta(minutes=3)
    assert latest_tick(trigger, START + timedelta(minutes=3, seconds=GRACE + 1)) is None  # too late
    assert missed_ticks(trigger, START, now) == [START + timedelta(minutes=3)]  # the older ones are past the grace


def test_a_two_second_schedule_fires_every_tick_once_across_a_handover(pg_url):
    """Leader a fires ticks, dies; for 11 s nobody leads; b takes over, fires the ticks
    missed meanwhile once each (late), then the next ones on time. A tick that a frozen
    a tries to fire after the handover is refused."""
    trigger = aligned_trigger(rule(every="2s"), "UTC")
    epoch = START.timestamp()
    fired: list[tuple[float, str]] = []

    async def fire(conn, node: str, scheduled: datetime, now: datetime) -> None:
        if await cluster.claim_tick(conn, "heartbeat", scheduled.timestamp(), node, at=now.timestamp()):
            fired.append((scheduled.timestamp() - epoch, node))

    async def body():
        a, b = await asyncpg.connect(pg_url), await asyncpg.connect(pg_url)
        try:
            await migrate(a)
            at = lambda s: START + timedelta(seconds=s)  # noqa: E731
            for s in range(0, 9):  # a leads from 0 s, renewing, and fires each tick as it falls due
                await cluster.acquire(a, "a", 10, at=at(s).timestamp())
                if s % 2 == 0:
                    await fire(a, "a", latest_tick(trigger, at(s)), at(s))
            # a dies at 8 s: its lease runs out at 18 s; b takes over at 19 s
            assert await cluster.acquire(b, "b", 10, at=at(19).timestamp())
            last = await cluster.last_tick(b, "heartbeat")
            for scheduled in missed_ticks(trigger, datetime.fromtimestamp(last, timezone.utc), at(19)):
                await fire(b, "b", scheduled, at(19))
            await fire(a, "a", at(20), at(20))  # a, frozen past its lease, wakes and tries
            for s in (20, 22, 24):
                await fire(b, "b", latest_tick(trigger, at(s)), at(s))
                await fire(b, "b", latest_tick(trigger, at(s)), at(s + 0.5))  # a second run of the same tick
        finally:
            await a.close()
            await b.close()
    asyncio.run(body())
    assert [s for s, _ in fired] == list(range(0, 25, 2))  # every tick, once each, in order
    assert {s: n for s, n in fired} == {**{s: "a" for s in (0, 2, 4, 6, 8)}, **{s: "b" for s in range(10, 25, 2)}}
