"""Vonage: Voice API calls with an NCCO and Messages API SMS against a fake
Vonage over a socket, with a real RS256 application JWT; webhooks signed
with HS256 and payload_hash, forged, tampered or stale ones refused."""
from __future__ import annotations

import time

import pytest

from fake_vonage import FakeVonage
from provider_steps import final_status_acted_on_once, notify, row

TO, FROM = "+15551230001", "+15550000004"


@pytest.fixture
def vonage():
    with FakeVonage() as fake:
        yield fake


@pytest.fixture
def daemon(make_daemon, vonage, tmp_path):
    (tmp_path / "vonage.key").write_text(vonage.private_key_pem)
    return make_daemon({"providers": [{
        "name": "vg", "kind": "vonage", "application_id": vonage.application_id,
        "private_key_file": str(tmp_path / "vonage.key"), "signature_secret": vonage.signature_secret,
        "api_base_url": vonage.base_url, "numbers": [FROM], "timeout": "5s"}]})


def test_a_call_speaks_with_barge_in_and_a_press_of_one_acknowledges(daemon, vonage):
    log_id = notify(daemon, TO, gather=True, repeat=2, language="en-GB")["log_id"]
    call = vonage.wait_for(1, "call")[0]
    assert call.body["from"] == {"type": "phone", "number": FROM[1:]}
    talk, ask, inp = call.body["ncco"]
    assert talk == {"action": "talk", "text": "Server room too hot.", "bargeIn": True, "language": "en-GB",
                    "loop": 2}
    assert ask["bargeIn"] is True and inp["type"] == ["dtmf"] and inp["dtmf"]["maxDigits"] == 1
    assert vonage.event(call.sid, "answered")[0] == 200
    status, reply = vonage.press(call.sid, "1")
    assert status == 200 and "Thank you" in reply
    assert vonage.event(call.sid, "completed")[0] == 200
    got = row(daemon, log_id)
    assert got["acknowledged"] is True and got["call_status"] == "completed" and got["provider"] == "vg"


def test_an_unanswered_call_is_stored_in_alertds_words_with_vonages_kept_beside(daemon, vonage):
    log_id = notify(daemon, TO)["log_id"]
    call = vonage.wait_for(1, "call")[0]
    assert vonage.event(call.sid, "unanswered")[0] == 200
    assert row(daemon, log_id)["call_status"] == "no-answer"  # what follow-ups retry on, as for Twilio
    (kept,) = daemon.run(daemon.daemon.store.status.history([log_id]))[log_id]
    assert (kept["status"], kept["provider_status"]) == ("no-answer", "unanswered")


def test_an_sms_and_a_reply_of_ack_acknowledge_through_the_messages_api(daemon, vonage):
    log_id = notify(daemon, TO, action_type="sms")["log_id"]
    msg = vonage.wait_for(1, "sms")[0]
    assert msg.body["channel"] == "sms" and msg.body["to"] == TO[1:]
    assert vonage.message_status(msg.sid, "delivered")[0] == 200
    assert vonage.inbound_sms(daemon.url("/providers/vg/sms"), TO, "ACK")[0] == 200
    got = row(daemon, log_id)
    assert got["sms_status"] == "delivered" and got["acknowledged"] is True
    confirmation = vonage.wait_for(2, "sms")[1]
    assert (confirmation.body["to"], confirmation.body["from"]) == (TO[1:], FROM[1:])
    assert confirmation.body["text"].startswith("Acknowledged: ")


def test_forged_tampered_and_stale_webhooks_are_refused(daemon, vonage):
    log_id = notify(daemon, TO)["log_id"]
    call = vonage.wait_for(1, "call")[0]
    assert vonage.event(call.sid, "completed", secret="not-the-secret-0123456789abcdefghijklmnop")[0] == 403
    assert vonage.event(call.sid, "completed", tamper=True)[0] == 403
    assert vonage.event(call.sid, "completed", iat=time.time() - 301)[0] == 403
    assert row(daemon, log_id)["call_status"] is None


def test_an_event_url_without_its_row_token_is_refused(daemon, vonage):
    log_id = notify(daemon, TO)["log_id"]
    vonage.wait_for(1, "call")
    url = daemon.url(f"/providers/vg/status?log_id={log_id}&channel=call&t=guess")
    assert vonage.post(url, {"uuid": "x", "status": "completed"})[0] == 403


def test_a_final_status_delivered_three_times_is_kept_once_and_places_one_retry(daemon, vonage):
    log_id = notify(daemon, TO, retry={"times": 2, "every": "10m"})["log_id"]
    call = vonage.wait_for(1, "call")[0]
    final_status_acted_on_once(daemon, log_id, lambda: vonage.event(call.sid, "unanswered"))
