"""Heartbeats on PostgreSQL: the checks, pings and flips in the shared database, and two
nodes that take pings for one check and tick its deadline at the same moment."""
from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import timedelta

from alertd.clock import FakeClock
from alertd.store.postgres import DB_NOW
from alertd.store.postgres.store import PostgresStore
from test_heartbeats import T0, UUID, flips_of, ping, texts, tick, write_rules


def node(make_daemon, tmp_path, pg_url: str, name: str, clock: FakeClock):
    folder = tmp_path / name
    folder.mkdir()
    write_rules(folder)
    d = make_daemon({"database": pg_url, "cluster": {"node_id": name}}, clock=clock, folder=folder)
    # the test ticks deadlines itself: the node's own timer, waking on its own, would tick them first
    # (on PostgreSQL a tick awaits the database, so the two could run at once)
    d.run(d.daemon.heartbeats.stop())
    return d


def test_a_check_goes_down_and_up_again_on_postgresql(pg_url, make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = node(make_daemon, tmp_path, pg_url, "web1", clock)
    assert ping(d, UUID).text == "OK"
    clock.advance(timedelta(minutes=71))
    assert tick(d) == 1
    assert texts(d) == ["Backup did not report: no ping in time. Last ping 1h 11m ago."]
    assert ping(d, f"{UUID}/0", "POST", data=b"all good").text == "OK"
    d.wait_until(lambda: len(texts(d)) == 2, what="the resolved text")
    assert texts(d)[1] == "Backup is back."
    assert [f["new"] for f in flips_of(d)] == ["up", "down", "up"]
    # the flip is settled after its notice was handed over (dispatch/heartbeats.py: at least
    # once), in a write of its own: on PostgreSQL that write may still be on its way
    d.wait_until(lambda: d.run(d.daemon.store.heartbeats.owed_flips()) == [], what="no flip owed")


def test_two_nodes_count_every_ping_and_fire_a_deadline_once(pg_url, make_daemon, tmp_path):
    clock = FakeClock(T0)
    a = node(make_daemon, tmp_path, pg_url, "web1", clock)
    b = node(make_daemon, tmp_path, pg_url, "web2", clock)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # pings of one check on both nodes at once
        answers = list(pool.map(lambda i: ping((a, b)[i % 2], UUID).text, range(20)))
    assert answers == ["OK"] * 20
    assert a.run(a.daemon.store.heartbeats.get("nightly-backup"))["n_pings"] == 20
    clock.advance(timedelta(minutes=71))

    async def both():  # each node's timer finds the same deadline passed
        return await asyncio.gather(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_tick(a), a.daemon.loop)),
                                    asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_tick(b), b.daemon.loop)))
    assert sorted(asyncio.run(both())) == [0, 1]
    a.wait_until(lambda: texts(a) + texts(b), what="the down text")
    tick(a), tick(b)  # and notifying again sends nothing more
    assert len(texts(a) + texts(b)) == 1
    assert [f["new"] for f in flips_of(a)] == ["up", "down"]



def test_a_deadline_that_passes_after_the_pinged_node_is_gone_fires_once_on_the_survivor(pg_url, make_daemon,
                                                                                         tmp_path):
    # every node ticks deadlines (each flip is claimed in the database), so losing one, the leader
    # included, leaves no gap: the survivor notices the deadline and notifies once
    clock = FakeClock(T0)
    a = node(make_daemon, tmp_path, pg_url, "web1", clock)
    b = node(make_daemon, tmp_path, pg_url, "web2", clock)
    assert ping(a, UUID).text == "OK"
    a.stop()
    clock.advance(timedelta(minutes=71))
    assert tick(b) == 1
    b.wait_until(lambda: texts(b), what="the down text")
    assert tick(b) == 0
    assert texts(a) == [] and texts(b) == ["Backup did not report: no ping in time. Last ping 1h 11m ago."]
    assert [f["new"] for f in flips_of(b)] == ["up", "down"]

async def _tick(d) -> int:
    flips = await d.daemon.heartbeats.tick()
    await d.daemon.heartbeats.send_owed()
    return flips


def test_an_owed_notice_goes_to_one_node_which_may_try_it_again_at_once(pg_url):
    async def main():
        a, b = (PostgresStore.at(pg_url, name, min_size=1, max_size=2) for name in ("web1", "web2"))
        for s in (a, b):
            await s.open()
        try:
            await a.db.pool.execute("INSERT INTO heartbeat_flips (rule_id, at, old, new, owed) VALUES"
                                    " ('backup', 1, 'up', 'down', 1)")
            (flip,) = await a.heartbeats.owed_flips()
            assert await b.heartbeats.owed_flips() == []  # web1 is notifying it
            assert [f["id"] for f in await a.heartbeats.owed_flips()] == [flip["id"]]  # a refusal: web1 again
            await a.heartbeats.settle(flip["id"])
            assert await a.heartbeats.owed_flips() == [] and await b.heartbeats.owed_flips() == []
        finally:
            for s in (a, b):
                await s.disconnect()
    asyncio.run(main())


def test_a_notice_owed_by_a_node_that_died_before_sending_it_goes_out_from_another(pg_url, make_daemon, tmp_path):
    # web1 flips the check down and claims the notice, then dies before sending it: no flip, ping
    # or start follows, so only web2's timer, looking for owed flips whose claim ran out, finds it
    clock = FakeClock(T0)
    a = node(make_daemon, tmp_path, pg_url, "web1", clock)
    b = node(make_daemon, tmp_path, pg_url, "web2", clock)
    assert ping(a, UUID).text == "OK"
    clock.advance(timedelta(minutes=71))
    assert a.run(a.daemon.heartbeats.tick()) == 1  # flipped, owed, not sent yet
    (flip,) = a.run(a.daemon.store.heartbeats.owed_flips())  # and claimed by web1 for OWED_LEASE
    a.stop()
    # the claim runs out a second from now instead of a minute (the test does not wait a minute)
    b.run(b.daemon.store.db.pool.execute(
        f"UPDATE heartbeat_flips SET claimed_until = {DB_NOW} + 1 WHERE id = $1", flip["id"]))
    assert texts(b) == []

    async def timer(every: float) -> None:  # web2's own timer, looking often
        b.daemon.heartbeats.sweep_every = every
        b.daemon.heartbeats.start()
    b.run(timer(0.2))
    b.wait_until(lambda: texts(b), timeout=10, what="the down text web1 owed")
    assert texts(a) == [] and texts(b) == ["Backup did not report: no ping in time. Last ping 1h 11m ago."]
    b.wait_until(lambda: b.run(b.daemon.store.heartbeats.owed_flips()) == [], what="no flip owed")  # as above
