"""Failover: Twilio first (a FakeTwilio, or a port nobody listens on), Telnyx
second (FakeTelnyx); each over real sockets through the real clients.

A failure another provider may avoid goes to the next one within the same
request; a refusal of the recipient does not; a circuit opens after
repeated failures and lets one probe through after its cool-down (FakeClock).
Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import pytest
import requests

from alertd.clock import FakeClock
from conftest import ACCOUNT_SID, AUTH_TOKEN, both_backends
from fake_telnyx import FakeTelnyx
from local_http import refused_url
from provider_steps import notify, row

TO = "+15551230001"
MAIN_FROM, TX_FROM = "+15550000001", "+15550000003"

pytestmark = both_backends


@pytest.fixture
def telnyx():
    with FakeTelnyx() as fake:
        yield fake


def providers(main_url: str, telnyx: FakeTelnyx, *, timeout: str = "5s", **routing) -> dict:
    return {"providers": [
        {"name": "main", "kind": "twilio", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
         "api_base_url": main_url, "numbers": [MAIN_FROM], "timeout": timeout},
        {"name": "tx", "kind": "telnyx", "api_key": telnyx.api_key, "public_key": telnyx.public_key,
         "application_id": telnyx.application_id, "api_base_url": telnyx.base_url, "numbers": [TX_FROM],
         "timeout": "5s"}],
        "routing": {"circuit_failures": 2, "circuit_cooldown": "30s", **routing}}


def metric(d, name: str) -> float:
    text = requests.get(d.url("/metrics"), timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


def test_a_refused_connection_sends_the_same_attempt_through_the_next_provider(make_daemon, telnyx, capsys):
    from alertd import cli

    d = make_daemon(providers(refused_url(), telnyx))
    sent = notify(d, TO, gather=True)
    assert sent["status"] == "initiated"  # in the same request, not after a backoff
    (call,) = telnyx.wait_for(1, "call")
    assert call.body["From"] == TX_FROM  # the backup's own number, not main's
    got = row(d, sent["log_id"])
    assert got["provider"] == "tx" and got["call_sid"] == call.sid and got["error"] is None
    capsys.readouterr()
    assert cli.main(["log", "-c", str(d.config_path)]) == 0
    header, line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(("   LOG", "     1"))]
    assert header.endswith("SOURCE  PROVIDER") and line.endswith("  tx")


@pytest.mark.parametrize("outcome", [("http", 503), ("http", 401), ("http", 429, 30)])
def test_503_401_and_a_long_retry_after_fail_over(make_daemon, fake_twilio, telnyx, outcome):
    fake_twilio.script(TO, [outcome])
    d = make_daemon(providers(fake_twilio.base_url, telnyx))
    sent = notify(d, TO, action_type="sms")
    assert sent["status"] == "initiated"
    assert [r.status for r in fake_twilio.requests] == [outcome[1]]
    assert len(telnyx.wait_for(1, "sms")) == 1 and row(d, sent["log_id"])["sms_provider"] == "tx"


def test_a_short_retry_after_is_waited_out_on_the_same_provider(make_daemon, fake_twilio, telnyx):
    fake_twilio.script(TO, [("http", 429, 1)])
    d = make_daemon(providers(fake_twilio.base_url, telnyx))
    assert notify(d, TO, action_type="sms")["status"] == "queued"
    fake_twilio.wait_for(1, "sms")  # the worker's retry, after Retry-After, through main again
    assert telnyx.requests == []


def test_a_timeout_fails_over_and_is_counted_as_a_possible_double(make_daemon, fake_twilio, telnyx):
    # main answers after 60 s, its timeout is 2 s: the relation holds on any machine
    fake_twilio.script(TO, [("timeout", 60)])
    d = make_daemon(providers(fake_twilio.base_url, telnyx, timeout="2s"))
    sent = notify(d, TO)
    assert sent["status"] == "initiated" and row(d, sent["log_id"])["provider"] == "tx"
    assert d.daemon.router.doubles == 1
    assert metric(d, "alertd_provider_failover_after_timeout_total") == 1.0


def test_a_refused_number_is_not_failed_over(make_daemon, fake_twilio, telnyx):
    fake_twilio.permanent(TO, 21211)
    d = make_daemon(providers(fake_twilio.base_url, telnyx))
    sent = notify(d, TO, expect=400)
    assert sent["status"] == "failed" and sent["error_code"] == 21211
    assert telnyx.requests == []
    assert d.daemon.router.by_name["main"].breaker.state == "closed"


def test_the_circuit_opens_after_repeated_failures_then_lets_one_probe_through(make_daemon, fake_twilio, telnyx):
    clock = FakeClock()
    fake_twilio.script(TO, [("http", 503), ("http", 503)])
    d = make_daemon(providers(fake_twilio.base_url, telnyx), clock=clock)
    for _ in range(2):
        assert notify(d, TO, action_type="sms")["status"] == "initiated"
    health = requests.get(d.url("/healthz"), timeout=10).json()
    assert [(p["name"], p["circuit"]) for p in health["providers"]] == [("main", "open"), ("tx", "closed")]
    assert 'alertd_provider_circuit{provider="main",state="open"} 1.0' in requests.get(d.url("/metrics")).text
    # open: straight to the backup, main is not asked
    notify(d, TO, action_type="sms")
    assert len(fake_twilio.requests) == 2 and len(telnyx.wait_for(3, "sms")) == 3
    clock.advance(31)  # cool-down over: one probe; main answers again, the circuit closes
    notify(d, TO, action_type="sms")
    assert len(fake_twilio.messages) == 1
    health = requests.get(d.url("/healthz"), timeout=10).json()
    assert health["providers"][0]["circuit"] == "closed" and health["providers"][0]["failures"] == 2


def test_a_failed_probe_opens_the_circuit_again(make_daemon, fake_twilio, telnyx):
    clock = FakeClock()
    fake_twilio.script(TO, [("http", 503)] * 3)
    d = make_daemon(providers(fake_twilio.base_url, telnyx), clock=clock)
    for _ in range(2):
        notify(d, TO, action_type="sms")
    clock.advance(31)
    notify(d, TO, action_type="sms")  # the probe fails: over to tx, and main open again
    assert len(fake_twilio.requests) == 3
    assert d.daemon.router.by_name["main"].breaker.state == "open"
    notify(d, TO, action_type="sms")
    assert len(fake_twilio.requests) == 3 and len(telnyx.wait_for(4, "sms")) == 4


RATE = {"circuit_failures": 100, "circuit_failure_rate": 0.5, "circuit_min_requests": 4, "circuit_window": "60s"}


def test_the_circuit_opens_when_half_the_requests_in_the_window_fail_though_never_twice_in_a_row(
        make_daemon, fake_twilio, telnyx):
    fake_twilio.script(TO, [("ok",), ("http", 503), ("ok",), ("http", 503)])
    d = make_daemon(providers(fake_twilio.base_url, telnyx, **RATE), clock=FakeClock())
    for _ in range(4):
        notify(d, TO, action_type="sms")
    assert d.daemon.router.by_name["main"].breaker.state == "open"
    notify(d, TO, action_type="sms")  # straight to the backup: main is not asked
    assert len(fake_twilio.requests) == 4 and len(telnyx.wait_for(3, "sms")) == 3


def test_failures_older_than_the_window_do_not_count_toward_the_rate(make_daemon, fake_twilio, telnyx):
    clock = FakeClock()
    fake_twilio.script(TO, [("http", 503), ("http", 503), ("ok",), ("ok",), ("http", 503)])
    d = make_daemon(providers(fake_twilio.base_url, telnyx, **RATE), clock=clock)
    for _ in range(2):
        notify(d, TO, action_type="sms")
    clock.advance(61)
    for _ in range(3):  # 1 failure in 3 requests within the window: not over the rate, not 4 requests
        notify(d, TO, action_type="sms")
    assert d.daemon.router.by_name["main"].breaker.state == "closed"
    notify(d, TO, action_type="sms")
    assert len(fake_twilio.requests) == 6  # main is still asked


def test_a_press_of_one_through_the_backup_acknowledges_the_whole_trigger(make_daemon, telnyx):
    d = make_daemon(providers(refused_url(), telnyx))
    r = d.notify({"to": [TO, "+15551230002"], "message": "Freezer warm", "gather": True})
    assert r.status_code == 200, r.text
    calls = telnyx.wait_for(2, "call")
    assert telnyx.press(calls[0].sid, "1")[0] == 200
    assert all(row(d, c["log_id"])["acknowledged"] for c in r.json()["calls"])


def test_routing_sends_a_prefix_to_its_own_provider_first(make_daemon, fake_twilio, telnyx):
    d = make_daemon(providers(fake_twilio.base_url, telnyx, by_prefix={"+44": ["tx", "main"]}))
    notify(d, "+447700900123", action_type="sms")
    notify(d, TO, action_type="sms")
    assert [m.body["to"] for m in telnyx.wait_for(1, "sms")] == ["+447700900123"]
    assert [m.form["To"] for m in fake_twilio.wait_for(1, "sms")] == [TO]


def test_the_dead_mans_switch_waits_until_every_provider_fails(make_daemon, telnyx):
    d = make_daemon(providers(refused_url(), telnyx))
    notify(d, TO)
    assert d.daemon.attempts.health.failing_since is None  # one provider down is not alertd down


def test_the_dead_mans_switch_fires_when_every_provider_fails_and_tries_each(make_daemon, telnyx):
    clock = FakeClock()
    stuck = "+15551239999"
    telnyx.script(stuck, [("http", 503)] * 20)
    overrides = providers(refused_url(), telnyx)
    overrides["deadman"] = {"to": "manager", "after": "10m", "action_type": "sms"}
    d = make_daemon(overrides, clock=clock)
    d.pause_worker()
    assert notify(d, stuck, action_type="sms")["status"] == "queued"  # main refused, tx 503: both failing
    assert d.daemon.attempts.health.failing_since is not None
    clock.advance(601)
    assert d.run(d.daemon.deadman.run_due()) == 1
    # main still refuses; the warning to the manager goes out through tx
    (warning,) = [m for m in telnyx.of_kind("sms") if m.body["to"] == TO]
    assert "no call or SMS has gone out" in warning.body["text"]
    logs = d.api.get(d.url("/api/v1/calls/logs"), params={"source": "alertd:deadman"}, timeout=10).json()["logs"]
    assert [(r["sms_sid"], r["provider"]) for r in logs] == [(warning.sid, "tx")]  # its row names the carrier


def test_providers_test_sends_through_the_named_provider_only_and_logs_each_send(tmp_path, telnyx, capsys, backend):
    import json

    from alertd import cli
    from conftest import write_config

    on = {"database": backend.database} if backend.postgres else {}
    path = write_config(tmp_path, 8080, {**providers(refused_url(), telnyx), **on})
    assert cli.main(["providers", "test", "tx", "--to", "5551230001", "-c", str(path)]) == 0
    assert "tx: sms to +15551230001 from +15550000003 accepted" in capsys.readouterr().out
    (msg,) = telnyx.wait_for(1, "sms")
    assert msg.body["text"].startswith("alertd: a test")
    # its status callback carries the row's id: it lands on the logged test while the daemon runs
    assert "log_id=1&channel=sms" in msg.body["webhook_url"]
    assert cli.main(["providers", "test", "main", "--to", TO, "-c", str(path)]) == 1
    assert "main: sms to +15551230001 failed (transient" in capsys.readouterr().err
    assert cli.main(["log", "--json", "-c", str(path)]) == 0
    failed, sent = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (sent["source"], sent["status"], sent["sms_sid"], sent["provider"]) == (
        "alertd:providers-test", "initiated", msg.sid, "tx")
    assert (failed["source"], failed["status"], failed["provider"]) == ("alertd:providers-test", "failed", "main")
    assert failed["error"]["message"]


def test_the_dashboard_shows_each_providers_circuit_and_the_trigger_page_the_carrier(make_daemon, telnyx):
    from test_ui_pages import logged_in

    d, s, _ = logged_in(make_daemon, providers(refused_url(), telnyx, circuit_failures=1))
    trigger_id = row(d, notify(d, TO)["log_id"])["trigger_id"]
    page = s.get(d.url("/ui/glance"), timeout=5).text
    assert ('<tr data-provider="main"><td data-label="Provider">main</td><td data-label="Kind">twilio</td>'
            '<td data-label="Circuit" data-circuit="open">') in page
    assert ('<tr data-provider="tx"><td data-label="Provider">tx</td><td data-label="Kind">telnyx</td>'
            '<td data-label="Circuit" data-circuit="closed">') in page
    trigger = s.get(d.url(f"/ui/triggers/{trigger_id}"), timeout=5)
    assert trigger.status_code == 200 and ", via tx" in trigger.text


def test_a_callback_body_far_larger_than_any_providers_is_refused_unread(make_daemon, telnyx):
    d = make_daemon(providers(refused_url(), telnyx))
    r = requests.post(d.url("/providers/tx/status?log_id=1&channel=call"), data=b"x" * (65 * 1024), timeout=10)
    assert r.status_code == 413
    r = requests.post(d.url("/providers/nobody/status?log_id=1"), data=b"x", timeout=10)
    assert r.status_code == 404 and r.json()["ok"] is False
