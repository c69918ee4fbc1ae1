"""kill -9 in the middle of a burst: nothing answered ok is lost, nothing is sent
twice except a send whose answer from the provider died with the process.

A real `alertd run` (provider twilio, pointed at FakeTwilio in this process)
takes BURST notify requests from CLIENTS concurrent clients. When KILL_AT of
them have been answered ok, the daemon gets SIGKILL; the clients keep going
(a refused connection is tried again, as an integration would), a new daemon
starts on the same database and port, and the test waits for the outbox to
drain. Deliveries are counted at the fake by the log_id in each created
call's StatusCallback URL.
"""
from __future__ import annotations

import asyncio
import collections
import json
import time
import urllib.parse

import aiohttp

from conftest import twilio_overrides
from daemon_process import DaemonProcess, unlimited

BURST = 600
CLIENTS = 24
KILL_AT = 250  # answered ok before the kill
RETRY_FOR = 30.0  # seconds a client keeps trying a refused connection
# a restarted daemon sends nothing this soon after its spawn: importing alertd alone takes half a second
GRACE = 0.25


def log_id_of(request) -> int:
    query = urllib.parse.urlparse(request.form["StatusCallback"]).query
    return int(urllib.parse.parse_qs(query)["log_id"][0])


async def burst(daemon: DaemonProcess, on_kill) -> dict:
    """Send BURST requests; calls on_kill() once KILL_AT are answered ok. Returns what each got."""
    answers = {"ok": {}, "not_ok": collections.Counter(), "lost": 0, "refused_retries": 0}
    next_index = iter(range(BURST))
    killed = asyncio.Event()
    url = daemon.base_url + "/api/v1/calls/notify"

    async def client(session: aiohttp.ClientSession) -> None:
        for i in next_index:
            body = {"to": f"+1555{2000000 + i:07d}", "message": f"Crash burst {i}", "source": "crash"}
            deadline = time.monotonic() + RETRY_FOR
            while True:
                try:
                    async with session.post(url, json=body, headers=daemon.headers) as r:
                        data = await r.json(content_type=None)
                    break
                except aiohttp.ClientConnectorError:  # refused: the daemon is down; try again
                    assert time.monotonic() < deadline, "the daemon did not come back"
                    answers["refused_retries"] += 1
                    await asyncio.sleep(0.05)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    data = None  # the connection died mid-request: no answer (it may still be stored)
                    break
            if data is None:
                answers["lost"] += 1
            elif r.status == 200 and data.get("ok") is True:
                (call,) = data["calls"]
                answers["ok"][call["log_id"]] = call["status"]
                if len(answers["ok"]) >= KILL_AT and not killed.is_set():
                    killed.set()
                    on_kill()
            else:
                answers["not_ok"][r.status] += 1

    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:
        await asyncio.wait_for(asyncio.gather(*(client(session) for _ in range(CLIENTS))), 120)
    return answers


def test_kill_9_mid_burst_loses_nothing_answered_and_repeats_only_sends_in_flight(tmp_path, fake_twilio, capsys):
    fake_twilio.latency = 0.02  # so provider requests are in flight when the kill lands
    daemon = DaemonProcess(tmp_path, unlimited(twilio_overrides(fake_twilio))).start()
    kill = {}

    def on_kill() -> None:
        kill["at"] = time.monotonic()  # FakeRequest.time is time.monotonic() in this process too
        daemon.kill9()
        kill["snapshot"] = {r["log_id"]: r["call_sid"] for r in daemon.query("SELECT log_id, call_sid FROM logs")}
        daemon.start(wait=False)  # same database, same port; the clients retry until it listens

    try:
        answers = asyncio.run(burst(daemon, on_kill))
        assert "at" in kill, f"fewer than {KILL_AT} requests were answered ok: {answers['not_ok']}"
        daemon.wait_ready()
        drain = daemon.wait_drained(timeout=30)
        rows = {r["log_id"]: dict(r) for r in daemon.query(
            "SELECT log_id, status, call_sid, error FROM logs WHERE source = 'crash'")}
        states = collections.Counter(r["state"] for r in daemon.query("SELECT state FROM outbox"))
    finally:
        daemon.stop()

    created = [r for r in fake_twilio.requests if r.sid]
    delivered = collections.Counter(log_id_of(r) for r in created)
    # the provider accepted it, but its answer never reached the log row: the process died holding it
    unrecorded = {log_id_of(r): r for r in created if rows.get(log_id_of(r), {}).get("call_sid") != r.sid}
    in_flight_at_kill = set(unrecorded)
    duplicates = {log_id: n for log_id, n in delivered.items() if n > 1}
    ok = answers["ok"]

    with capsys.disabled():
        print(f"\n[reliability] crash: burst {BURST} notify requests from {CLIENTS} clients, kill -9 after"
              f" {KILL_AT} ok; answered ok {len(ok)} (initiated {sum(s == 'initiated' for s in ok.values())}),"
              f" not ok {dict(answers['not_ok'])}, answer lost in the kill {answers['lost']};"
              f" log rows stored {len(rows)}; delivered {len(delivered)} log ids ({len(created)} calls);"
              f" duplicates {len(duplicates)}; in flight at kill {len(in_flight_at_kill)};"
              f" outbox {dict(states)}; drained {drain:.1f} s after the last answer")

    assert len(ok) + answers["lost"] + sum(answers["not_ok"].values()) == BURST
    assert not answers["not_ok"], answers["not_ok"]
    missing = sorted(set(ok) - set(delivered))
    assert not missing, f"answered ok but never delivered: {missing[:20]}"
    assert set(delivered) <= set(rows), "the fake got calls for log ids alertd never stored"
    assert set(rows) <= set(delivered), f"stored but never delivered: {sorted(set(rows) - set(delivered))[:20]}"
    assert all(r["status"] == "initiated" for r in rows.values()), collections.Counter(
        r["status"] for r in rows.values())
    assert set(states) == {"sent"}, states
    # a repeat is allowed only for a send whose answer was lost in the kill
    assert set(duplicates) <= in_flight_at_kill, {k: duplicates[k] for k in set(duplicates) - in_flight_at_kill}
    assert all(n == 2 for n in duplicates.values()), duplicates
    recorded_at = {log_id_of(r): r.time for r in created if rows[log_id_of(r)]["call_sid"] == r.sid}
    for log_id, request in unrecorded.items():
        # sent by the daemon that died: before the resend, and before the new daemon could send anything
        # (the fake's loop may take a moment to handle what the dead one had written to the socket)
        assert request.time < recorded_at[log_id], f"log {log_id}: the unrecorded send came after the recorded one"
        assert request.time < kill["at"] + GRACE, f"log {log_id}: a sid accepted after the kill was never recorded"
        assert kill["snapshot"].get(log_id) is None, json.dumps(rows[log_id])
