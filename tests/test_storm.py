"""Storm control: per-number limits that fold what exceeds them into one summary,
and rule groups that turn a burst of events into one notification.

Real daemon over loopback, the real twilio library against FakeTwilio; a
FakeClock and a paused worker, so the test says when the outbox worker
(``dispatcher.run_once``), follow-ups and groups (``runner.groups.run_due``) run.
Every test of a daemon runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import textwrap

import pytest

from alertd import config as config_mod
from alertd.dispatch import storm
from alertd.clock import FakeClock
from conftest import both_backends, twilio_overrides, write_config
from conftest import sync

A, B = "+15551234567", "+15559876543"
PRIMARY = "+15551230002"  # oncall_primary in conftest's config
LIMITS = {"limits": {"per_number": {"calls": 3, "sms": 5, "per": "15m"}}}


def start(make_daemon, fake_twilio, overrides=None, clock=None, folder=None):
    d = make_daemon({**twilio_overrides(fake_twilio), **(overrides or {})}, clock=clock or FakeClock(),
                    folder=folder)
    d.fake = fake_twilio
    d.pause_worker()
    return d


@pytest.fixture
def d(make_daemon, fake_twilio, backend):
    return start(make_daemon, fake_twilio, LIMITS)


def notify(d, to=A, message="Server room too hot", **body) -> dict:
    r = d.notify({"to": to, "message": message, **body})
    assert r.status_code == 200, r.text
    (call,) = r.json()["calls"]
    return call


def row(d, log_id) -> dict:
    return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]


def logs(d) -> list[dict]:
    rows = d.api.get(d.url("/api/v1/calls/logs"), params={"limit": 1000}, timeout=10).json()["logs"]
    return sorted(rows, key=lambda r: r["log_id"])


def calls_to(d, number) -> list:
    return [c for c in d.fake.calls if c.form["To"] == number]


def sms_to(d, number) -> list:
    return [m for m in d.fake.messages if m.form["To"] == number]


def worker(d) -> int:
    """One pass of the outbox worker: due summaries go out here."""
    return d.run(d.daemon.dispatcher.run_once())


# --- per-number limits ---------------------------------------------------------------------------
@both_backends
def test_limits_are_off_by_default(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio)
    statuses = [notify(d, message=f"alert {k}")["status"] for k in range(8)]
    assert statuses == ["initiated"] * 8 and len(calls_to(d, A)) == 8
    assert all(r["summary_log_id"] is None for r in logs(d))


def test_fourth_call_within_the_window_is_folded_into_one_summary_sent_when_the_window_allows(d):
    for k in range(3):
        assert notify(d, message=f"Disk full on db{k}")["status"] == "initiated"
    d.clock.advance(60)
    folded = [notify(d, message=m) for m in ("Server down", "Backup failed", "Server down")]
    assert [c["status"] for c in folded] == ["throttled"] * 3
    assert all(c["call_sid"] is None for c in folded) and len(calls_to(d, A)) == 3

    rows = [row(d, c["log_id"]) for c in folded]
    summary_id = rows[0]["summary_log_id"]
    assert summary_id and {r["summary_log_id"] for r in rows} == {summary_id}
    assert all(r["status"] == "throttled" for r in rows)
    summary = row(d, summary_id)
    assert summary["status"] == "scheduled" and summary["source"] == "alertd:summary"
    assert summary["to"] == A and summary["type"] == "call"
    assert summary["message"] == "3 more alerts: Server down (2 times); Backup failed"

    d.clock.advance(900 - 60 - 1)  # the first call leaves the window at 900 s
    assert worker(d) == 0 and len(calls_to(d, A)) == 3
    d.clock.advance(1)
    assert worker(d) == 1
    assert "3 more alerts: Server down (2 times); Backup failed" in calls_to(d, A)[-1].form["Twiml"]
    assert row(d, summary_id)["status"] == "initiated"
    assert worker(d) == 0 and len(calls_to(d, A)) == 4  # sent once


def test_every_number_has_its_own_window(d):
    for _ in range(3):
        notify(d, to=A)
    assert notify(d, to=B)["status"] == "initiated"
    assert notify(d, to=A)["status"] == "throttled"


def test_the_window_slides_and_a_summary_counts_in_it(d):
    for t in (0, 300, 600):  # three calls, five minutes apart
        d.clock.advance(300 if t else 0)
        assert notify(d, message=f"at {t}")["status"] == "initiated"
    d.clock.advance(100)  # t=700
    late = notify(d, message="at 700")
    assert late["status"] == "throttled"
    d.clock.advance(200)  # t=900: the call at 0 has left the window
    assert worker(d) == 1 and "1 more alert: at 700" in calls_to(d, A)[-1].form["Twiml"]
    d.clock.advance(100)  # t=1000: 300, 600 and the summary at 900 are in (100, 1000]
    again = notify(d, message="at 1000")
    assert again["status"] == "throttled"
    second = row(d, again["log_id"])["summary_log_id"]
    assert second != row(d, late["log_id"])["summary_log_id"]
    assert row(d, second)["status"] == "scheduled"
    d.clock.advance(199)  # t=1199: the call at 300 leaves at 1200
    assert worker(d) == 0
    d.clock.advance(1)
    assert worker(d) == 1
    d.clock.advance(301)  # t=1501: only 900 and 1200 are left in (601, 1501]
    assert notify(d, message="at 1501")["status"] == "initiated"
    assert len(calls_to(d, A)) == 6


def test_retries_of_an_unanswered_call_do_not_count_and_are_never_throttled(d):
    first = notify(d, message="needs a human", gather=True, retry={"times": 3, "every": "30s"})
    for attempt in (2, 3, 4):
        d.fake.complete_call(calls_to(d, A)[-1].sid, "no-answer")
        d.clock.advance(30)
        assert d.run(d.daemon.followups.run_due()) == 1
        assert len(calls_to(d, A)) == attempt  # placed again, four calls within the window
    statuses = [notify(d, message=f"other {k}")["status"] for k in range(3)]
    assert statuses == ["initiated", "initiated", "throttled"]  # the retries left room for two
    assert {r["attempt"] for r in logs(d) if r["trigger_id"] == row(d, first["log_id"])["trigger_id"]} == {1, 2, 3, 4}


def test_a_retry_goes_out_even_when_the_window_is_full(d):
    notify(d, message="first", gather=True, retry={"times": 1, "every": "30s"})
    notify(d, message="second")
    notify(d, message="third")
    d.fake.complete_call(calls_to(d, A)[0].sid, "busy")
    d.clock.advance(30)
    assert d.run(d.daemon.followups.run_due()) == 1
    assert len(calls_to(d, A)) == 4 and "first" in calls_to(d, A)[-1].form["Twiml"]


@both_backends
def test_a_summary_waits_when_a_call_it_counted_on_went_out_late(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"calls": 1, "per": "15m"}}})
    d.fake.script(A, [("http", 429, 1)])
    assert notify(d, message="first")["status"] == "queued"  # the provider said 429: retried later
    assert notify(d, message="second")["status"] == "throttled"  # the first counts while pending
    d.clock.advance(60)
    assert worker(d) == 1 and len(calls_to(d, A)) == 1  # the first call goes out 60 s late
    d.clock.advance(840)  # 900 s after the first was planned, 840 s after it rang
    assert worker(d) == 0 and len(calls_to(d, A)) == 1
    d.clock.advance(59)
    assert worker(d) == 0
    d.clock.advance(1)
    assert worker(d) == 1 and "1 more alert: second" in calls_to(d, A)[-1].form["Twiml"]


@both_backends
def test_a_call_still_unsent_from_before_the_window_counts_as_going_out_now(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"calls": 1, "per": "15m"}}})
    d.fake.script(A, [("http", 429, 1)])
    assert notify(d, message="first")["status"] == "queued"
    d.clock.advance(1000)  # the provider would not take it for longer than the window
    assert notify(d, message="second")["status"] == "throttled"


@both_backends
def test_call_and_sms_limits_are_separate(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"calls": 1, "sms": 2, "per": "10m"}}})
    assert notify(d, message="c1")["status"] == "initiated"
    assert [notify(d, message=f"s{k}", action_type="sms")["status"] for k in range(3)] == \
        ["initiated", "initiated", "throttled"]
    c2 = notify(d, message="c2")
    assert c2["status"] == "throttled"
    summaries = {r["type"]: r for r in logs(d) if r["source"] == "alertd:summary"}
    assert set(summaries) == {"call", "sms"}
    assert summaries["sms"]["message"] == "1 more alert: s2" and summaries["call"]["message"] == "1 more alert: c2"
    d.clock.advance(600)
    assert worker(d) == 2
    assert len(calls_to(d, A)) == 2 and len(sms_to(d, A)) == 3
    assert sms_to(d, A)[-1].form["Body"] == "1 more alert: s2"


@both_backends
def test_a_both_row_counts_for_calls_and_sms_and_is_folded_only_where_over(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"calls": 1, "sms": 5, "per": "10m"}}})
    assert notify(d, message="one", action_type="both")["status"] == "initiated"
    two = notify(d, message="two", action_type="both")
    assert two["status"] == "initiated" and two["call_sid"] is None and two["sms_sid"]
    assert len(calls_to(d, A)) == 1 and len(sms_to(d, A)) == 2
    call_summary = row(d, row(d, two["log_id"])["summary_log_id"])
    assert call_summary["type"] == "call" and call_summary["message"] == "1 more alert: two"
    # the SMS of both rows count: three more SMS fit, the fourth does not
    assert [notify(d, message=f"s{k}", action_type="sms")["status"] for k in range(4)] == \
        ["initiated"] * 3 + ["throttled"]


@both_backends
def test_sms_limit_without_a_call_limit_leaves_calls_alone(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"sms": 1}}})
    assert [notify(d, message=f"c{k}")["status"] for k in range(5)] == ["initiated"] * 5


def test_escalation_steps_count_against_the_limit(d):
    notify(d, to=A, message="first", escalate=[{"after": "1m", "to": [B]}])
    for k in range(3):
        notify(d, to=B, message=f"b{k}")
    d.clock.advance(60)
    assert d.run(d.daemon.followups.run_due()) == 1
    step = [r for r in logs(d) if r["step"] == 1]
    assert len(step) == 1 and step[0]["status"] == "throttled" and step[0]["summary_log_id"]
    assert len(calls_to(d, B)) == 3


def test_pressing_one_on_the_summary_acknowledges_every_folded_trigger(d):
    for k in range(3):
        notify(d, message=f"m{k}")
    folded = [notify(d, message=f"late {k}", gather=True, escalate=[{"after": "30m", "to": [B]}])
              for k in range(2)]
    d.clock.advance(900)
    assert worker(d) == 1
    summary_call = calls_to(d, A)[-1]
    assert "<Gather" in summary_call.form["Twiml"]  # a folded alert asked for a press of 1
    status, twiml = d.fake.press(summary_call.sid)
    assert status == 200 and "Acknowledged" in twiml
    for c in folded:
        assert row(d, c["log_id"])["acknowledged"] is True
    d.clock.advance(1800)
    assert d.run(d.daemon.followups.run_due()) == 0  # their escalation steps were cancelled
    assert not calls_to(d, B)


def fill_window_then_fold(d, messages, **body) -> tuple[list[dict], int]:
    for k in range(3):
        notify(d, message=f"first {k}")
    folded = [notify(d, message=m, **body) for m in messages]
    assert {c["status"] for c in folded} == {"throttled"}
    return folded, row(d, folded[0]["log_id"])["summary_log_id"]


def test_an_alert_acknowledged_after_it_was_folded_leaves_the_summary(d):
    folded, summary_id = fill_window_then_fold(d, ["Disk full", "Server down", "Backup failed"])
    r = d.api.post(d.url(f"/api/v1/calls/logs/{folded[1]['log_id']}/ack"), timeout=10)
    assert r.status_code == 200, r.text
    d.clock.advance(900)
    assert worker(d) == 1
    twiml = calls_to(d, A)[-1].form["Twiml"]
    assert "2 more alerts: Disk full; Backup failed" in twiml and "Server down" not in twiml
    assert row(d, summary_id)["message"] == "2 more alerts: Disk full; Backup failed"


def test_a_summary_whose_alerts_were_all_acknowledged_is_not_sent(d):
    folded, summary_id = fill_window_then_fold(d, ["Disk full", "Server down"])
    for c in folded:
        assert d.api.post(d.url(f"/api/v1/calls/logs/{c['log_id']}/ack"), timeout=10).status_code == 200
    d.clock.advance(900)
    worker(d)
    assert len(calls_to(d, A)) == 3
    assert row(d, summary_id)["status"] == "cancelled"
    assert worker(d) == 0


def test_a_silence_added_after_the_fold_holds_the_summary_back(d):
    folded, summary_id = fill_window_then_fold(d, ["Disk full", "Server down"], source="shop")
    r = d.api.post(d.url("/api/v1/silences"), json={"source": "shop", "duration": "2h", "reason": "maintenance"},
                   timeout=10)
    assert r.status_code == 200, r.text
    d.clock.advance(900)
    worker(d)
    assert len(calls_to(d, A)) == 3
    summary = row(d, summary_id)
    assert summary["status"] == "silenced"
    assert d.run(d.daemon.store.logs.get(summary_id))["silence_id"] == r.json()["silence_id"]


@both_backends
def test_a_both_alert_over_both_limits_is_in_both_summaries_and_each_tells_only_what_is_open(make_daemon,
                                                                                           fake_twilio):
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"calls": 1, "sms": 1, "per": "10m"}}})
    assert notify(d, message="first", action_type="both")["status"] == "initiated"
    sms_only = notify(d, message="sms-only", action_type="sms")
    both = notify(d, message="BOTH-ALERT", action_type="both")
    assert sms_only["status"] == both["status"] == "throttled"
    sms_summary = row(d, sms_only["log_id"])["summary_log_id"]
    assert row(d, sms_summary)["message"] == "2 more alerts: sms-only; BOTH-ALERT"
    assert d.api.post(d.url(f"/api/v1/calls/logs/{sms_only['log_id']}/ack"), timeout=10).status_code == 200
    d.clock.advance(600)
    worker(d)
    texts = [m.form["Body"] for m in sms_to(d, A)]
    assert texts[-1] == "1 more alert: BOTH-ALERT"
    assert "1 more alert: BOTH-ALERT" in calls_to(d, A)[-1].form["Twiml"]


@both_backends
def test_acknowledging_the_sms_summary_acknowledges_a_both_alert_folded_into_it(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"calls": 1, "sms": 1, "per": "10m"}}})
    notify(d, message="first", action_type="both")
    sms_only = notify(d, message="sms-only", action_type="sms")
    both = notify(d, message="BOTH-ALERT", action_type="both", gather=True, escalate=[{"after": "30m", "to": [B]}])
    sms_summary = row(d, sms_only["log_id"])["summary_log_id"]
    assert row(d, both["log_id"])["summary_log_id"] != sms_summary  # its first link is the call summary
    assert d.api.post(d.url(f"/api/v1/calls/logs/{sms_summary}/ack"), timeout=10).status_code == 200
    assert row(d, both["log_id"])["acknowledged"] is True
    d.clock.advance(1800)
    assert d.run(d.daemon.followups.run_due()) == 0 and not calls_to(d, B)


def test_a_summary_retried_after_a_provider_error_leaves_out_what_was_acknowledged_meanwhile(d):
    folded, summary_id = fill_window_then_fold(d, ["Disk full", "Server down"])
    d.fake.script(A, [("http", 503)])  # the summary's first attempt: Twilio trouble, retried later
    d.clock.advance(900)
    assert worker(d) == 1
    assert row(d, summary_id)["status"] == "queued"
    for c in folded:
        assert d.api.post(d.url(f"/api/v1/calls/logs/{c['log_id']}/ack"), timeout=10).status_code == 200
    d.clock.advance(3600)
    worker(d)
    assert row(d, summary_id)["status"] == "cancelled"
    assert len(calls_to(d, A)) == 3


@both_backends
def test_a_pending_summary_survives_a_restart(make_daemon, fake_twilio, tmp_path):
    clock = FakeClock()
    first = start(make_daemon, fake_twilio, LIMITS, clock=clock)
    for k in range(4):
        notify(first, message=f"m{k}")
    first.stop()
    clock.advance(900)
    second = make_daemon({**twilio_overrides(fake_twilio), **LIMITS}, clock=clock, folder=tmp_path)
    second.fake = fake_twilio
    second.wait_until(lambda: len(calls_to(second, A)) == 4, what="the summary call")
    second.pause_worker()
    assert worker(second) == 0 and len(calls_to(second, A)) == 4
    assert "1 more alert: m3" in calls_to(second, A)[-1].form["Twiml"]


def test_a_summary_stays_short_and_keeps_counting():
    folded = {"count": 0, "parts": []}
    for k in range(500):
        folded = storm.add_to(folded, f"Disk {k} on host-{k} is {'very ' * (k % 40)}full", "sms")
    text = storm.summary_text(folded, "sms")
    assert text.startswith("500 more alerts: Disk 0 on host-0 is full; ") and text.endswith("; ...")
    assert len(text) <= storm.SUMMARY_MAX["sms"] and text.isascii()
    call = storm.summary_text(storm.add_to({"count": 0, "parts": []}, "x" * 4000, "call"), "call")
    assert len(call) <= storm.SUMMARY_MAX["call"] and call.endswith("...")


@pytest.mark.parametrize("limits, error", [
    ({"per_number": {"calls": 0}}, "limits.per_number.calls: Input should be greater than or equal to 1"),
    ({"per_number": {"calls": 3, "per": "0s"}}, "limits.per_number.per: must be at least 1s (write it like 15m)"),
    ({"per_number": {"calls": 3, "per": "soon"}},
     "limits.per_number.per: invalid duration 'soon': write it like 30s, 5m, 2h, 1d or 1w"),
    ({"per_number": {"call": 3}}, "unknown key 'call' in limits.per_number"),
    ({"per_numbers": {}}, "unknown key 'per_numbers' in limits"),
])
def test_bad_limits_are_refused_with_the_key(tmp_path, limits, error):
    path = write_config(tmp_path, 8080, {"limits": limits})
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(path)
    (problem,) = exc.value.problems
    assert problem.startswith(f"{path}:") and problem.endswith(error)


# --- the provider's pace ---------------------------------------------------------------------------
@both_backends
def test_with_every_provider_slot_busy_the_api_hands_new_sends_to_the_worker_at_once(make_daemon, fake_twilio):
    d = start(make_daemon, fake_twilio, {"provider": {**twilio_overrides(fake_twilio)["provider"],
                                                      "max_concurrency": 1}})
    d.fake.latency = 0.3
    d.daemon.attempts.handover_wait = 0  # no waiting for a provider slot at all
    r = d.notify({"to": [A, B, PRIMARY], "message": "storm"})
    # answered after one request, not three one after the other: the worker (paused) has sent nothing yet
    assert r.status_code == 200 and len(d.fake.calls) == 1
    assert [c["status"] for c in r.json()["calls"]] == ["initiated", "queued", "queued"]
    assert worker(d) == 2
    assert sorted(c.form["To"] for c in d.fake.calls) == sorted([A, B, PRIMARY])
    assert {row(d, c["log_id"])["status"] for c in r.json()["calls"]} == {"initiated"}


# --- rule groups ---------------------------------------------------------------------------------
GROUPED = """\
rules:
  - id: instance-down
    source: {{webhook: am, format: alertmanager}}
    notify:
      to: [oncall_primary]
      message: {message}
    group_by: [labels.alertname]
    group_wait: 30s
    notify_resolved: true
