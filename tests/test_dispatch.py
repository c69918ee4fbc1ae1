"""Durable dispatch through the real twilio library against FakeTwilio: retry versus
permanent failure, concurrency, and recovery after a stop or a kill -9.

Tests that drive retries by hand use a FakeClock and stop the background worker
first, so each ``run_once()`` is the only attempt and nothing races it. Every test
runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from alertd.api.auth import generate_key
from alertd.clock import FakeClock
from alertd.dispatch.notification import Notification
from conftest import CALLER_ID, both_backends, free_socket, twilio_overrides, write_config
from conftest import sync

NUMBER = "+15551234567"
OTHER = "+15559876543"

pytestmark = both_backends


def pause_worker(d) -> None:
    """Stop the daemon's background worker; the test drives run_once() itself."""
    async def stop():
        d.daemon.dispatcher.stop()
        await d.daemon._worker
    d.run(stop())


def run_once(d) -> int:
    return d.run(d.daemon.dispatcher.run_once())


def row(d, log_id: int) -> dict:
    return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]


def to_number(fake, number: str, created_only: bool = False) -> list:
    return [r for r in fake.requests if r.form.get("To") == number and (r.sid or not created_only)]


@pytest.fixture
def manual(make_daemon, fake_twilio):
    """A twilio daemon on a FakeClock whose worker is stopped."""
    # the provider timeout stays conftest's 2 s: a request answered at once must not time out on a
    # loaded machine; a scripted timeout costs those 2 s of real time
    d = make_daemon(twilio_overrides(fake_twilio), clock=FakeClock())
    d.fake = fake_twilio
    pause_worker(d)
    return d


# --- transient failures --------------------------------------------------------

@pytest.mark.parametrize("outcome", [("http", 503), ("http", 500), ("http", 429, 1), ("drop",), ("timeout", 6)],
                         ids=["503", "500", "429", "connection-dropped", "timeout"])
