"""What Twilio is told to say, and what Twilio tells alertd back (status, press of 1),
through the real twilio library and FakeTwilio over real sockets. Every test runs on
SQLite and on PostgreSQL."""
from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest
import requests

from alertd.clock import FakeClock
from conftest import both_backends, twilio_overrides

NUMBER = "+15551234567"

pytestmark = both_backends


def notify(d, **body) -> dict:
    r = d.notify({"to": NUMBER, "message": "Server room too hot.", **body})
    assert r.status_code == 200, r.text
    return r.json()["calls"][0]


def row(d, log_id: int) -> dict:
    return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]


def twiml_of(fake, sid: str) -> ET.Element:
    (rec,) = [c for c in fake.calls if c.sid == sid]
    return ET.fromstring(rec.form["Twiml"])


def form_of(fake, sid: str) -> dict:
    (rec,) = [r for r in fake.requests if r.sid == sid]
    return rec.form


# --- TwiML ------------------------------------------------------------------

def test_the_call_says_the_message_with_voice_language_and_repeat(twilio_daemon):
    call = notify(twilio_daemon, voice="woman", language="es-MX", repeat=3, message="Servidor caído.")
    root = twiml_of(twilio_daemon.fake, call["call_sid"])
    assert root.tag == "Response" and root.find("Gather") is None
    (say,) = root
    assert say.tag == "Say" and say.text == "Servidor caído."
    assert say.attrib == {"voice": "Polly.Mia", "language": "es-MX", "loop": "3"}


@pytest.mark.parametrize("voice, language, sent", [
    ("alice", None, "Polly.Joanna"), ("man", None, "Polly.Matthew"), ("woman", "en-GB", "Polly.Amy"),
    ("man", "de-DE", "Polly.Hans"), ("Polly.Brian", "en-GB", "Polly.Brian"),
])
def test_the_reference_voices_map_to_voices_twilio_still_serves(twilio_daemon, voice, language, sent):
    body = {"voice": voice} | ({"language": language} if language else {})
    call = notify(twilio_daemon, **body)
    (say,) = twiml_of(twilio_daemon.fake, call["call_sid"])
    assert say.get("voice") == sent and say.get("language") == language and say.get("loop") is None


def test_the_message_is_escaped_not_spliced_into_the_twiml(twilio_daemon):
    message = 'Disk </Say><Hangup/> & "quotes" <100%>'
    call = notify(twilio_daemon, message=message)
    (say,) = twiml_of(twilio_daemon.fake, call["call_sid"])
    assert say.text == message


def test_with_gather_the_whole_message_plays_inside_gather_then_the_press_one_prompt(twilio_daemon):
    call = notify(twilio_daemon, gather=True, repeat=2, language="en-US")
    root = twiml_of(twilio_daemon.fake, call["call_sid"])
    gather = root[0]
    assert gather.tag == "Gather" and gather.get("numDigits") == "1"
    action = urllib.parse.urlsplit(gather.get("action"))
    assert action.path == "/twilio/gather" and f"log_id={call['log_id']}" in action.query
    message, prompt = gather
    assert (message.tag, message.text, message.get("loop")) == ("Say", "Server room too hot.", "2")
    assert (prompt.tag, prompt.text) == ("Say", "Press 1 to acknowledge.")
    assert message.get("language") == prompt.get("language") == "en-US"


def test_a_message_too_long_to_send_inline_is_fetched_from_a_signed_url(twilio_daemon):
    fake, text = twilio_daemon.fake, "Long alert. " * 340  # 4,080 chars: the TwiML is over Twilio's 4,000
    call = notify(twilio_daemon, message=text[:4000], gather=True)
    form = form_of(fake, call["call_sid"])
    assert "Twiml" not in form and urllib.parse.urlsplit(form["Url"]).path == "/twilio/twiml"
    status, _ = fake.post_signed(form["Url"], {"CallSid": call["call_sid"]}, signature="bad")
    assert status == 403
    status, reply = fake.press(call["call_sid"])  # fetches the TwiML from the URL, signed, then presses 1
    assert status == 200 and "Acknowledged" in reply
    assert row(twilio_daemon, call["log_id"])["acknowledged"] is True


# --- the press of 1 -----------------------------------------------------------

