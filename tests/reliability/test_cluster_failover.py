"""Three alertd nodes on one PostgreSQL; SIGKILL the leader and one other node mid-burst.

Three real `alertd run` processes share a database and FakeTwilio (in this process).
CLIENTS concurrent clients send BURST notify requests spread over the nodes; once
KILL_AT are answered ok, the leader and one other node get SIGKILL, and every client
whose node died moves to the survivor. Meanwhile a schedule rule fires every 2 s (each
tick texts TICKS_TO) and an escalation step falls due during the handover.

Printed and asserted: answered ok, stored, delivered (each answered-ok log id reaches
the fake), lost (0), duplicates (only sends in flight at the kill), the handover time,
the schedule's ticks across the handover (none twice, none missing), and the
escalation step (once).
"""
from __future__ import annotations

import asyncio
import collections
import time

import aiohttp
import asyncpg
import requests

from alertd.api.auth import generate_key
from alertd.store.postgres.store import PostgresStore
from conftest import twilio_overrides
from daemon_process import DaemonProcess, unlimited
from test_crash import log_id_of

BURST = 1000
CLIENTS = 12
KILL_AT = 400
LEASE = "3s"
TICKS_TO = "+15559990001"
ESCALATE_TO = "+15559990002"
RULES = f"""\
rules:
  - id: heartbeat
    source: {{schedule: {{every: 2s}}}}
    notify: {{to: "{TICKS_TO}", message: "tick", action_type: sms}}
"""


async def make_key(url: str) -> str:
    store = PostgresStore.at(url, "setup", min_size=1, max_size=2)
    await store.open()
    try:
        key, prefix, digest = generate_key()
        await store.keys.create("reliability", prefix, digest, time.time())
        return key
    finally:
        await store.disconnect()


async def query(url: str, sql: str, *args):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def leader_of(nodes) -> DaemonProcess | None:
    for n in nodes:
        try:
            if n.proc.poll() is None and requests.get(n.base_url + "/healthz", timeout=2).json().get("leader"):
                return n
        except requests.RequestException:
            pass
    return None


async def burst(nodes, on_kill) -> dict:
    answers = {"ok": {}, "not_ok": collections.Counter(), "lost": 0}
    next_index = iter(range(BURST))
    alive = list(nodes)
    killed = asyncio.Event()

    async def client(k: int, session: aiohttp.ClientSession) -> None:
        node = nodes[k % len(nodes)]
        for i in next_index:
            if node not in alive:
                node = alive[k % len(alive)]  # its node died: move to a survivor
            body = {"to": f"+1555{3000000 + i:07d}", "message": f"Cluster burst {i}", "source": "cluster"}
            try:
                async with session.post(node.base_url + "/api/v1/calls/notify", json=body,
                                        headers=node.headers) as r:
                    data = await r.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                answers["lost"] += 1  # no answer: the node died under it (the row may be stored)
                continue
            if r.status == 200 and data.get("ok") is True:
                answers["ok"][data["calls"][0]["log_id"]] = data["calls"][0]["status"]
                if len(answers["ok"]) >= KILL_AT and not killed.is_set():
                    killed.set()
                    for dead in on_kill():
                        alive.remove(dead)
            else:
                answers["not_ok"][r.status] += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        await asyncio.wait_for(asyncio.gather(*(client(k, session) for k in range(CLIENTS))), 180)
    return answers


