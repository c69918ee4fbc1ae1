"""Reaching whoever is on call, on PostgreSQL: an inbound call whose webhook reaches two
nodes at once is one call, and two nodes due to send the same shift's notice send it once."""
from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import timezone

from alertd.clock import FakeClock
from conftest import twilio_overrides
from test_inbound_calls import CALLER_ID, ROTATIONS as CALL_ROTATIONS, call_in, dialled, inbound, log_row
from test_inbound_calls import PRIMARY as CALL_PRIMARY
from test_shift_notices import ROTATIONS, ny, sent


def test_an_inbound_call_whose_webhook_reaches_two_nodes_at_once_is_one_call(pg_url, make_daemon, fake_twilio):
    clock = FakeClock(ny(2026, 1, 7, 12, 0).astimezone(timezone.utc))  # a Wednesday: oncall_primary's week
    overrides = twilio_overrides(fake_twilio)
    overrides["provider"]["numbers"] = [CALLER_ID]
    nodes = [make_daemon({**overrides, "database": pg_url, "cluster": {"node_id": f"web{i}"},
                          "rotations": CALL_ROTATIONS, "inbound": inbound()}, clock=clock) for i in (1, 2)]
    for d in nodes:
        d.fake = fake_twilio
    sid = "CA" + "0" * 32
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # Twilio repeating its webhook, to the other node
        answers = list(pool.map(lambda d: call_in(d, sid), nodes))
    assert [code for code, _ in answers] == [200, 200]
    assert [dialled(twiml)[0] for _, twiml in answers] == [[CALL_PRIMARY], [CALL_PRIMARY]]
    assert log_row(nodes[0])["type"] == "inbound"
    logs = nodes[0].api.get(nodes[0].url("/api/v1/calls/logs"), timeout=10).json()["logs"]
    assert len(logs) == 1  # one call, one row of the trigger log


def test_two_nodes_due_to_send_a_shifts_notice_send_it_once(pg_url, make_daemon, tmp_path):
    clock = FakeClock(ny(2026, 1, 7, 6, 0).astimezone(timezone.utc))  # no notice due yet
    nodes = []
    for i in (1, 2):
        folder = tmp_path / f"web{i}"
        folder.mkdir()
        d = make_daemon({"rotations": ROTATIONS, "database": pg_url, "cluster": {"node_id": f"web{i}"}},
                        clock=clock, folder=folder)
        d.pause_worker()  # the test runs each node's timer itself, both at once
        nodes.append(d)
    clock.set(ny(2026, 1, 7, 8, 0).astimezone(timezone.utc))  # an hour before Wednesday's shift

    async def both():
        return await asyncio.gather(*(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            d.daemon.shift_notices.run_due(), d.daemon.loop)) for d in nodes))
    assert sorted(asyncio.run(both())) == [0, 1]
    assert len(sent(nodes[0]) + sent(nodes[1])) == 1
    assert len(nodes[0].run(nodes[0].daemon.store.reach.shift_notices("ops"))) == 1
