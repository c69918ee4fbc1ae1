"""The dead man's switch: when no provider request has succeeded (and at least
one failed) for `deadman.after`, the contact is told once, through whichever
channel still works; a success re-arms it. FakeTwilio fails on a script,
a FakeClock moves time, and the test runs the switch's timer itself.
The tests of the switch at work run on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from alertd import config as config_mod
from alertd.clock import FakeClock
from conftest import twilio_overrides, write_config
from local_http import refused_url
from test_metrics import scrape, value

A = "+15551234567"
MANAGER = "+15551230001"  # conftest's contact "manager"


def overrides(fake, action_type="sms", **provider) -> dict:
    o = twilio_overrides(fake)
    o["provider"].update(provider)
    o["deadman"] = {"to": "manager", "after": "10m", "action_type": action_type}
    o["dispatch"] = {"max_attempts": 100, "backoff_base": "1s", "backoff_max": "10s"}
    return o


@pytest.fixture
def make(make_daemon, fake_twilio, backend):
    def make(action_type="sms", pause=True, **provider):
        d = make_daemon(overrides(fake_twilio, action_type, **provider), clock=FakeClock())
        d.fake = fake_twilio
        if pause:
            d.pause_worker()
        return d
    return make


def run_due(d) -> int:
    return d.run(d.daemon.deadman.run_due())


def to_manager(d, kind):
    return [r for r in (d.fake.messages if kind == "sms" else d.fake.calls) if r.form["To"] == MANAGER]


DEADMAN_COLUMNS = ("log_id", "trigger_id", "type", "status", "to_number", "call_sid", "sms_sid", "error")


def deadman_rows(d) -> list[dict]:
    rows = d.query(f"SELECT {', '.join(DEADMAN_COLUMNS)} FROM logs WHERE source = 'alertd:deadman' ORDER BY log_id")
    return [dict(zip(DEADMAN_COLUMNS, row)) for row in rows]


def fail_once(d, number=A, outcome=("http", 503)):
    d.fake.script(number, [outcome])
    r = d.notify({"to": number, "message": "Server down"})
    assert r.status_code == 200 and r.json()["calls"][0]["status"] == "queued"


@pytest.mark.parametrize("action_type, channels", [("sms", ["sms"]), ("call", ["call"]), ("both", ["call", "sms"])])
def test_the_contact_is_told_once_when_requests_have_failed_for_after(make, action_type, channels):
    d = make(action_type)
    fail_once(d)
    d.clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
    assert run_due(d) == 0 and not to_manager(d, "sms") and not to_manager(d, "call")
    d.clock.advance(1)
    assert run_due(d) == 1
    for kind in ("call", "sms"):
        assert len(to_manager(d, kind)) == (1 if kind in channels else 0)
    if "sms" in channels:
        body = to_manager(d, "sms")[0].form["Body"]
        assert "no call or SMS has gone out for 10 minutes; 1 provider requests failed" in body
        assert "Alerts are not being delivered." in body
    rows = deadman_rows(d)
    assert sorted(r["type"] for r in rows) == channels and {r["status"] for r in rows} == {"initiated"}
    assert all(r["to_number"] == MANAGER and (r["call_sid"] or r["sms_sid"]) for r in rows)
    # once per spell, however long it lasts
    d.clock.advance(timedelta(hours=3))
    assert run_due(d) == 0
    assert len(to_manager(d, "sms")) + len(to_manager(d, "call")) == len(channels)
    m = scrape(d)
    assert sum(value(m, "alertd_deadman_notifications_total", type=ch, outcome="sent") for ch in channels) == len(
        channels)


def test_a_success_re_arms_it_for_the_next_spell(make):
    d = make()
    fail_once(d)
    d.clock.advance(timedelta(minutes=10))
    assert run_due(d) == 1 and len(to_manager(d, "sms")) == 1
    assert d.run(d.daemon.dispatcher.run_once()) == 1  # the retry goes through: the spell is over
    assert d.daemon.dispatcher.health.failing_since is None
    d.clock.advance(timedelta(hours=1))
    fail_once(d)  # a new spell starts now
    d.clock.advance(timedelta(minutes=9))
    assert run_due(d) == 0
    d.clock.advance(timedelta(minutes=1))
    assert run_due(d) == 1 and len(to_manager(d, "sms")) == 2


def test_when_sms_fails_it_calls_instead(make):
    d = make("sms")
    fail_once(d)
    d.fake.script(MANAGER, [("http", 500)])  # the switch's SMS fails
    d.clock.advance(timedelta(minutes=10))
    assert run_due(d) == 1
    assert not to_manager(d, "sms") and len(to_manager(d, "call")) == 1
    sms, call = deadman_rows(d)
    assert (sms["type"], sms["status"]) == ("sms", "failed") and json.loads(sms["error"])["code"] == 20500
    assert (call["type"], call["status"]) == ("call", "initiated") and call["trigger_id"] == sms["trigger_id"]
    d.clock.advance(timedelta(hours=1))
    assert run_due(d) == 0  # it got through: once


def test_when_no_channel_works_it_logs_loudly_and_tries_again_a_minute_later(make, structlog_output):
    d = make("call", api_base_url=refused_url())  # the provider is unreachable for everyone
    r = d.notify({"to": A, "message": "Server down"})
    assert r.json()["calls"][0]["status"] == "queued"
    d.clock.advance(timedelta(minutes=10))
    assert run_due(d) == 1
    assert [(r["type"], r["status"]) for r in deadman_rows(d)] == [("call", "failed"), ("sms", "failed")]
    lines = [json.loads(line) for line in structlog_output.getvalue().splitlines()]
    critical = [line["event"] for line in lines if line.get("level") == "critical"]
    assert critical[0] == "dead man's switch: provider requests have been failing"
    assert critical[-1] == "dead man's switch: no channel got through; trying again later"
    d.clock.advance(59)
    assert run_due(d) == 0
    d.clock.advance(1)
    assert run_due(d) == 1 and len(deadman_rows(d)) == 4


def test_a_refused_number_does_not_start_a_spell(make):
    d = make()
    d.fake.permanent(A)  # 21211: invalid number, permanent
    r = d.notify({"to": A, "message": "x"})
    assert r.status_code == 400
    assert d.daemon.dispatcher.health.failing_since is None
    d.clock.advance(timedelta(hours=1))
    assert run_due(d) == 0 and not d.fake.messages


def test_the_running_worker_fires_it(make):
    d = make(pause=False)
    d.fake.script(A, [("http", 503)] * 1000)  # every retry fails too
    d.notify({"to": A, "message": "Server down"})
    d.clock.advance(timedelta(minutes=10))
    d.daemon.dispatcher.poke()
    (sms,) = d.fake.wait_for(1, "sms")
    assert sms.form["To"] == MANAGER


def test_off_unless_configured(make_daemon, fake_twilio):
    d = make_daemon(twilio_overrides(fake_twilio))
    assert d.daemon.deadman is None and d.daemon.config.deadman is None


@pytest.mark.parametrize("deadman, error", [
    ({"to": "ownr"}, "deadman.to: unknown contact 'ownr' (a contact's name or a number like +15551230001)"),
    ({"to": "manager", "after": "30s"}, "deadman.after: must be at least 1m (write it like 10m)"),
    ({"to": "manager", "action_type": "fax"}, "deadman.action_type: Input should be 'call', 'sms' or 'both'"),
    ({"after": "10m"}, "deadman.to: Field required"),
    ({"to": "manager", "every": "1m"}, "unknown key 'every' in deadman"),
])
def test_config_errors_name_the_key(tmp_path, deadman, error):
    path = write_config(tmp_path, 8080, {"deadman": deadman})
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(path)
    (problem,) = exc.value.problems
    assert problem.split(": ", 1)[1] == error and problem.startswith(f"{path}:")


def test_deadman_to_may_be_a_number(tmp_path):
    config, _ = config_mod.load(write_config(tmp_path, 8080, {"deadman": {"to": "(555) 123-4567"}}))
    from alertd.directory import Directory
    assert Directory(config).resolve([config.deadman.to], "deadman.to") == ([A], [])
    assert config.deadman.after == timedelta(minutes=10) and config.deadman.action_type == "call"