def test_three_nodes_lose_nothing_when_the_leader_and_another_are_killed_mid_burst(
        tmp_path, fake_twilio, pg_url, capsys):
    fake_twilio.latency = 0.02  # provider requests are in flight when the kills land
    key = asyncio.run(make_key(pg_url))
    nodes = []
    for name in ("n1", "n2", "n3"):
        folder = tmp_path / name
        (folder / "rules").mkdir(parents=True)
        (folder / "rules" / "heartbeat.yaml").write_text(RULES)
        nodes.append(DaemonProcess(folder, unlimited({**twilio_overrides(fake_twilio), "database": pg_url,
                                                      "cluster": {"node_id": name, "lease": LEASE}}), key=key))
    kill: dict = {}
    try:
        for n in nodes:
            n.start()
        first_leader = leader_of(nodes)
        assert first_leader is not None
        # an escalation step due 5 s from now: during the handover
        r = requests.post(nodes[0].base_url + "/api/v1/calls/notify", headers=nodes[0].headers, timeout=10, json={
            "to": "+15559990003", "message": "Escalate me",
            "escalate": [{"after": "5s", "to": [ESCALATE_TO], "message": "Escalated", "action_type": "call"}]})
        assert r.status_code == 200, r.text

        def on_kill():
            kill["at"], kill["wall"] = time.monotonic(), time.time()
            other = next(n for n in nodes if n is not first_leader)
            for dead in (first_leader, other):
                dead.kill9()
            kill["survivor"] = next(n for n in nodes if n not in (first_leader, other))
            return [first_leader, other]

        answers = asyncio.run(burst(nodes, on_kill))
        survivor = kill["survivor"]
        while leader_of([survivor]) is None:
            assert time.monotonic() - kill["at"] < 60, "the survivor never took the lead"
            time.sleep(0.1)
        # when the survivor took the lease, by the database's clock (this machine's too)
        (lease,) = asyncio.run(query(pg_url, "SELECT node_id, acquired_at FROM cluster_leases"))
        assert lease["node_id"] == survivor.config_path.parent.name
        handover = lease["acquired_at"] - kill["wall"]
        time.sleep(8)  # ticks and the escalation step go on under the new leader
        deadline = time.monotonic() + 60
        while asyncio.run(query(pg_url, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"))[0][0]:
            assert time.monotonic() < deadline, "the outbox did not drain on the survivor"
            time.sleep(0.2)
        rows = {r["log_id"]: r["call_sid"] for r in asyncio.run(query(
            pg_url, "SELECT log_id, call_sid FROM logs WHERE source = 'cluster'"))}
    finally:
        for n in nodes:
            n.stop()
    # the ticks and their texts once every node has stopped: read while the survivor still ran, the
    # fake could see the text of a tick fired after the read (CI saw 10 texts for 9 recorded ticks)
    ticks = [(r["scheduled_at"], r["node_id"]) for r in asyncio.run(query(
        pg_url, "SELECT scheduled_at, node_id FROM schedule_ticks ORDER BY scheduled_at"))]
    tick_rows = {r["log_id"] for r in asyncio.run(query(
        pg_url, "SELECT log_id FROM logs WHERE to_number = $1", TICKS_TO))}

    created = [r for r in fake_twilio.requests if r.sid and "StatusCallback" in r.form]
    burst_calls = [r for r in created if log_id_of(r) in rows]
    delivered = collections.Counter(log_id_of(r) for r in burst_calls)
    duplicates = {i: n for i, n in delivered.items() if n > 1}
    unrecorded = {log_id_of(r) for r in burst_calls if rows.get(log_id_of(r)) != r.sid}
    ok = answers["ok"]
    lost = sorted(set(ok) - set(delivered))
    tick_sms = [r for r in fake_twilio.requests if r.sid and r.form.get("To") == TICKS_TO]
    escalated = [r for r in fake_twilio.requests if r.sid and r.form.get("To") == ESCALATE_TO]
    steps = [b - a for (a, _), (b, _) in zip(ticks, ticks[1:])]

    with capsys.disabled():
        print(f"\n[reliability] cluster: 3 nodes on PostgreSQL, {BURST} notify requests from {CLIENTS} clients,"
              f" leader and one other SIGKILLed after {KILL_AT} ok; answered ok {len(ok)},"
              f" not ok {dict(answers['not_ok'])}, answers lost in the kill {answers['lost']};"
              f" stored {len(rows)}; delivered {len(delivered)} log ids ({len(burst_calls)} calls); lost {len(lost)};"
              f" duplicates {len(duplicates)} (in flight at the kill {len(unrecorded)});"
              f" handover {handover:.1f} s (lease {LEASE}); schedule ticks {len(ticks)} fired by"
              f" {dict(collections.Counter(n for _, n in ticks))}, {len(tick_sms)} texts"
              f" ({len(tick_sms) - len({log_id_of(r) for r in tick_sms})} sent twice, in flight at the kill), gaps"
              f" {sorted(set(steps))} s; escalation step calls {len(escalated)}")

    assert not lost, f"answered ok but never delivered: {lost[:20]}"
    assert set(ok) <= set(rows)
    assert set(rows) <= set(delivered), "stored but never delivered"
    assert set(duplicates) <= unrecorded and all(n == 2 for n in duplicates.values()), duplicates
    assert set(answers["not_ok"]) <= {503}, answers["not_ok"]
    assert handover < 3 + 5  # cluster.lease plus a few seconds
    assert ticks and set(steps) == {2.0}, steps  # every 2 s, none missing, none twice (the key is unique)
    # each recorded tick stored one text, and each was texted (a text in flight at the kill may go twice:
    # at-least-once), but for one still waiting in the outbox when the last node stopped
    texted = {log_id_of(r) for r in tick_sms}
    assert len(tick_rows) == len(ticks) and texted <= tick_rows and len(tick_rows - texted) <= 1, (ticks, tick_rows,
                                                                                                   texted)
    assert len(tick_sms) - len(ticks) <= 1
    assert len(escalated) == 1
