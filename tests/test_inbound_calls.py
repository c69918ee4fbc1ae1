"""Live call routing end to end: signed inbound webhooks from the fake Twilio (Twilio's
own signature algorithm), the TwiML at each step, fallbacks, voicemail becoming a trigger.
Every test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import re
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest
import requests

from alertd import oncall
from alertd.clock import FakeClock
from conftest import CALLER_ID, both_backends, twilio_overrides

PRIMARY, SECONDARY, MANAGER = "+15551230002", "+15551230003", "+15551230001"
CALLER = "+15559998888"
OTHER_NUMBER = "+15557650000"  # the account's, with no inbound entry
ROTATIONS = {"ops": {"members": ["oncall_primary", "oncall_secondary"], "shift": "1w",
                     "start": "2026-01-05T09:00"}}
GREETING = "You have reached the on-call engineer for Acme. Connecting you now."

pytestmark = both_backends


def inbound(**entry) -> dict:
    return {CALLER_ID: {"rotation": "ops", "greeting": GREETING, "ring": "20s",
                        "then": ["oncall_secondary", "manager"], "language": "en-US", **entry}}


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 1, 7, 17, 0, tzinfo=timezone.utc))  # a Wednesday: oncall_primary's week


def make(make_daemon, fake, clock, **entry):
    overrides = twilio_overrides(fake)
    overrides["provider"]["numbers"] = [CALLER_ID, OTHER_NUMBER]
    d = make_daemon({**overrides, "rotations": ROTATIONS, "inbound": inbound(**entry)}, clock=clock)
    d.fake = fake
    return d


def call_in(d, sid: str | None = None, to: str = CALLER_ID, signature: str | None = None) -> tuple[int, str]:
    """What Twilio sends when a call comes in to one of the account's numbers."""
    sid = sid or "CA" + uuid.uuid4().hex
    d.call_sid = sid
    params = {"AccountSid": d.fake.account_sid, "CallSid": sid, "From": CALLER, "Caller": CALLER, "To": to,
              "Called": to, "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    return d.fake.post_signed(d.url("/twilio/voice"), params, signature=signature)


def xml(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    return root


def dial_outcome(d, twiml: str, status: str, duration: int = 0, call_status: str = "in-progress") -> str:
    """Twilio posting a <Dial>'s outcome to its action URL; returns the next TwiML."""
    action = xml(twiml).find("Dial").get("action")
    code, text = d.fake.post_signed(action, {
        "AccountSid": d.fake.account_sid, "CallSid": d.call_sid, "From": CALLER, "To": CALLER_ID,
        "CallStatus": call_status, "DialCallStatus": status, "DialCallDuration": str(duration),
        "DialCallSid": "CA" + uuid.uuid4().hex})
    assert code == 200, text
    return text


def dialled(twiml: str) -> tuple[list[str], dict]:
    dial = xml(twiml).find("Dial")
    assert dial is not None, twiml
    return [n.text for n in dial.findall("Number")], dial.attrib


def log_row(d) -> dict:
    call = d.run(d.daemon.store.reach.call_by_sid(d.call_sid))
    return d.api.get(d.url(f"/api/v1/calls/logs/{call['log_id']}"), timeout=10).json()["log"]


def test_a_call_is_greeted_and_rung_through_to_whoever_is_on_call(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock)
    code, twiml = call_in(d)
    assert code == 200
    say, dial = xml(twiml)
    assert (say.tag, say.text, say.get("language"), say.get("voice")) == ("Say", GREETING, "en-US", "Polly.Joanna")
    numbers, attrib = dialled(twiml)
    assert numbers == [PRIMARY]
    assert attrib["timeout"] == "20" and attrib["answerOnBridge"] == "true"
    action = urllib.parse.urlsplit(attrib["action"])
    assert action.path == "/twilio/voice/dial" and "step=0" in action.query
    assert log_row(d)["status"] == "ringing"

    after = dial_outcome(d, twiml, "completed", duration=42)
    assert [e.tag for e in xml(after)] == ["Hangup"]
    row = log_row(d)
    assert (row["source"], row["type"], row["status"], row["to"]) == ("inbound", "inbound", "answered", CALLER_ID)
    assert row["message"] == f"Inbound call from {CALLER}: answered by ops: oncall_primary ({PRIMARY}), 42 s"
    assert fake_twilio.calls == [] and fake_twilio.messages == []  # nothing sent: the call was answered


def test_an_override_takes_the_call(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock)
    d.run(oncall.add_override(d.config, d.daemon.store, "ops", "manager", timedelta(hours=8), clock.now()))
    _, twiml = call_in(d)
    assert dialled(twiml)[0] == [MANAGER]
    # the fallbacks follow; the manager, rung already, is not rung twice
    assert dialled(dial_outcome(d, twiml, "no-answer"))[0] == [SECONDARY]


def test_nobody_answering_rings_each_fallback_then_voicemail_texts_the_rotation_and_escalates(
        make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock, voicemail={"transcribe": True, "escalate_after": "10m"})
    _, twiml = call_in(d)
    twiml = dial_outcome(d, twiml, "no-answer")
    numbers, attrib = dialled(twiml)
    assert numbers == [SECONDARY] and "step=1" in attrib["action"]
    assert xml(twiml)[0].tag == "Dial"  # the greeting is said once, at the start
    twiml = dial_outcome(d, twiml, "busy")
    assert dialled(twiml)[0] == [MANAGER]
    twiml = dial_outcome(d, twiml, "no-answer")
    say, record, _ = xml(twiml)
    assert say.text == "Nobody is available. Please leave a message after the tone."
    assert record.tag == "Record" and record.get("transcribe") == "true"
    assert record.get("maxLength") == "120" and record.get("playBeep") == "true"

    audio = b"ID3 the freezer message"
    recording = {"AccountSid": fake_twilio.account_sid, "CallSid": d.call_sid, "RecordingSid": "RE" + "1" * 32,
                 "RecordingUrl": fake_twilio.recording_url("RE" + "1" * 32, audio), "RecordingStatus": "completed",
                 "RecordingDuration": "14"}
    code, bye = fake_twilio.post_signed(record.get("action"), recording)
    assert code == 200 and [e.tag for e in xml(bye)] == ["Say", "Hangup"]
    assert fake_twilio.post_signed(record.get("recordingStatusCallback"), recording)[0] == 200
    assert log_row(d)["status"] == "voicemail"
    assert fake_twilio.messages == []  # waiting for the transcription
    code, _ = fake_twilio.post_signed(record.get("transcribeCallback"), {
        **recording, "TranscriptionSid": "TR" + "2" * 32, "TranscriptionStatus": "completed",
        "TranscriptionText": "The freezer alarm in room 4 is going off."})
    assert code == 200

    (sms,) = fake_twilio.wait_for(1, "sms")
    assert sms.form["To"] == PRIMARY
    body = sms.form["Body"]
    assert body.startswith(f"Voicemail for ops: oncall_primary from {CALLER} (14 s)")
    assert '"The freezer alarm in room 4 is going off."' in body and recording["RecordingUrl"] not in body
    # the link: alertd fetches the MP3 with the account's credentials, which the on-call person has not
    link = re.search(r"Listen: (\S+)", body).group(1)
    assert link.startswith(d.url("/voicemail/")) and body.endswith("\nReply 1 to acknowledge.")
    heard = requests.get(link, timeout=10)
    assert (heard.status_code, heard.content, heard.headers["content-type"]) == (200, audio, "audio/mpeg")
    assert requests.get(link[:-2] + "xx", timeout=10).status_code == 404
    assert requests.get(link.partition("?")[0], timeout=10).status_code == 404
    call = d.run(d.daemon.store.reach.call_by_sid(d.call_sid))
    trigger = d.run(d.daemon.store.logs.trigger(call["voicemail_trigger_id"]))
    assert trigger["source"] == "inbound"

    # unacknowledged: 10 minutes later the first fallback is texted, like any escalating trigger
    clock.advance(timedelta(minutes=10))
    d.daemon.dispatcher.poke()
    second = fake_twilio.wait_for(2, "sms")[1]
    assert second.form["To"] == SECONDARY and second.form["Body"] == body
    # a reply of 1 from the on-call person acknowledges it: the manager is never texted
    code, _ = fake_twilio.inbound_sms(d.url("/twilio/sms"), PRIMARY, "1", CALLER_ID)
    assert code == 200
    assert d.run(d.daemon.store.logs.trigger(trigger["trigger_id"]))["acknowledged_at"] is not None
    clock.advance(timedelta(minutes=10))
    assert d.run(d.daemon.followups.run_due()) == 0
    assert len(fake_twilio.messages) == 2
    # the transcription arriving again (Twilio retries) notifies nobody twice
    fake_twilio.post_signed(record.get("transcribeCallback"), {**recording, "TranscriptionStatus": "completed",
                                                               "TranscriptionText": "again"})
    assert len(fake_twilio.messages) == 2


def test_without_a_transcription_the_voicemail_goes_with_the_link_when_the_wait_is_over(
        make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock, then=[], voicemail={"transcribe": True})
    _, twiml = call_in(d)
    record = xml(dial_outcome(d, twiml, "no-answer")).find("Record")
    recording = {"CallSid": d.call_sid, "RecordingUrl": "https://api.twilio.com/rec/RE9", "RecordingDuration": "5",
                 "RecordingStatus": "completed"}
    fake_twilio.post_signed(record.get("recordingStatusCallback"), recording)
    d.pause_worker()
    assert d.run(d.daemon.inbound.run_due()) == 0
    clock.advance(timedelta(seconds=119))
    assert d.run(d.daemon.inbound.run_due()) == 0
    clock.advance(timedelta(seconds=1))
    assert d.run(d.daemon.inbound.run_due()) == 1
    (sms,) = fake_twilio.wait_for(1, "sms")
    assert sms.form["To"] == PRIMARY
    assert re.fullmatch(rf"Voicemail for ops: oncall_primary from \{CALLER} \(5 s\)\n"
                        rf"Listen: {re.escape(d.url('/voicemail/'))}\d+\?t=\S+\nReply 1 to acknowledge\.",
                        sms.form["Body"])
    # a recording somewhere other than the provider's API host is not fetched with its credentials
    link = sms.form["Body"].split("Listen: ")[1].split("\n")[0]
    assert requests.get(link, timeout=10).status_code == 502
    assert d.run(d.daemon.inbound.run_due()) == 0 and d.run(d.daemon.inbound.next_due_at()) is None


def test_without_voicemail_nobody_answering_says_goodbye_and_logs_a_missed_call(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock, then=["manager"], greeting=None, language="de-DE")
    _, twiml = call_in(d)
    assert [e.tag for e in xml(twiml)] == ["Dial"]
    twiml = dial_outcome(d, dial_outcome(d, twiml, "no-answer"), "failed")
    say, hang = xml(twiml)
    assert (say.get("language"), say.get("voice"), hang.tag) == ("de-DE", "Polly.Marlene", "Hangup")
    row = log_row(d)
    assert (row["status"], row["message"]) == ("missed", f"Inbound call from {CALLER}: nobody answered")


def test_a_caller_who_hangs_up_while_ringing_is_a_missed_call(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock, voicemail=True)
    _, twiml = call_in(d)
    after = dial_outcome(d, twiml, "canceled", call_status="completed")
    assert [e.tag for e in xml(after)] == ["Hangup"]
    row = log_row(d)
    assert row["status"] == "missed" and "hung up while ops: oncall_primary was rung" in row["message"]


def test_a_webhook_twilio_repeats_is_one_call_in_the_log(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock)
    first = call_in(d, sid="CA" + "7" * 32)
    assert call_in(d, sid="CA" + "7" * 32) == first
    assert [r["source"] for r in d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"]] == ["inbound"]


def test_a_call_to_an_account_number_without_an_inbound_entry_is_rejected(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock)
    code, twiml = call_in(d, to=OTHER_NUMBER)
    assert code == 200 and [e.tag for e in xml(twiml)] == ["Reject"]
    assert d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"] == []


def test_unsigned_or_replayed_requests_are_refused(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock)
    assert call_in(d, signature="bad")[0] == 403
    assert requests.post(d.url("/twilio/voice"), data={"CallSid": "CA1", "To": CALLER_ID}, timeout=10).status_code == 403
    assert d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"] == []
    _, twiml = call_in(d)
    action = xml(twiml).find("Dial").get("action")
    params = {"CallSid": d.call_sid, "DialCallStatus": "completed", "DialCallDuration": "5"}
    other_step = action.replace("step=0", "step=1")
    r = requests.post(other_step, data=params, timeout=10, headers={"X-Twilio-Signature": fake_twilio.sign(action, params)})
    assert r.status_code == 403 and log_row(d)["status"] == "ringing"


def test_a_group_rings_at_once_and_the_log_names_the_member_who_picked_up(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock, rotation=None, group="oncall", then=["manager"])
    _, twiml = call_in(d)
    numbers = xml(twiml).find("Dial").findall("Number")
    assert [n.text for n in numbers] == [PRIMARY, SECONDARY]
    assert all(n.get("statusCallbackEvent") == "answered" for n in numbers)
    code, _ = fake_twilio.post_signed(numbers[1].get("statusCallback"), {
        "AccountSid": fake_twilio.account_sid, "CallSid": "CA" + uuid.uuid4().hex, "ParentCallSid": d.call_sid,
        "CallStatus": "in-progress", "To": SECONDARY, "From": CALLER})
    assert code == 200
    dial_outcome(d, twiml, "completed", duration=7)
    assert log_row(d)["message"] == (f"Inbound call from {CALLER}: answered by group oncall: oncall_secondary"
                                     f" ({SECONDARY}), 7 s")


def test_a_caller_who_leaves_no_message_is_a_missed_call_and_nobody_is_texted(make_daemon, fake_twilio, clock):
    d = make(make_daemon, fake_twilio, clock, then=[], voicemail=True)
    _, twiml = call_in(d)
    record = xml(dial_outcome(d, twiml, "no-answer")).find("Record")
    code, _ = fake_twilio.post_signed(record.get("action"), {"CallSid": d.call_sid, "Digits": "hangup"})
    assert code == 200
    row = log_row(d)
    assert (row["status"], row["message"]) == ("missed", f"Inbound call from {CALLER}: nobody answered;"
                                               " no message left")
    assert fake_twilio.messages == []
