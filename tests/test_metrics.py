"""GET /metrics: Prometheus text from the daemon's own registry, read back with
prometheus_client's parser after real requests (notify, acknowledgements,
silences, storm limits, webhooks, polls, reloads, retries, escalation)."""
from __future__ import annotations

import textwrap

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from alertd.clock import FakeClock
from conftest import CALLER_ID, twilio_overrides
from local_http import LocalServer, refused_url

A, B = "+15551234567", "+15559876543"
SECONDARY = "+15551230003"


def scrape(d, **kwargs) -> dict:
    r = requests.get(d.url("/metrics"), timeout=10, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def sent(m, channel="call"):
    return value(m, "alertd_notifications_total", type=channel, outcome="sent")


def write_rules(folder, name, text):
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / name).write_text(textwrap.dedent(text))


@pytest.fixture
def td(make_daemon, fake_twilio):
    """Twilio against FakeTwilio, a FakeClock, the worker paused: nothing moves unless the test says."""
    d = make_daemon(twilio_overrides(fake_twilio), clock=FakeClock())
    d.fake = fake_twilio
    d.pause_worker()
    return d


def test_metrics_answer_without_a_key_and_every_series_starts_at_zero(daemon):
    r = requests.get(daemon.url("/metrics"), timeout=10)  # no Authorization header
    assert r.status_code == 200
    m = scrape(daemon)
    for channel in ("call", "sms"):
        for outcome in ("sent", "failed", "retry", "silenced", "throttled"):
            assert ("alertd_notifications_total", (("outcome", outcome), ("type", channel))) in m
    for via in ("call", "sms", "api"):
        assert value(m, "alertd_acknowledgements_total", via=via) == 0
    assert value(m, "alertd_outbox_pending") == 0 and value(m, "alertd_outbox_oldest_due_age_seconds") == 0
    assert value(m, "alertd_rules_loaded") == 0 and value(m, "alertd_rule_reload_failures_total") == 0
    assert m[("alertd_clock_offset_seconds", ())] == 0  # one box: its own clock (PostgreSQL: tests/test_pg_clock.py)
    assert value(m, "process_resident_memory_bytes") > 0  # the process collector, on our own registry
    assert "/metrics" not in requests.get(daemon.url("/openapi.json"), timeout=10).json()["paths"]


def test_a_notify_counts_each_channel_sent_and_observes_provider_latency(daemon):
    before = scrape(daemon)
    r = daemon.notify({"to": A, "message": "Server down", "action_type": "both"})
    assert r.status_code == 200
    after = scrape(daemon)
    for channel in ("call", "sms"):
        assert sent(after, channel) == sent(before, channel) + 1
        count = "alertd_provider_request_duration_seconds_count"
        assert value(after, count, type=channel) == value(before, count, type=channel) + 1
    assert value(after, "alertd_provider_request_duration_seconds_bucket", type="call", le="+Inf") == 1


def test_transient_and_permanent_provider_failures_count_as_retry_and_failed(td):
    td.fake.script(A, [("http", 500)])
    td.fake.permanent(B)
    r = td.notify({"to": [A, B], "message": "x"})
    assert r.status_code == 200
    m = scrape(td)
    assert value(m, "alertd_notifications_total", type="call", outcome="retry") == 1
    assert value(m, "alertd_notifications_total", type="call", outcome="failed") == 1
    assert sent(m) == 0
    # the retry waits in the outbox: due since it was sent, in backoff now
    assert value(m, "alertd_outbox_pending") == 1 and value(m, "alertd_outbox_due") == 1
    assert value(m, "alertd_provider_failing_seconds") == 0
    td.clock.advance(90)
    m = scrape(td)
    assert value(m, "alertd_outbox_oldest_due_age_seconds") == 90
    assert value(m, "alertd_provider_failing_seconds") == 90
    assert td.run(td.daemon.dispatcher.run_once()) == 1  # the fake answers this one
    m = scrape(td)
    assert sent(m) == 1 and value(m, "alertd_outbox_pending") == 0
    assert value(m, "alertd_provider_failing_seconds") == 0


def test_acknowledgements_count_by_way_call_sms_and_api(td):
    (call,) = td.notify({"to": A, "message": "hot", "gather": True}).json()["calls"]
    status, _ = td.fake.press(call["call_sid"])
    assert status == 200
    assert td.notify({"to": B, "message": "wet", "action_type": "sms"}).status_code == 200
    status, reply = td.fake.inbound_sms(td.url("/twilio/sms"), from_=B, body="ACK", to=CALLER_ID)
    assert status == 200 and "Acknowledged" in reply
    (api_call,) = td.notify({"to": A, "message": "again"}).json()["calls"]
    r = td.api.post(td.url(f"/api/v1/calls/logs/{api_call['log_id']}/ack"), timeout=10)
    assert r.status_code == 200
    m = scrape(td)
    assert [value(m, "alertd_acknowledgements_total", via=v) for v in ("call", "sms", "api")] == [1, 1, 1]


def test_a_silenced_notify_counts_as_silenced_not_sent(daemon):
    r = daemon.api.post(daemon.url("/api/v1/silences"), json={"to": A, "duration": "1h", "reason": "maintenance"},
                        timeout=10)
    assert r.status_code == 200, r.text
    assert daemon.notify({"to": [A, B], "message": "x", "action_type": "both"}).status_code == 200
    m = scrape(daemon)
    assert value(m, "alertd_notifications_total", type="call", outcome="silenced") == 1
    assert value(m, "alertd_notifications_total", type="sms", outcome="silenced") == 1
    assert sent(m, "call") == 1 and sent(m, "sms") == 1  # B's


