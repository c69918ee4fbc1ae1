"""SignalWire through its LaML API: the twilio library pointed at a fake
space over a socket; callbacks signed with the project's signing key."""
from __future__ import annotations

import pytest

from fake_signalwire import FakeSignalWire
from provider_steps import final_status_acted_on_once, notify, row

TO, FROM = "+15551230001", "+15550000002"


@pytest.fixture
def signalwire():
    with FakeSignalWire() as fake:
        yield fake


@pytest.fixture
def daemon(make_daemon, signalwire):
    return make_daemon({"providers": [{
        "name": "sw", "kind": "signalwire", "project_id": signalwire.account_sid, "api_token": signalwire.auth_token,
        "signing_key": signalwire.signing_key, "api_base_url": signalwire.base_url, "numbers": [FROM],
        "timeout": "5s"}]})


def test_a_call_and_its_press_of_one_go_through_the_laml_api(daemon, signalwire):
    log_id = notify(daemon, TO, gather=True)["log_id"]
    (call,) = signalwire.wait_for(1, "call")
    assert call.form["From"] == FROM and "<Gather" in call.form["Twiml"]
    assert call.form["StatusCallback"].startswith(daemon.url(f"/providers/sw/status?log_id={log_id}"))
    status, reply = signalwire.press(call.sid, "1")
    assert status == 200 and "Thank you" in reply
    assert signalwire.complete_call(call.sid, "completed")[0] == 200
    got = row(daemon, log_id)
    assert got["acknowledged"] is True and got["call_status"] == "completed" and got["provider"] == "sw"


def test_twilios_header_name_is_accepted_as_an_alias(daemon, signalwire):
    log_id = notify(daemon, TO)["log_id"]
    (call,) = signalwire.wait_for(1, "call")
    url = call.form["StatusCallback"]
    params = {"CallSid": call.sid, "CallStatus": "busy"}
    r = signalwire._http.post(url, data=params, headers={"X-Twilio-Signature": signalwire.sign(url, params)})
    assert r.status_code == 200 and row(daemon, log_id)["call_status"] == "busy"


def test_a_callback_signed_with_the_api_token_instead_of_the_signing_key_is_refused(daemon, signalwire):
    log_id = notify(daemon, TO, action_type="sms")["log_id"]
    (msg,) = signalwire.wait_for(1, "sms")
    url = msg.form["StatusCallback"]
    params = {"MessageSid": msg.sid, "MessageStatus": "delivered"}
    from twilio.request_validator import RequestValidator
    forged = RequestValidator(signalwire.auth_token).compute_signature(url, params)
    assert signalwire.post_signed(url, params, signature=forged)[0] == 403
    assert signalwire.sms_status(msg.sid, "delivered")[0] == 200
    assert row(daemon, log_id)["sms_status"] == "delivered"


def test_an_sms_reply_through_signalwire_acknowledges(daemon, signalwire):
    log_id = notify(daemon, TO, action_type="sms")["log_id"]
    signalwire.wait_for(1, "sms")
    status, reply = signalwire.inbound_sms(daemon.url("/providers/sw/sms"), TO, "ok", FROM)
    assert status == 200 and "Acknowledged" in reply
    assert row(daemon, log_id)["acknowledged"] is True


def test_a_final_status_delivered_three_times_is_kept_once_and_places_one_retry(daemon, signalwire):
    log_id = notify(daemon, TO, retry={"times": 2, "every": "10m"})["log_id"]
    call = signalwire.wait_for(1, "call")[0]
    final_status_acted_on_once(daemon, log_id, lambda: signalwire.complete_call(call.sid, "no-answer"))