def test_pressing_one_acknowledges_the_row_and_hears_a_confirmation(make_daemon, fake_twilio):
    clock = FakeClock(datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc))
    d = make_daemon(twilio_overrides(fake_twilio), clock=clock)
    call = notify(d, gather=True)
    before = row(d, call["log_id"])
    assert before["acknowledged"] is False and before["acknowledged_at"] is None
    clock.advance(42)
    status, reply = fake_twilio.press(call["call_sid"], "1")
    assert status == 200
    (say,) = ET.fromstring(reply)
    assert say.tag == "Say" and say.text == "Acknowledged. Thank you. Goodbye."
    after = row(d, call["log_id"])
    assert after["acknowledged"] is True
    assert after["acknowledged_at"] == "2026-03-02T14:30:42.000Z"


def test_another_key_does_not_acknowledge_and_asks_again(twilio_daemon):
    call = notify(twilio_daemon, gather=True)
    status, reply = twilio_daemon.fake.press(call["call_sid"], "7")
    assert status == 200
    gather = ET.fromstring(reply).find("Gather")
    assert gather is not None and gather.find("Say").text == "Press 1 to acknowledge."
    assert row(twilio_daemon, call["log_id"])["acknowledged"] is False


def test_a_confirmation_is_spoken_in_the_calls_language(twilio_daemon):
    call = notify(twilio_daemon, gather=True, language="es-MX")
    _, reply = twilio_daemon.fake.press(call["call_sid"])
    (say,) = ET.fromstring(reply)
    assert say.text == "Confirmado. Gracias. Adiós." and say.get("language") == "es-MX"


# --- status callbacks -------------------------------------------------------------

def test_call_status_callbacks_update_the_row(twilio_daemon):
    fake, call = twilio_daemon.fake, notify(twilio_daemon)
    seen = []
    for status in ("ringing", "in-progress", "completed"):
        assert fake.complete_call(call["call_sid"], status)[0] == 200
        seen.append(row(twilio_daemon, call["log_id"])["call_status"])
    assert seen == ["ringing", "in-progress", "completed"]


def test_sms_status_callbacks_update_the_row(twilio_daemon):
    fake, call = twilio_daemon.fake, notify(twilio_daemon, action_type="sms")
    assert fake.sms_status(call["sms_sid"], "sent")[0] == 200
    assert row(twilio_daemon, call["log_id"])["sms_status"] == "sent"
    assert fake.sms_status(call["sms_sid"], "delivered")[0] == 200
    got = row(twilio_daemon, call["log_id"])
    assert (got["sms_status"], got["call_status"]) == ("delivered", None)


def test_both_channels_keep_their_own_status(twilio_daemon):
    fake, call = twilio_daemon.fake, notify(twilio_daemon, action_type="both")
    fake.complete_call(call["call_sid"], "no-answer")
    fake.sms_status(call["sms_sid"], "undelivered", ErrorCode="30003")
    got = row(twilio_daemon, call["log_id"])
    assert (got["call_status"], got["sms_status"]) == ("no-answer", "undelivered")


def test_a_late_ringing_does_not_overwrite_completed(twilio_daemon):
    fake, call = twilio_daemon.fake, notify(twilio_daemon, action_type="both")
    fake.complete_call(call["call_sid"], "completed")
    fake.sms_status(call["sms_sid"], "delivered")
    assert fake.complete_call(call["call_sid"], "ringing")[0] == 200
    assert fake.sms_status(call["sms_sid"], "sent")[0] == 200
    got = row(twilio_daemon, call["log_id"])
    assert (got["call_status"], got["sms_status"]) == ("completed", "delivered")


def test_a_callback_that_beats_the_stored_sid_still_lands(make_daemon, fake_twilio):
    """Twilio can call back before alertd has stored its answer to the create
    request; the log id in the URL places the callback all the same."""
    fake = fake_twilio
    d = make_daemon(twilio_overrides(fake), clock=FakeClock())  # frozen: the retry never comes due
    fake.script(NUMBER, [("http", 503)])  # no sid stored yet: the first attempt failed
    r = d.notify({"to": NUMBER, "message": "x"})
    (call,) = r.json()["calls"]
    assert call["status"] == "queued" and call["call_sid"] is None
    url = fake.requests[0].form["StatusCallback"]  # the URL alertd gave Twilio
    sid = "CA" + "f" * 32
    assert fake.post_signed(url, {"CallSid": sid, "CallStatus": "ringing", "AccountSid": fake.account_sid})[0] == 200
    got = row(d, call["log_id"])
    assert (got["call_sid"], got["call_status"]) == (sid, "ringing")


