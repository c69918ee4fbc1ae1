"""Until someone answers: acknowledgement of the whole trigger, retries of
unanswered calls, escalation steps, SMS and API acknowledgement, restarts.

Real daemon over loopback, the real twilio library against FakeTwilio, signed
callbacks; a FakeClock and a paused worker so each follow-up runs when the
test says (no sleeps waiting for schedules). Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import textwrap

import pytest

from alertd.clock import FakeClock
from conftest import CALLER_ID, both_backends, twilio_overrides

A, B = "+15551234567", "+15559876543"
SECONDARY = "+15551230003"  # oncall_secondary in conftest's config

pytestmark = both_backends


def paused(make_daemon, fake_twilio, **overrides):
    d = make_daemon({**twilio_overrides(fake_twilio), **overrides}, clock=FakeClock())
    d.fake = fake_twilio
    d.pause_worker()
    return d


@pytest.fixture
def d(make_daemon, fake_twilio):
    return paused(make_daemon, fake_twilio)


def notify(d, **body):
    r = d.notify({"message": "Server room too hot", "gather": True, **body})
    assert r.status_code == 200, r.text
    return r.json()["calls"]


def row(d, log_id):
    return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]


def run_due(d) -> int:
    return d.run(d.daemon.followups.run_due())


def calls_to(d, number):
    return [c for c in d.fake.calls if c.form["To"] == number]


def test_press_one_acknowledges_the_whole_trigger(d):
    calls = notify(d, to=[A, B])
    status, twiml = d.fake.press(calls[0]["call_sid"])
    assert status == 200 and "Acknowledged" in twiml
    for c in calls:
        r = row(d, c["log_id"])
        assert r["acknowledged"] is True and r["acknowledged_by"] == A and r["acknowledged_at"]


def test_unanswered_call_is_placed_again_times_then_stops(d):
    (call,) = notify(d, to=A, retry={"times": 2, "every": "2m"})
    for attempt in (1, 2, 3):
        assert len(calls_to(d, A)) == attempt
        d.fake.complete_call(calls_to(d, A)[-1].sid, "no-answer")
        d.clock.advance(119)
        assert run_due(d) == 0  # not before `every`
        d.clock.advance(1)
        ran = run_due(d)
        assert ran == (1 if attempt < 3 else 0)
    logs = d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"]
    assert sorted(r["attempt"] for r in logs) == [1, 2, 3]
    assert {r["trigger_id"] for r in logs} == {logs[0]["trigger_id"]}


@pytest.mark.parametrize("outcome, extra, gather, retried", [
    ("busy", {}, True, True),
    ("no-answer", {}, False, True),
    ("failed", {}, True, True),
    ("canceled", {}, True, True),
    ("completed", {}, True, True),                                  # gather, but no press
    ("completed", {"AnsweredBy": "machine_end_beep"}, True, True),  # a voicemail is not a human
    ("completed", {"AnsweredBy": "machine_start"}, False, True),    # ... with or without gather
    ("completed", {"AnsweredBy": "fax"}, False, True),
    ("completed", {"AnsweredBy": "human"}, True, True),             # answered, still no press
    ("completed", {"AnsweredBy": "human"}, False, False),           # no gather: a human answering is delivery
    ("completed", {}, False, False),                                # no gather, no machine detection: answered
])
def test_calls_that_no_human_acknowledged_are_retried(d, outcome, extra, gather, retried):
    notify(d, to=A, retry={"times": 1, "every": "30s"}, gather=gather)
    d.fake.complete_call(calls_to(d, A)[0].sid, outcome, **extra)
    d.clock.advance(30)
    assert run_due(d) == (1 if retried else 0)
    assert len(calls_to(d, A)) == (2 if retried else 1)


def test_answered_and_pressed_call_is_never_retried(d):
    notify(d, to=A, retry={"times": 2, "every": "30s"})
    sid = calls_to(d, A)[0].sid
    d.fake.press(sid)
    d.fake.complete_call(sid, "completed")
    d.clock.advance(60)
    assert run_due(d) == 0 and len(calls_to(d, A)) == 1


def test_completed_call_without_gather_counts_as_answered(d):
    d.notify({"to": A, "message": "fyi", "retry": {"times": 2, "every": "30s"}})
    d.fake.complete_call(calls_to(d, A)[0].sid, "completed")
    d.clock.advance(60)
    assert run_due(d) == 0


def test_escalation_step_runs_after_its_delay_when_unacknowledged(d):
    (call,) = notify(d, to=A, escalate=[{"after": "5m", "to": ["oncall_secondary"], "action_type": "both"}])
    d.clock.advance(299)
    assert run_due(d) == 0 and not calls_to(d, SECONDARY)
    d.clock.advance(1)
    assert run_due(d) == 1
    (esc,) = calls_to(d, SECONDARY)
    assert "Server room too hot" in esc.form["Twiml"] and "<Gather" in esc.form["Twiml"]  # inherited
    assert [m.form["To"] for m in d.fake.messages] == [SECONDARY]  # the step's own action_type
    logs = d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"]
    step_rows = [r for r in logs if r["step"] == 1]
    assert step_rows[0]["to"] == SECONDARY and step_rows[0]["trigger_id"] == row(d, call["log_id"])["trigger_id"]


def test_acknowledgement_cancels_pending_retries_and_escalation(d):
    (call,) = notify(d, to=[A], retry={"times": 3, "every": "1m"},
                     escalate=[{"after": "5m", "to": [SECONDARY]}, {"after": "10m", "to": ["manager"]}])
    d.fake.complete_call(calls_to(d, A)[0].sid, "no-answer")  # a retry is now pending
    r = d.api.post(d.url(f"/api/v1/calls/logs/{call['log_id']}/ack"), timeout=10)
    assert r.status_code == 200 and r.json()["log"]["acknowledged"] is True
    d.clock.advance(3600)
    assert run_due(d) == 0
    assert len(d.fake.calls) == 1
    states = {f["state"] for f in d.run(d.daemon.store.followups.of_trigger(row(d, call["log_id"])["trigger_id"]))}
    assert states == {"cancelled"}


def test_ack_api_answers_404_for_an_unknown_log_row(d):
    r = d.api.post(d.url("/api/v1/calls/logs/999/ack"), timeout=10)
    assert r.status_code == 404 and r.json() == {"ok": False, "error": "Log row not found: 999", "code": 404}


@pytest.mark.parametrize("reply", ["1", "ack", " O K ", "Ok"])
def test_sms_reply_acknowledges_the_latest_open_trigger_of_that_number(d, reply):
    first = notify(d, to=A, action_type="sms")[0]
    second = notify(d, to=A, action_type="sms")[0]
    status, text = d.fake.inbound_sms(d.url("/twilio/sms"), A, reply, CALLER_ID)
    assert status == 200 and "<Message>Acknowledged" in text
    assert row(d, second["log_id"])["acknowledged"] is True
    assert row(d, first["log_id"])["acknowledged"] is False


def test_sms_reply_of_anything_else_gets_help_and_acknowledges_nothing(d):
    (call,) = notify(d, to=A, action_type="sms")
    status, text = d.fake.inbound_sms(d.url("/twilio/sms"), A, "what is this?", CALLER_ID)
    assert status == 200 and "reply 1, ACK or OK" in text
    assert row(d, call["log_id"])["acknowledged"] is False


def test_sms_reply_from_a_number_never_notified_acknowledges_nothing(d):
    (call,) = notify(d, to=A, action_type="sms")
    status, text = d.fake.inbound_sms(d.url("/twilio/sms"), B, "1", CALLER_ID)
    assert "no open alert" in text and row(d, call["log_id"])["acknowledged"] is False


def test_inbound_sms_with_a_bad_signature_is_refused(d):
    status, _ = d.fake.post_signed(d.url("/twilio/sms"), {"From": A, "Body": "1"}, signature="bad")
    assert status == 403


def test_escalation_due_while_the_daemon_was_down_runs_once_at_start(make_daemon, fake_twilio, tmp_path):
    clock = FakeClock()
    first = make_daemon(twilio_overrides(fake_twilio), clock=clock)
    first.fake = fake_twilio
    first.pause_worker()
    notify(first, to=A, escalate=[{"after": "5m", "to": [SECONDARY]}])
    first.stop()  # like a kill: the step is only in the database now
    clock.advance(600)
    second = make_daemon(twilio_overrides(fake_twilio), clock=clock, folder=tmp_path)
    second.fake = fake_twilio
    second.wait_until(lambda: calls_to(second, SECONDARY), what="the escalation call")
    second.pause_worker()
    assert run_due(second) == 0
    assert len(calls_to(second, SECONDARY)) == 1


def test_rule_with_retry_and_escalation_stores_both(make_daemon, fake_twilio, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "down.yaml").write_text(textwrap.dedent("""
        rules:
          - id: system-down
            source: {webhook: down}
            notify:
              to: [oncall_primary]
              message: "System {{ event.system }} is down"
              gather: true
              retry: {times: 1, every: 2m}
              escalate:
                - after: 5m
                  to: [oncall_secondary]
    """))
    d = make_daemon(twilio_overrides(fake_twilio), clock=FakeClock())
    d.fake = fake_twilio
    d.pause_worker()
    r = d.api.post(d.url("/hooks/down"), json={"system": "billing"}, timeout=10)
    assert r.status_code == 200 and r.json()["fired"] == ["system-down"]
    d.fake.complete_call(d.fake.calls[0].sid, "no-answer")
    d.clock.advance(120)
    assert run_due(d) == 1  # the retry
    d.clock.advance(180)
    assert run_due(d) == 1  # the escalation step, 5 min after the first attempt
    assert [c.form["To"] for c in d.fake.calls] == ["+15551230002", "+15551230002", SECONDARY]
    assert all("System billing is down" in c.form["Twiml"] for c in d.fake.calls)


def test_a_final_status_callback_delivered_three_times_places_one_retry(d):
    (call,) = notify(d, to=A, retry={"times": 1, "every": "30s"})
    for _ in range(3):  # Twilio retries deliveries, and a captured request can be replayed (no timestamp)
        status, _ = d.fake.complete_call(call["call_sid"], "no-answer")
        assert status == 200
    d.clock.advance(30)
    assert run_due(d) == 1
    assert len(calls_to(d, A)) == 2
    history = d.run(d.daemon.store.status.history([call["log_id"]]))[call["log_id"]]
    assert [r["status"] for r in history] == ["no-answer"]  # the repeats are not news either
    for _ in range(3):
        d.fake.complete_call(calls_to(d, A)[-1].sid, "no-answer")
    d.clock.advance(30)
    assert run_due(d) == 0
    assert len(calls_to(d, A)) == 2  # times: 1 allows one retry, whatever arrives


def test_retry_times_holds_whatever_final_statuses_arrive_for_one_call(d):
    (call,) = notify(d, to=A, retry={"times": 1, "every": "30s"})
    for outcome in ("no-answer", "busy", "failed", "canceled"):
        d.fake.complete_call(call["call_sid"], outcome)
    d.clock.advance(30)
    assert run_due(d) == 1
    d.clock.advance(30)
    assert run_due(d) == 0
    assert len(calls_to(d, A)) == 2
