"""Live call routing through a providers: entry other than Twilio: the same flow under
/providers/NAME/voice, each request signed the way that provider signs (SignalWire:
Twilio's algorithm with the signing key; Telnyx: Ed25519 over timestamp|body), answered
with TwiML-compatible XML (LaML, TeXML) at each step; forged requests refused.
Every test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
import requests

from alertd.clock import FakeClock
from conftest import CALLER_ID, both_backends
from fake_signalwire import FakeSignalWire
from fake_telnyx import FakeTelnyx

PRIMARY, SECONDARY, MANAGER = "+15551230002", "+15551230003", "+15551230001"
CALLER = "+15559998888"
ROTATIONS = {"ops": {"members": ["oncall_primary", "oncall_secondary"], "shift": "1w",
                     "start": "2026-01-05T09:00"}}
GREETING = "You have reached the on-call engineer for Acme. Connecting you now."

pytestmark = both_backends


@dataclass
class Carrier:
    """One provider as the flow sees it: its providers: entry, how it posts a webhook
    (``post(url, params, forge=False)``) and how its SMS read."""
    name: str
    entry: dict
    post: Callable[..., tuple[int, str]]
    fake: object
    sms_to: Callable[[object], str]
    sms_text: Callable[[object], str]
    sent_sms: Callable[[], list]


def signalwire(fake: FakeSignalWire, clock) -> Carrier:
    def post(url, params, forge=False):
        # forged: signed with the API token, which is not what SignalWire signs with
        from twilio.request_validator import RequestValidator
        signature = RequestValidator(fake.auth_token).compute_signature(url, params) if forge else None
        return fake.post_signed(url, params, signature=signature)
    entry = {"name": "sw", "kind": "signalwire", "project_id": fake.account_sid, "api_token": fake.auth_token,
             "signing_key": fake.signing_key, "api_base_url": fake.base_url}
    return Carrier("sw", entry, post, fake, lambda m: m.form["To"], lambda m: m.form["Body"],
                   lambda: fake.messages)


def telnyx(fake: FakeTelnyx, clock) -> Carrier:
    fake.clock = clock.timestamp  # the signatures' timestamps are the daemon's now
    entry = {"name": "tx", "kind": "telnyx", "api_key": fake.api_key, "public_key": fake.public_key,
             "application_id": fake.application_id, "api_base_url": fake.base_url}
    return Carrier("tx", entry, lambda url, params, forge=False: fake.post_form(url, params, forge=forge), fake,
                   lambda m: m.body["to"], lambda m: m.body["text"], lambda: fake.of_kind("sms"))


FAKES = {"signalwire": (FakeSignalWire, signalwire), "telnyx": (FakeTelnyx, telnyx)}


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 1, 7, 17, 0, tzinfo=timezone.utc))  # a Wednesday: oncall_primary's week


@pytest.fixture(params=sorted(FAKES))
def carrier(request, clock):
    fake_class, make_carrier = FAKES[request.param]
    with fake_class() as fake:
        yield make_carrier(fake, clock)


def make(make_daemon, carrier: Carrier, clock, **entry):
    inbound = {CALLER_ID: {"rotation": "ops", "greeting": GREETING, "ring": "20s",
                           "then": ["oncall_secondary", "manager"], "language": "en-US", **entry}}
    provider = {**carrier.entry, "numbers": [CALLER_ID], "timeout": "5s"}
    return make_daemon({"providers": [provider], "rotations": ROTATIONS, "inbound": inbound}, clock=clock)


def call_in(d, carrier: Carrier, forge: bool = False) -> tuple[int, str, str]:
    """The provider's request when a call comes in to the number; (status, XML, call sid)."""
    sid = "CA" + uuid.uuid4().hex
    code, text = carrier.post(d.url(f"/providers/{carrier.name}/voice"), {
        "CallSid": sid, "From": CALLER, "To": CALLER_ID, "CallStatus": "ringing", "Direction": "inbound"},
        forge=forge)
    return code, text, sid