# --- signatures ----------------------------------------------------------------------

def test_a_status_callback_with_a_bad_signature_is_refused_and_changes_nothing(twilio_daemon):
    fake, call = twilio_daemon.fake, notify(twilio_daemon)
    url = form_of(fake, call["call_sid"])["StatusCallback"]
    params = {"CallSid": call["call_sid"], "CallStatus": "completed", "AccountSid": fake.account_sid}
    status, text = fake.post_signed(url, params, signature="bad")
    assert status == 403
    assert text == '{"ok":false,"error":"Invalid Twilio signature.","code":403}'
    assert requests.post(url, data=params, timeout=10).status_code == 403  # no signature at all
    assert row(twilio_daemon, call["log_id"])["call_status"] is None


def test_a_signature_for_another_log_id_is_refused(twilio_daemon):
    """The log id is part of the signed URL: a valid signature cannot be replayed onto another row."""
    fake = twilio_daemon.fake
    first, second = notify(twilio_daemon), notify(twilio_daemon)
    url = form_of(fake, first["call_sid"])["StatusCallback"]
    params = {"CallSid": first["call_sid"], "CallStatus": "completed"}
    other = url.replace(f"log_id={first['log_id']}", f"log_id={second['log_id']}")
    r = requests.post(other, data=params, timeout=10, headers={"X-Twilio-Signature": fake.sign(url, params)})
    assert r.status_code == 403
    assert row(twilio_daemon, second["log_id"])["call_status"] is None


def test_a_press_with_a_bad_signature_does_not_acknowledge(twilio_daemon):
    fake, call = twilio_daemon.fake, notify(twilio_daemon, gather=True)
    action = twiml_of(fake, call["call_sid"]).find("Gather").get("action")
    status, _ = fake.post_signed(action, {"CallSid": call["call_sid"], "Digits": "1"}, signature="bad")
    assert status == 403
    assert row(twilio_daemon, call["log_id"])["acknowledged"] is False


# --- the simulator -----------------------------------------------------------------

def test_the_simulator_plays_status_and_a_press_of_one_through_the_callbacks(daemon):
    (call,) = daemon.notify({"to": NUMBER, "message": "x", "gather": True, "action_type": "both"}).json()["calls"]
    assert call["call_sid"].startswith("CA") and call["sms_sid"].startswith("SM")

    def done():
        got = row(daemon, call["log_id"])
        return got if got["call_status"] == "completed" and got["sms_status"] == "delivered" else None

    got = daemon.wait_until(done, timeout=5, what="the simulated call to complete")
    assert got["acknowledged"] is True and got["acknowledged_at"]


# --- the history of status callbacks ---------------------------------------------------

def history(d, log_id: int) -> list[tuple]:
    rows = d.run(d.daemon.store.status.history([log_id])).get(log_id, [])
    return [(r["channel"], r["status"], r["at"], r["error_code"]) for r in rows]


def test_every_status_callback_is_kept_with_its_time_late_ones_too(make_daemon, fake_twilio):
    clock = FakeClock(datetime(2026, 3, 2, 15, 0, 1, tzinfo=timezone.utc))
    d = make_daemon(twilio_overrides(fake_twilio), clock=clock)
    call = notify(d, action_type="both")
    start = clock.timestamp()
    for status, step in (("initiated", 0), ("ringing", 2), ("in-progress", 6), ("completed", 22)):
        clock.set(datetime.fromtimestamp(start + step, timezone.utc))
        assert fake_twilio.complete_call(call["call_sid"], status)[0] == 200
    assert fake_twilio.sms_status(call["sms_sid"], "undelivered", ErrorCode="30003")[0] == 200
    clock.advance(5)
    assert fake_twilio.complete_call(call["call_sid"], "ringing")[0] == 200  # late, out of order
    assert history(d, call["log_id"]) == [
        ("call", "initiated", start, None), ("call", "ringing", start + 2, None),
        ("call", "in-progress", start + 6, None), ("call", "completed", start + 22, None),
        ("sms", "undelivered", start + 22, 30003), ("call", "ringing", start + 27, None)]
    assert row(d, call["log_id"])["call_status"] == "completed"  # the late one did not overwrite it


def test_a_callback_for_an_unknown_log_row_keeps_nothing(twilio_daemon):
    assert twilio_daemon.run(twilio_daemon.daemon.callbacks.call_status(999, "CA1", "ringing")) is False
    assert history(twilio_daemon, 999) == []
