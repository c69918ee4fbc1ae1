"""Plivo: the Call API with an answer URL serving Plivo XML, and the Message
API, against a fake Plivo over a socket; callbacks with real V3 signatures."""
from __future__ import annotations

import pytest

from fake_plivo import FakePlivo
from provider_steps import final_status_acted_on_once, notify, row

TO, FROM = "+15551230001", "+15550000005"


@pytest.fixture
def plivo():
    with FakePlivo() as fake:
        yield fake


@pytest.fixture
def daemon(make_daemon, plivo):
    return make_daemon({"providers": [{
        "name": "pl", "kind": "plivo", "auth_id": plivo.auth_id, "auth_token": plivo.auth_token,
        "api_base_url": plivo.base_url, "numbers": [FROM], "timeout": "5s"}]})


def test_the_answer_url_speaks_inside_get_input_and_a_press_of_one_acknowledges(daemon, plivo):
    log_id = notify(daemon, TO, gather=True, repeat=3, voice="man", language="en-GB")["log_id"]
    call = plivo.wait_for(1, "call")[0]
    assert call.body["from"] == FROM and call.body["hangup_url"].startswith(daemon.url("/providers/pl/status"))
    get_input = plivo.answer(call.sid).find("GetInput")
    speak, ask = get_input
    assert get_input.get("inputType") == "dtmf" and get_input.get("numDigits") == "1"
    assert speak.text == "Server room too hot." and speak.attrib == {"voice": "MAN", "language": "en-GB",
                                                                     "loop": "3"}
    status, reply = plivo.press(call.sid, "1")
    assert status == 200 and "Thank you" in reply
    assert plivo.hangup(call.sid, "completed")[0] == 200
    got = row(daemon, log_id)
    assert got["acknowledged"] is True and got["call_status"] == "completed" and got["provider"] == "pl"


def test_a_timed_out_call_is_no_answer_in_alertds_words(daemon, plivo):
    log_id = notify(daemon, TO)["log_id"]
    call = plivo.wait_for(1, "call")[0]
    assert plivo.hangup(call.sid, "timeout")[0] == 200
    assert row(daemon, log_id)["call_status"] == "no-answer"


def test_an_sms_reply_of_one_acknowledges_and_is_answered_in_plivo_xml(daemon, plivo):
    log_id = notify(daemon, TO, action_type="sms")["log_id"]
    msg = plivo.wait_for(1, "sms")[0]
    assert plivo.message_status(msg.sid, "delivered")[0] == 200
    status, reply = plivo.inbound_sms(daemon.url("/providers/pl/sms"), TO, "1")
    assert status == 200 and "<Message" in reply and "Acknowledged" in reply
    got = row(daemon, log_id)
    assert got["sms_status"] == "delivered" and got["acknowledged"] is True


def test_a_callback_signed_with_another_token_is_refused(daemon, plivo):
    log_id = notify(daemon, TO)["log_id"]
    call = plivo.wait_for(1, "call")[0]
    assert plivo.hangup(call.sid, "completed", token="someone-elses-token")[0] == 403
    assert row(daemon, log_id)["call_status"] is None


def test_a_401_is_retried_and_a_400_about_the_number_is_not(daemon, plivo):
    plivo.script(TO, [("http", 401)])
    plivo.script("+15551230002", [("error", None)])
    assert notify(daemon, TO, action_type="sms")["status"] == "queued"  # our credentials: another try may work
    assert notify(daemon, "+15551230002", expect=400, action_type="sms")["status"] == "failed"


def test_a_final_status_delivered_three_times_is_kept_once_and_places_one_retry(daemon, plivo):
    log_id = notify(daemon, TO, retry={"times": 2, "every": "10m"})["log_id"]
    call = plivo.wait_for(1, "call")[0]
    final_status_acted_on_once(daemon, log_id, lambda: plivo.hangup(call.sid, "no-answer"))
