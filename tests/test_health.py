"""GET /healthz: ok only while the database answers, the dispatcher loop is
alive and no outbox item has been due for longer than
server.health_max_outbox_age; the rule load state is reported either way."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
import requests

from alertd.clock import FakeClock
from alertd.dispatch.notification import Notification
from conftest import ACCOUNT_SID, AUTH_TOKEN, CALLER_ID
from local_http import refused_url

A = "+15551234567"


def health(d) -> tuple[int, dict]:
    r = requests.get(d.url("/healthz"), timeout=10)  # no key
    return r.status_code, r.json()


def provider_down() -> dict:
    """Twilio at an address where nothing listens: every request fails at once, transiently."""
    return {"provider": {"kind": "twilio", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                         "api_base_url": refused_url(), "numbers": [CALLER_ID], "timeout": "2s"},
            "dispatch": {"max_attempts": 100, "backoff_base": "1s", "backoff_max": "10s"},
            "server": {"health_max_outbox_age": "5m"}}


@pytest.fixture
def down(make_daemon):
    d = make_daemon(provider_down(), clock=FakeClock())
    return d


def test_healthz_is_ok_and_reports_rules_outbox_and_provider(daemon):
    status, body = health(daemon)
    assert status == 200
    assert body == {"ok": True, "rules": {"loaded": 0, "errors": []},
                    "outbox": {"pending": 0, "due": 0, "oldest_due_age_seconds": None},
                    "provider": {"failing_since": None, "failures": 0},
                    "providers": [{"name": "simulator", "kind": "simulator", "circuit": "closed",
                                   "failing_since": None, "consecutive_failures": 0, "requests": 0,
                                   "failures": 0, "latency_ms": None, "last_error": None}]}


def test_healthz_fails_when_the_database_does_not_answer(daemon):
    async def close():
        daemon.daemon.store.conn.close()
    daemon.run(close())
    status, body = health(daemon)
    assert status == 503 and body["ok"] is False
    assert "the database does not answer" in body["problems"]
    assert body["outbox"] is None


def test_healthz_fails_when_the_dispatcher_loop_has_ended(daemon):
    daemon.pause_worker()
    status, body = health(daemon)
    assert status == 503 and body["problems"] == ["the dispatcher task has ended"]


def test_healthz_fails_when_the_dispatcher_loop_stops_turning(daemon):
    daemon.pause_worker()

    async def hang():  # a worker task that is alive but never turns
        daemon.daemon._worker = asyncio.create_task(asyncio.sleep(3600))
        daemon.daemon.dispatcher.last_loop_at = time.monotonic() - 3600
    daemon.run(hang())
    try:
        status, body = health(daemon)
        assert status == 503
        (problem,) = body["problems"]
        assert problem.startswith("the dispatcher loop has not turned for 3600s")
    finally:
        daemon.run(cancel(daemon.daemon._worker))


async def cancel(task):
    task.cancel()


def test_healthz_fails_once_a_due_item_has_waited_longer_than_the_bound(down):
    r = down.notify({"to": A, "message": "x"})
    assert r.status_code == 200 and r.json()["calls"][0]["status"] == "queued"
    status, body = health(down)
    assert status == 200 and body["outbox"] == {"pending": 1, "due": 1, "oldest_due_age_seconds": 0}
    assert body["provider"]["failing_since"] == "2026-01-05T09:00:00.000Z" and body["provider"]["failures"] == 1
    down.clock.advance(300)
    assert health(down)[0] == 200  # exactly the bound is still ok
    down.clock.advance(1)
    status, body = health(down)
    assert status == 503 and body["ok"] is False
    assert body["problems"] == ["the oldest due outbox item has waited 301s (server.health_max_outbox_age: 300s)"]
    assert body["rules"] == {"loaded": 0, "errors": []}


def test_a_send_deferred_to_later_is_not_stuck_until_it_is_due(down):
    now = down.clock.timestamp()
    row = Notification(to=A, type="sms", message="later", params={"from": CALLER_ID}, send_at=now + 3600)
    down.run(down.daemon.submit({"source": "test"}, [row]))
    down.clock.advance(timedelta(minutes=59))
    status, body = health(down)
    assert status == 200 and body["outbox"] == {"pending": 1, "due": 0, "oldest_due_age_seconds": None}
    down.clock.advance(timedelta(minutes=1 + 5))  # due for 5 min: at the bound
    assert health(down)[0] == 200
    down.clock.advance(1)
    status, body = health(down)
    assert status == 503 and body["outbox"]["due"] == 1 and body["outbox"]["oldest_due_age_seconds"] == 301


def test_rule_errors_are_reported_without_failing_health(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bad.yaml").write_text("rules:\n  - id: x\n    source: {webhook: x}\n"
                                                 "    notify: {to: nobody, message: m}\n")
    d = make_daemon()
    status, body = health(d)
    assert status == 200 and body["rules"]["loaded"] == 0
    (error,) = body["rules"]["errors"]
    assert error.startswith("rules/bad.yaml:4:") and "nobody" in error