"""


def rule_file(tmp_path, message='"{{ event.labels.instance }} is down"'):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "am.yaml").write_text(textwrap.dedent(GROUPED.format(message=message)))


def alerts(n, alertname="InstanceDown", status="firing", start=0):
    return {"version": "4", "status": status, "receiver": "alertd", "groupLabels": {},
            "commonLabels": {"alertname": alertname}, "commonAnnotations": {},
            "alerts": [{"status": status, "labels": {"alertname": alertname, "instance": f"db{k}"},
                        "annotations": {}, "fingerprint": f"{alertname}-{k}"} for k in range(start, start + n)]}


def hook(d, payload) -> dict:
    r = d.api.post(d.url("/hooks/am"), json=payload, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def flush(d) -> int:
    return d.run(d.daemon.runner.groups.run_due())


@pytest.fixture
def g(make_daemon, fake_twilio, tmp_path, backend):
    rule_file(tmp_path)
    return start(make_daemon, fake_twilio)


def test_fifty_alerts_in_one_payload_become_one_call_naming_the_count_and_the_first_few(g):
    assert hook(g, alerts(50))["log_ids"] == []
    g.clock.advance(29)
    assert flush(g) == 0 and not g.fake.calls
    g.clock.advance(1)
    assert flush(g) == 1
    (call,) = g.fake.calls
    assert call.form["To"] == PRIMARY
    assert "50 alerts: db0 is down; db1 is down; db2 is down; ..." in call.form["Twiml"]
    (log,) = [r for r in logs(g) if r["rule_id"] == "instance-down"]
    assert log["status"] == "initiated" and log["message"].startswith("50 alerts: ")
    assert flush(g) == 0 and len(g.fake.calls) == 1


@both_backends
def test_a_template_that_uses_group_gets_count_and_events(make_daemon, fake_twilio, tmp_path):
    rule_file(tmp_path, message="\"{% if group %}{{ group.count }} instances down, first "
                                "{{ group.events[0].labels.instance }}{% else %}{{ event.labels.instance }} down"
                                "{% endif %}\"")
    d = start(make_daemon, fake_twilio)
    hook(d, alerts(50))
    d.clock.advance(30)
    assert flush(d) == 1
    twiml = d.fake.calls[0].form["Twiml"]
    assert "50 instances down, first db0" in twiml and "50 alerts" not in twiml


def test_a_group_of_one_is_a_plain_notification(g):
    hook(g, alerts(1))
    g.clock.advance(30)
    assert flush(g) == 1
    (log,) = [r for r in logs(g) if r["rule_id"] == "instance-down"]
    assert log["message"] == "db0 is down"


def test_each_group_by_value_is_its_own_group_and_a_resent_alert_is_not_counted_twice(g):
    hook(g, alerts(3))
    g.clock.advance(10)
    hook(g, alerts(3))            # Alertmanager re-sends the same firing alerts: no new flips
    hook(g, alerts(2, alertname="DiskFull"))
    g.clock.advance(20)
    assert flush(g) == 1          # InstanceDown's group; DiskFull's waits until 40 s
    assert "3 alerts: db0 is down; db1 is down; db2 is down" in g.fake.calls[0].form["Twiml"]
    g.clock.advance(10)
    assert flush(g) == 1
    assert "2 alerts: db0 is down; db1 is down" in g.fake.calls[1].form["Twiml"]


def test_events_after_the_wait_open_the_next_group_and_resolved_ones_group_apart(g):
    hook(g, alerts(2))
    g.clock.advance(30)
    assert flush(g) == 1
    hook(g, alerts(2, status="resolved"))
    hook(g, alerts(1, start=5))
    g.clock.advance(30)
    assert flush(g) == 2
    messages = sorted(r["message"] for r in logs(g) if r["rule_id"] == "instance-down")
    assert messages == ["2 alerts: db0 is down; db1 is down", "2 alerts: db0 is down; db1 is down", "db5 is down"]
    assert len(g.fake.calls) == 3


@both_backends
def test_a_pending_group_survives_a_restart_and_is_sent_once(make_daemon, fake_twilio, tmp_path):
    rule_file(tmp_path)
    clock = FakeClock()
    first = start(make_daemon, fake_twilio, clock=clock)
    hook(first, alerts(5))
    first.stop()  # like a kill: the group is only in SQLite now
    clock.advance(120)
    second = make_daemon(twilio_overrides(fake_twilio), clock=clock, folder=tmp_path)
    second.fake = fake_twilio
    second.wait_until(lambda: second.fake.calls, what="the grouped call")
    second.pause_worker()
    assert flush(second) == 0 and len(second.fake.calls) == 1
    assert "5 alerts: db0 is down" in second.fake.calls[0].form["Twiml"]


def test_a_group_interrupted_after_its_trigger_was_stored_is_not_sent_again(g):
    hook(g, alerts(2))
    g.clock.advance(30)
    assert flush(g) == 1
    (grp,) = g.run(g.daemon.store.groups.get_groups("instance-down"))
    assert grp["state"] == "sent"
    # as if stopped between the send and the mark
    g.query("UPDATE rule_groups SET state = 'sending' WHERE group_id = ?", grp["group_id"])
    g.daemon.runner.groups._released = False
    assert flush(g) == 1 and len(g.fake.calls) == 1


@both_backends
def test_grouped_notifications_are_subject_to_the_limits(make_daemon, fake_twilio, tmp_path):
    rule_file(tmp_path)
    d = start(make_daemon, fake_twilio, {"limits": {"per_number": {"calls": 1, "per": "15m"}}})
    for name in ("A", "B", "C"):
        hook(d, alerts(4, alertname=name))
    d.clock.advance(30)
    assert flush(d) == 3
    assert len(d.fake.calls) == 1
    (summary,) = [r for r in logs(d) if r["source"] == "alertd:summary"]
    assert summary["message"].startswith("2 more alerts: 4 alerts: db0 is down")
    assert sorted(r["status"] for r in logs(d) if r["rule_id"] == "instance-down") == \
        ["initiated", "throttled", "throttled"]


def test_summaries_folded_before_the_links_existed_get_them_at_upgrade(tmp_path):
    """Schema 8 links each summary to its alerts; a database from before learns
    the links from logs.summary_log_id when it is migrated."""
    import json

    from alertd.store import Store

    import sqlite3

    from alertd.store.sqlite.schema import MIGRATIONS
    from alertd.store.sqlite.storm import Storm

    # a database as schema 7 left it (later migrations, whatever they add, run at the upgrade)
    c = sqlite3.connect(tmp_path / "alertd.db", isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:7], start=1):
        c.executescript(script)
        c.execute(f"PRAGMA user_version={number}")
    summary = sync(Storm.create_summary(c, A, "sms", "2 more alerts: a; b", {"folded": {"count": 2, "parts": []}},
                                        1.0, 0.0))
    for text in ("a", "b"):
        c.execute("INSERT INTO triggers (created_at, source) VALUES (0, 'api')")
        c.execute("INSERT INTO logs (trigger_id, created_at, source, to_number, type, message, params, status,"
                  " summary_log_id) VALUES (last_insert_rowid(), 0, 'api', ?, 'sms', ?, ?, 'throttled', ?)",
                  (A, text, json.dumps({}), summary))
    c.close()
    upgraded = Store(tmp_path / "alertd.db")
    assert [r["message"] for r in sync(upgraded.storm.folded_into(summary))] == ["a", "b"]
    upgraded.close()