def test_a_transient_failure_answers_queued_and_is_retried_until_delivered(manual, outcome):
    fake = manual.fake
    fake.script(NUMBER, [outcome])
    r = manual.notify({"to": NUMBER, "message": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    (call,) = r.json()["calls"]
    assert call["status"] == "queued" and isinstance(call["log_id"], int) and call["call_sid"] is None
    before = row(manual, call["log_id"])
    assert before["status"] == "queued" and before["error"]["message"]

    manual.clock.advance(60)
    assert run_once(manual) == 1
    after = row(manual, call["log_id"])
    assert after["status"] == "initiated" and after["call_sid"].startswith("CA")
    assert after["call_sid"] in [c.sid for c in fake.calls]
    assert run_once(manual) == 0  # nothing left to do
    if outcome[0] != "timeout":  # a timed-out request may still be created by Twilio, later
        assert len(to_number(fake, NUMBER)) == 2 and len(to_number(fake, NUMBER, created_only=True)) == 1


def test_retry_after_is_honoured(manual):
    manual.fake.script(NUMBER, [("http", 429, 30)])
    (call,) = manual.notify({"to": NUMBER, "message": "x"}).json()["calls"]
    assert call["status"] == "queued"
    manual.clock.advance(29.5)
    assert run_once(manual) == 0
    manual.clock.advance(0.5)
    assert run_once(manual) == 1
    assert row(manual, call["log_id"])["status"] == "initiated"


def test_retries_back_off_exponentially_with_jitter(manual):
    """backoff_base 0.05 s, backoff_max 0.2 s (conftest): each delay is in [half, all] of base * 2^n, capped."""
    manual.fake.script(NUMBER, [("http", 503)] * 4)
    (call,) = manual.notify({"to": NUMBER, "message": "x"}).json()["calls"]
    delays = []
    for _ in range(4):
        delay = manual.run(manual.daemon.store.outbox.next_due_at()) - manual.clock.timestamp()
        delays.append(delay)
        manual.clock.advance(delay + 1e-5)  # FakeClock keeps microseconds: do not land a hair short
        assert run_once(manual) == 1
    for n, delay in enumerate(delays):
        ceiling = min(0.2, 0.05 * 2 ** n)
        assert ceiling / 2 - 1e-6 <= delay <= ceiling + 1e-6, delays
    assert row(manual, call["log_id"])["status"] == "initiated"


def test_after_max_attempts_the_row_is_failed(manual):
    manual.fake.script(NUMBER, [("http", 503)] * 5)  # max_attempts is 5 in conftest
    (call,) = manual.notify({"to": NUMBER, "message": "x"}).json()["calls"]
    for _ in range(4):
        manual.clock.advance(60)
        assert run_once(manual) == 1
    got = row(manual, call["log_id"])
    assert got["status"] == "failed" and got["call_sid"] is None
    assert got["error"]["code"] == 20500 and got["error"]["message"].startswith("gave up after 5 attempts: ")
    manual.clock.advance(3600)
    assert run_once(manual) == 0
    assert len(to_number(manual.fake, NUMBER)) == 5


def test_the_background_worker_retries_on_its_own(twilio_daemon):
    twilio_daemon.fake.script(NUMBER, [("http", 503)])
    (call,) = twilio_daemon.notify({"to": NUMBER, "message": "x"}).json()["calls"]
    assert call["status"] == "queued"
    twilio_daemon.wait_until(lambda: row(twilio_daemon, call["log_id"])["status"] == "initiated",
                             timeout=5, what="the worker's retry")
    assert len(to_number(twilio_daemon.fake, NUMBER, created_only=True)) == 1


# --- permanent failures ------------------------------------------------------------

@pytest.mark.parametrize("code, message", [
    (21211, "The 'To' number +15551234567 is not a valid phone number."),
    (21614, "'To' number is not a valid mobile number"),
    (21610, "Attempt to send to unsubscribed recipient"),
])
def test_a_permanent_failure_is_not_retried_and_is_recorded(manual, code, message):
    fake = manual.fake
    fake.permanent(NUMBER, code)
    r = manual.notify({"to": NUMBER, "message": "x", "action_type": "sms"})
    assert r.status_code == 400
    body = r.json()
    assert (body["ok"], body["code"], body["error"]) == (False, 400, message)
    (entry,) = body["calls"]
    assert entry["status"] == "failed" and entry["error_code"] == code and entry["error"] == message
    assert entry["to"] == NUMBER and isinstance(entry["log_id"], int)
    manual.clock.advance(3600)
    assert run_once(manual) == 0
    assert len(fake.requests) == 1
    got = row(manual, entry["log_id"])
    assert got["status"] == "failed" and got["error"] == {"code": code, "message": message}


def test_one_refused_recipient_does_not_fail_the_others(manual):
    manual.fake.permanent(NUMBER, 21211)
    r = manual.notify({"to": [NUMBER, OTHER], "message": "x"})
    assert r.status_code == 200, r.text
    refused, called = r.json()["calls"]
    assert refused["status"] == "failed" and refused["error_code"] == 21211
    assert called["status"] == "initiated" and called["call_sid"] == manual.fake.calls[0].sid


def test_when_every_recipient_is_refused_the_answer_is_400_with_the_calls(manual):
    manual.fake.permanent(NUMBER, 21211)
    manual.fake.permanent(OTHER, 21614)
    r = manual.notify({"to": [NUMBER, OTHER], "message": "x"})
    assert r.status_code == 400
    body = r.json()
    assert body["ok"] is False and body["code"] == 400 and body["error"]
    assert [(c["to"], c["status"], c["error_code"]) for c in body["calls"]] == [
        (NUMBER, "failed", 21211), (OTHER, "failed", 21614)]


def test_wrong_twilio_credentials_are_retried_not_dropped(make_daemon, fake_twilio):
    """A 401 from Twilio is our misconfiguration, not the recipient's fault: keep the item."""
    overrides = twilio_overrides(fake_twilio)
    overrides["provider"]["auth_token"] = "wrong"
    d = make_daemon(overrides, clock=FakeClock())
    pause_worker(d)
    r = d.notify({"to": NUMBER, "message": "x"})
    assert r.status_code == 200 and r.json()["calls"][0]["status"] == "queued"


def test_each_request_and_each_provider_call_is_one_log_line(twilio_daemon, structlog_output):
    twilio_daemon.fake.permanent(OTHER, 21211)
    calls = twilio_daemon.notify({"to": [NUMBER, OTHER], "message": "x"}).json()["calls"]

    def logged():  # the request's line is written once its answer is sent, so it may come after it
        lines = [json.loads(line) for line in structlog_output.getvalue().splitlines()]
        return lines if any(line["event"] == "request" for line in lines) else None
    lines = twilio_daemon.wait_until(logged, what="the request's log line")
    provider = [line for line in lines if line["event"] == "provider request"]
    assert sorted((p["log_id"], p["outcome"]) for p in provider) == [
        (calls[0]["log_id"], "sent"), (calls[1]["log_id"], "failed")]
    assert all(isinstance(p["duration_ms"], float) for p in provider)
    assert next(p for p in provider if p["outcome"] == "failed")["error"]["code"] == 21211
    (request,) = [line for line in lines if line["event"] == "request"]
    assert (request["path"], request["status"]) == ("/api/v1/calls/notify", 200)
    assert request["duration_ms"] >= 0 and request["log_ids"] == [c["log_id"] for c in calls]


# --- concurrency and write-ahead ----------------------------------------------------

def test_the_recipients_of_one_request_are_dispatched_concurrently(twilio_daemon):
    fake = twilio_daemon.fake
    fake.latency = 0.3
    numbers = [f"+1555123{i:04}" for i in range(10)]
    started = time.monotonic()
    r = twilio_daemon.notify({"to": numbers, "message": "x"})
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and all(c["status"] == "initiated" for c in r.json()["calls"])
    assert elapsed < 1.2, f"10 recipients at 0.3 s each took {elapsed:.2f} s: not concurrent"
    arrivals = [c.time for c in fake.calls]
    assert len(arrivals) == 10 and max(arrivals) - min(arrivals) < 0.2


def test_the_intent_is_stored_before_the_provider_is_asked(twilio_daemon):
    fake = twilio_daemon.fake
    fake.latency = 0.5
    answer = {}
    t = threading.Thread(target=lambda: answer.update(r=twilio_daemon.notify({"to": NUMBER, "message": "x"})))
    t.start()
    logs = twilio_daemon.wait_until(
        lambda: twilio_daemon.api.get(twilio_daemon.url("/api/v1/calls/logs"), timeout=10).json()["logs"],
        timeout=2, what="the log row")
    assert fake.calls == []  # the provider has not answered yet, but the row is there
    assert logs[0]["status"] == "queued" and logs[0]["to"] == NUMBER
    t.join(5)
    assert answer["r"].status_code == 200


def test_a_poke_while_the_worker_awaits_the_database_is_not_lost(make_daemon):
    """stop() and new work poke the worker. A poke that comes while its turn awaits the
    database (every query does, on PostgreSQL) ends the wait that follows at once, not a
    second later."""
    d = make_daemon()
    outbox = d.daemon.store.outbox
    original = outbox.next_due_at
    poked_at = []

    async def next_due_at_with_a_stop_meanwhile():
        if not poked_at:
            d.daemon.dispatcher.stop()
            poked_at.append(time.monotonic())
        await asyncio.sleep(0)
        return await original()

    async def stop_meanwhile() -> float:
        outbox.next_due_at = next_due_at_with_a_stop_meanwhile
        await asyncio.wait_for(d.daemon._worker, 5)
        return time.monotonic() - poked_at[0]
    assert d.run(stop_meanwhile()) < 0.5


# --- restarts -------------------------------------------------------------------------

def test_a_queued_delivery_resumes_after_a_restart_exactly_once(make_daemon, fake_twilio, tmp_path):
    first = make_daemon(twilio_overrides(fake_twilio))
    pause_worker(first)
    fake_twilio.script(NUMBER, [("http", 503)])
    (call,) = first.notify({"to": NUMBER, "message": "x"}).json()["calls"]
    assert call["status"] == "queued"
    first.stop()

    second = make_daemon(twilio_overrides(fake_twilio), folder=tmp_path)
    second.wait_until(lambda: row(second, call["log_id"])["status"] == "initiated", what="the resumed delivery")
    assert run_once(second) == 0
    assert len(to_number(fake_twilio, NUMBER, created_only=True)) == 1
    assert row(second, call["log_id"])["call_sid"] == fake_twilio.calls[0].sid


def test_a_delivery_in_flight_when_the_daemon_died_resumes_after_a_restart(make_daemon, fake_twilio, tmp_path):
    """The row and its lease were written, the provider was never asked (the process died)."""
    first = make_daemon(twilio_overrides(fake_twilio))
    pause_worker(first)
    params = {"from": CALLER_ID, "voice": "alice", "repeat": 1, "gather": False, "language": None}
    now = time.time()
    (stored,) = first.run(first.daemon.store.logs.create_trigger(
        {"created_at": now, "source": "crash"},
        [Notification(to=NUMBER, type="both", message="x", params=params)],
        lease_until=now + 120))
    first.stop()

    second = make_daemon(twilio_overrides(fake_twilio), folder=tmp_path)
    second.wait_until(lambda: row(second, stored.log_id)["status"] == "initiated", what="the resumed delivery")
    got = row(second, stored.log_id)
    assert got["call_sid"].startswith("CA") and got["sms_sid"].startswith("SM")
    assert len(fake_twilio.calls) == 1 and len(fake_twilio.messages) == 1


def test_an_accepted_request_survives_kill_9(make_daemon, fake_twilio, tmp_path, backend, backend_store):
    """A real `alertd run` is killed with SIGKILL after answering 'queued'; the next daemon delivers."""
    overrides = {**twilio_overrides(fake_twilio), "dispatch": {"backoff_base": "1h", "backoff_max": "1h"}}
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    # the process reads the config's database: the test's one (alertd.db in tmp_path on SQLite)
    on = {"database": backend.database} if backend.postgres else {}
    config = write_config(tmp_path, port, {**overrides, **on})
    key, prefix, digest = generate_key()
    sync(backend_store.keys.create("ops", prefix, digest, time.time()))
    out = (tmp_path / "alertd.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "alertd", "run", "-c", str(config)], stdout=out, stderr=out)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "alertd.out").read_text()
            time.sleep(0.05)
        fake_twilio.script(NUMBER, [("http", 503)])
        r = requests.post(base + "/api/v1/calls/notify", json={"to": NUMBER, "message": "x"}, timeout=10,
                          headers={"Authorization": f"Bearer {key}"})
        (call,) = r.json()["calls"]
        assert r.status_code == 200 and call["status"] == "queued"
    finally:
        proc.kill()
        proc.wait(10)
        out.close()

    # the retry was scheduled an hour out: the next daemon starts with its clock past that
    later = FakeClock(datetime.now(timezone.utc) + timedelta(hours=2))
    second = make_daemon(overrides, clock=later, folder=tmp_path)
    second.wait_until(lambda: row(second, call["log_id"])["status"] == "initiated", what="the resumed delivery")
    assert len(to_number(fake_twilio, NUMBER)) == 2  # the 503, then the delivery
    assert [c.sid for c in fake_twilio.calls] == [row(second, call["log_id"])["call_sid"]]
