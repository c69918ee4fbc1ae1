"""Telnyx: TeXML calls and Messaging v2 against a fake Telnyx over a socket;
webhooks signed with Ed25519 (a key made here), forged or stale ones refused."""
from __future__ import annotations

import time

import pytest

from fake_telnyx import FakeTelnyx
from provider_steps import final_status_acted_on_once, notify, row

TO, FROM = "+15551230001", "+15550000003"


@pytest.fixture
def telnyx():
    with FakeTelnyx() as fake:
        yield fake


@pytest.fixture
def daemon(make_daemon, telnyx):
    return make_daemon({"providers": [{
        "name": "tx", "kind": "telnyx", "api_key": telnyx.api_key, "public_key": telnyx.public_key,
        "application_id": telnyx.application_id, "api_base_url": telnyx.base_url, "numbers": [FROM],
        "timeout": "5s"}]})


def test_a_call_goes_out_as_texml_with_our_callbacks_and_its_press_of_one_acknowledges(daemon, telnyx):
    log_id = notify(daemon, TO, gather=True, repeat=2)["log_id"]
    call = telnyx.wait_for(1, "call")[0]
    assert call.body["From"] == FROM and call.body["To"] == TO
    assert "<Gather" in call.body["Texml"] and 'loop="2"' in call.body["Texml"]
    assert call.body["StatusCallback"].startswith(f"{daemon.base_url}/providers/tx/status?log_id={log_id}")
    assert telnyx.call_status(call.sid, "in-progress")[0] == 200
    status, reply = telnyx.press(call.sid, "1")
    assert status == 200 and "Acknowledged" in reply
    assert telnyx.call_status(call.sid, "completed")[0] == 200
    got = row(daemon, log_id)
    assert got["acknowledged"] is True and got["call_status"] == "completed"
    assert got["provider"] == "tx" and got["call_sid"] == call.sid


def test_an_sms_goes_out_through_messaging_and_a_reply_of_ok_acknowledges(daemon, telnyx):
    log_id = notify(daemon, TO, action_type="sms", message="Door open")["log_id"]
    msg = telnyx.wait_for(1, "sms")[0]
    assert msg.body["from"] == FROM and msg.body["text"] == "Door open"
    assert telnyx.sms_status(msg.sid, "delivered")[0] == 200
    assert telnyx.inbound_sms(daemon.url("/providers/tx/sms"), TO, " ok ")[0] == 200
    got = row(daemon, log_id)
    assert got["sms_status"] == "delivered" and got["acknowledged"] is True and got["sms_provider"] == "tx"
    # the webhook's answer cannot carry a reply: it is sent as a message of its own
    confirmation = telnyx.wait_for(2, "sms")[1]
    assert (confirmation.body["to"], confirmation.body["from"]) == (TO, FROM)
    assert confirmation.body["text"].startswith("Acknowledged: ")


def test_forged_and_stale_signatures_are_refused_and_change_nothing(daemon, telnyx):
    log_id = notify(daemon, TO)["log_id"]
    call = telnyx.wait_for(1, "call")[0]
    assert telnyx.call_status(call.sid, "completed", forge=True)[0] == 403
    assert telnyx.call_status(call.sid, "completed", timestamp=int(time.time()) - 301)[0] == 403
    assert telnyx.call_status(call.sid, "ringing", timestamp=int(time.time()) - 200)[0] == 200
    assert row(daemon, log_id)["call_status"] == "ringing"


def test_an_invalid_number_is_a_permanent_failure_with_telnyxs_code(daemon, telnyx):
    telnyx.script(TO, [("error", "40310")])
    sent = notify(daemon, TO, expect=400, action_type="sms")
    assert sent["status"] == "failed"
    got = row(daemon, sent["log_id"])
    assert got["error"]["code"] == "40310" and got["provider"] == "tx"


def test_a_final_status_delivered_three_times_is_kept_once_and_places_one_retry(daemon, telnyx):
    log_id = notify(daemon, TO, retry={"times": 2, "every": "10m"})["log_id"]
    call = telnyx.wait_for(1, "call")[0]
    final_status_acted_on_once(daemon, log_id, lambda: telnyx.call_status(call.sid, "no-answer"))