def xml(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    return root


def dial_outcome(carrier: Carrier, twiml: str, sid: str, status: str, duration: int = 0) -> str:
    action = xml(twiml).find("Dial").get("action")
    code, text = carrier.post(action, {"CallSid": sid, "From": CALLER, "To": CALLER_ID, "CallStatus": "in-progress",
                                       "DialCallStatus": status, "DialCallDuration": str(duration)})
    assert code == 200, text
    return text


def dialled(twiml: str) -> list[str]:
    dial = xml(twiml).find("Dial")
    assert dial is not None, twiml
    return [n.text for n in dial.findall("Number")]


def log_row(d, sid: str) -> dict:
    call = d.run(d.daemon.store.reach.call_by_sid(sid))
    return d.api.get(d.url(f"/api/v1/calls/logs/{call['log_id']}"), timeout=10).json()["log"]


def test_a_call_through_the_provider_is_greeted_rung_through_to_whoever_is_on_call_and_logged(
        make_daemon, carrier, clock):
    d = make(make_daemon, carrier, clock)
    code, twiml, sid = call_in(d, carrier)
    assert code == 200
    say, dial = xml(twiml)
    assert (say.tag, say.text, say.get("language")) == ("Say", GREETING, "en-US")
    assert dialled(twiml) == [PRIMARY] and dial.get("timeout") == "20"
    action = urllib.parse.urlsplit(dial.get("action"))
    assert action.path == f"/providers/{carrier.name}/voice/dial" and "step=0" in action.query
    assert log_row(d, sid)["status"] == "ringing"

    assert [e.tag for e in xml(dial_outcome(carrier, twiml, sid, "completed", duration=42))] == ["Hangup"]
    row = log_row(d, sid)
    assert (row["source"], row["status"]) == ("inbound", "answered")
    assert row["message"] == f"Inbound call from {CALLER}: answered by ops: oncall_primary ({PRIMARY}), 42 s"
    assert carrier.sent_sms() == []  # nothing sent: the call was answered


def test_nobody_answering_through_the_provider_rings_each_fallback_then_voicemail_texts_the_rotation(
        make_daemon, carrier, clock):
    d = make(make_daemon, carrier, clock, voicemail={"escalate_after": "10m"})
    _, twiml, sid = call_in(d, carrier)
    twiml = dial_outcome(carrier, twiml, sid, "no-answer")
    assert dialled(twiml) == [SECONDARY]
    twiml = dial_outcome(carrier, twiml, sid, "busy")
    assert dialled(twiml) == [MANAGER]
    say, record, _ = xml(dial_outcome(carrier, twiml, sid, "no-answer"))
    assert say.text == "Nobody is available. Please leave a message after the tone."
    assert record.tag == "Record" and record.get("action").startswith(
        d.url(f"/providers/{carrier.name}/voice/recorded?"))

    recording = {"CallSid": sid, "RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed",
                 "RecordingUrl": "https://recordings.example/RE111.mp3", "RecordingDuration": "14"}
    code, bye = carrier.post(record.get("action"), recording)
    assert code == 200 and [e.tag for e in xml(bye)] == ["Say", "Hangup"]
    assert carrier.post(record.get("recordingStatusCallback"), recording)[0] == 200  # the same voicemail again
    assert log_row(d, sid)["status"] == "voicemail"

    (sms,) = carrier.fake.wait_for(1, "sms")
    assert carrier.sms_to(sms) == PRIMARY
    body = carrier.sms_text(sms)
    assert body.startswith(f"Voicemail for ops: oncall_primary from {CALLER} (14 s)\nListen: {d.url('/voicemail/')}")
    call = d.run(d.daemon.store.reach.call_by_sid(sid))
    assert d.run(d.daemon.store.logs.trigger(call["voicemail_trigger_id"]))["source"] == "inbound"
    # unacknowledged, it escalates like any trigger: the first fallback 10 minutes later
    clock.advance(timedelta(minutes=10))
    d.daemon.dispatcher.poke()
    second = carrier.fake.wait_for(2, "sms")[1]
    assert carrier.sms_to(second) == SECONDARY and carrier.sms_text(second) == body


def test_a_forged_request_to_the_providers_voice_webhook_is_refused(make_daemon, carrier, clock):
    d = make(make_daemon, carrier, clock)
    code, _, _ = call_in(d, carrier, forge=True)
    assert code == 403
    assert d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"] == []
    _, twiml, sid = call_in(d, carrier)
    action = xml(twiml).find("Dial").get("action")
    code, _ = carrier.post(action, {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "5"},
                           forge=True)
    assert code == 403 and log_row(d, sid)["status"] == "ringing"


def test_a_telnyx_voice_webhook_signed_more_than_five_minutes_ago_is_refused(make_daemon, clock):
    with FakeTelnyx() as fake:
        carrier = telnyx(fake, clock)
        d = make(make_daemon, carrier, clock)
        params = {"CallSid": "v3:" + uuid.uuid4().hex, "From": CALLER, "To": CALLER_ID}
        stale = int(clock.timestamp()) - 301
        assert fake.post_form(d.url("/providers/tx/voice"), params, timestamp=stale)[0] == 403
        assert d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"] == []
        code, twiml = fake.post_form(d.url("/providers/tx/voice"), params, timestamp=stale + 2)
        assert code == 200 and dialled(twiml) == [PRIMARY]


def test_a_signalwire_voicemail_is_heard_through_the_link_with_the_projects_credentials(make_daemon, clock):
    with FakeSignalWire() as fake:
        carrier = signalwire(fake, clock)
        d = make(make_daemon, carrier, clock, then=[], voicemail=True)
        _, twiml, sid = call_in(d, carrier)
        record = xml(dial_outcome(carrier, twiml, sid, "no-answer")).find("Record")
        audio = b"ID3 the boiler message"
        assert carrier.post(record.get("action"), {
            "CallSid": sid, "RecordingUrl": fake.recording_url("RE" + "3" * 32, audio), "RecordingDuration": "6",
            "RecordingStatus": "completed"})[0] == 200
        (sms,) = fake.wait_for(1, "sms")
        link = sms.form["Body"].split("Listen: ")[1].split("\n")[0]
        heard = requests.get(link, timeout=10)
        assert (heard.status_code, heard.content) == (200, audio)