def test_a_notify_over_the_per_number_limit_counts_as_throttled(make_daemon):
    d = make_daemon({"limits": {"per_number": {"calls": 1, "per": "15m"}}})
    for _ in range(3):
        assert d.notify({"to": A, "message": "x"}).status_code == 200
    m = scrape(d)
    assert sent(m) == 1
    assert value(m, "alertd_notifications_total", type="call", outcome="throttled") == 2


def test_webhook_events_count_per_hook(make_daemon, tmp_path):
    write_rules(tmp_path, "hooks.yaml", """\
        rules:
          - id: door
            source: {webhook: door}
            when: event.state == "open"
            notify: {to: manager, message: open}
          - id: leak
            source: {webhook: leak}
            notify: {to: manager, message: wet, action_type: sms}
        """)
    d = make_daemon()
    for name, body in (("door", {"state": "open"}), ("door", {"state": "closed"}), ("leak", {})):
        assert d.api.post(d.url(f"/hooks/{name}"), json=body, timeout=10).status_code == 200
    assert d.api.post(d.url("/hooks/nobody"), json={}, timeout=10).status_code == 404
    m = scrape(d)
    assert value(m, "alertd_webhook_events_total", hook="door") == 2
    assert value(m, "alertd_webhook_events_total", hook="leak") == 1
    assert ("alertd_webhook_events_total", (("hook", "nobody"),)) not in m  # only names a rule listens on
    assert sent(m, "call") == 1 and sent(m, "sms") == 1
    assert value(m, "alertd_rules_loaded") == 2


def test_a_refused_reload_counts_as_a_failure_and_the_rules_stay(make_daemon, tmp_path):
    write_rules(tmp_path, "door.yaml", """\
        rules:
          - id: door
            source: {webhook: door}
            notify: {to: manager, message: open}
        """)
    d = make_daemon()
    before = scrape(d)
    assert value(before, "alertd_rules_loaded") == 1 and value(before, "alertd_rules_loaded_timestamp_seconds") > 0
    write_rules(tmp_path, "broken.yaml", "rules:\n  - id: x\n    source: {webhook: y}\n    notify: {to: nobody}\n")

    async def reload():
        return d.daemon.rules.reload()
    assert d.run(reload()) is False
    m = scrape(d)
    assert value(m, "alertd_rule_reload_failures_total") == 1
    assert value(m, "alertd_rule_errors") >= 1
    assert value(m, "alertd_rules_loaded") == 1


def test_poll_checks_observe_latency_and_count_failures_per_rule(make_daemon, tmp_path):
    with LocalServer(body={"ok": True}) as server:
        write_rules(tmp_path, "polls.yaml", f"""\
            rules:
              - id: up
                source: {{poll: {{url: "{server.url('/health')}", every: 1h}}}}
                when: event.status != 200
                notify: {{to: manager, message: down}}
              - id: gone
                source: {{poll: {{url: "{refused_url('/health')}", every: 1h}}}}
                when: "false"
                notify: {{to: manager, message: down}}
            """)
        d = make_daemon()
        for rule_id in ("up", "up", "gone"):
            d.run(d.daemon.sources.run_rule(rule_id))
    m = scrape(d)
    assert value(m, "alertd_poll_duration_seconds_count", rule="up") == 2
    assert value(m, "alertd_poll_duration_seconds_count", rule="gone") == 1
    assert value(m, "alertd_poll_failures_total", rule="up") == 0
    assert value(m, "alertd_poll_failures_total", rule="gone") == 1


def test_retries_of_unanswered_calls_and_escalation_steps_count(td):
    td.notify({"to": A, "message": "hot", "gather": True, "retry": {"times": 1, "every": "1m"},
               "escalate": [{"after": "5m", "to": [SECONDARY]}]})
    td.fake.complete_call(td.fake.calls[0].sid, "no-answer")
    td.clock.advance(60)
    assert td.run(td.daemon.followups.run_due()) == 1
    m = scrape(td)
    assert value(m, "alertd_call_retries_total") == 1 and value(m, "alertd_escalation_steps_total") == 0
    td.clock.advance(240)
    assert td.run(td.daemon.followups.run_due()) == 1
    m = scrape(td)
    assert value(m, "alertd_escalation_steps_total") == 1
    assert sent(m) == 3  # the first call, its retry, the step


def test_require_key_puts_metrics_behind_the_api_key(make_daemon):
    d = make_daemon({"server": {"metrics": {"require_key": True}}})
    r = requests.get(d.url("/metrics"), timeout=10)
    assert r.status_code == 401 and r.json()["ok"] is False
    r = d.api.get(d.url("/metrics"), timeout=10)
    assert r.status_code == 200 and "alertd_notifications_total" in r.text


def test_metrics_can_be_turned_off(make_daemon):
    d = make_daemon({"server": {"metrics": {"enabled": False}}})
    r = d.api.get(d.url("/metrics"), timeout=10)
    assert r.status_code == 404 and r.json() == {"ok": False, "error": "Not found.", "code": 404}


def test_two_daemons_in_one_process_keep_their_own_counts(make_daemon, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, two = make_daemon(folder=tmp_path / "one"), make_daemon(folder=tmp_path / "two")
    assert one.notify({"to": A, "message": "x"}).status_code == 200
    assert sent(scrape(one)) == 1 and sent(scrape(two)) == 0
