"""A restart while work is pending: an escalation step, a deferred send, a retry
after a transient failure and a retry of an unanswered call each happen
exactly once after the restart, and never again after another restart.

In-process daemons on one FakeClock (as tests/test_escalation.py): the first
stores the pending work with its worker stopped, the clock moves past every
due time while no daemon runs, the second does the work, the third finds
nothing left to do.
"""
from __future__ import annotations

import textwrap

from alertd.clock import FakeClock
from conftest import twilio_overrides

ESCALATED, SECONDARY = "+15551110001", "+15551230003"  # oncall_secondary in conftest's config
TRANSIENT = "+15551110002"
UNANSWERED = "+15551110003"
LATER = "+15551230001"  # manager: the deferred rule's recipient

RULE = textwrap.dedent("""
    rules:
      - id: send-later
        source: {webhook: later}
        notify:
          to: [manager]
          message: "Deferred {{ event.n }}"
          action_type: sms
          delay: 10m
""")


def created_to(fake, number: str) -> list:
    return [r for r in fake.requests if r.sid and r.form.get("To") == number]


def counts(fake) -> dict:
    return {"escalation": len(created_to(fake, SECONDARY)), "deferred": len(created_to(fake, LATER)),
            "transient retry": len(created_to(fake, TRANSIENT)), "unanswered retry": len(created_to(fake, UNANSWERED))}


def test_pending_escalation_deferred_send_and_retries_run_once_after_a_restart(make_daemon, fake_twilio, tmp_path,
                                                                               capsys):
    fake = fake_twilio
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "later.yaml").write_text(RULE)
    clock = FakeClock()
    overrides = twilio_overrides(fake)

    first = make_daemon(overrides, clock=clock)
    first.pause_worker()  # nothing pending may run before the restart
    r = first.notify({"to": ESCALATED, "message": "Escalate me", "escalate": [{"after": "5m", "to": [SECONDARY]}]})
    assert r.status_code == 200 and r.json()["calls"][0]["status"] == "initiated"
    r = first.api.post(first.url("/hooks/later"), json={"n": 1}, timeout=10)
    assert r.status_code == 200 and r.json()["fired"] == ["send-later"], r.text
    fake.script(TRANSIENT, [("http", 503)])
    r = first.notify({"to": TRANSIENT, "message": "Retry me"})
    assert r.json()["calls"][0]["status"] == "queued"
    r = first.notify({"to": UNANSWERED, "message": "Call me again", "retry": {"times": 1, "every": "2m"}})
    fake.complete_call(r.json()["calls"][0]["call_sid"], "no-answer")  # a retry is now pending
    before = counts(fake)
    assert before == {"escalation": 0, "deferred": 0, "transient retry": 0, "unanswered retry": 1}, before
    first.stop()

    clock.advance(15 * 60)  # every due time passed while no daemon ran
    second = make_daemon(overrides, clock=clock, folder=tmp_path)
    after = {"escalation": 1, "deferred": 1, "transient retry": 1, "unanswered retry": 2}
    second.wait_until(lambda: counts(fake) == after, timeout=10, what=f"{after}, got {counts(fake)}")
    at_restart = counts(fake)
    second.pause_worker()
    clock.advance(3600)
    assert second.run(second.daemon.dispatcher.run_once()) == 0
    assert second.run(second.daemon.followups.run_due()) == 0
    assert counts(fake) == after
    second.stop()

    clock.advance(3600)
    third = make_daemon(overrides, clock=clock, folder=tmp_path)
    third.pause_worker()  # the test takes the worker's turn itself: whatever is due runs now
    assert third.run(third.daemon.dispatcher.run_once()) == 0
    assert third.run(third.daemon.followups.run_due()) == 0
    final = counts(fake)
    logs = third.api.get(third.url("/api/v1/calls/logs"), params={"limit": 100}, timeout=10).json()["logs"]
    with capsys.disabled():
        print(f"\n[reliability] restart: sends per pending kind before the restart {before}, after it {at_restart},"
              f" after a second restart {final}; log rows {len(logs)}")
    assert final == after
    assert sorted(r["status"] for r in logs) == ["initiated"] * 6
