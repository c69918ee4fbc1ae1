"""A notify through the simulator and through the real twilio library, on SQLite and on PostgreSQL."""
from conftest import both_backends

pytestmark = both_backends


def test_notify_with_the_simulator_answers_like_the_reference(daemon):
    r = daemon.notify({"to": "+15551234567", "message": "Alert: No staff have clocked in.", "source": "timeclock"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True
    (call,) = body["calls"]
    assert call["to"] == "+15551234567" and call["type"] == "call" and call["status"] == "initiated"
    assert call["call_sid"].startswith("CA") and "sms_sid" not in call


def test_notify_through_twilio_reaches_the_fake(twilio_daemon):
    r = twilio_daemon.notify({"to": "5551234567", "message": "hi", "action_type": "both"})
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    assert call["call_sid"] == twilio_daemon.fake.calls[0].sid
    assert call["sms_sid"] == twilio_daemon.fake.messages[0].sid
