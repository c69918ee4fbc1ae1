"""Live call routing through Plivo (Plivo XML) and Vonage (NCCO): the same flow as through
Twilio, under /providers/NAME/voice, each request signed the way that provider signs
(Plivo: signature V3 with the auth token; Vonage: an HS256 JWT with the signature secret
whose payload_hash is the body's SHA-256), against a running daemon over loopback.
Every test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from alertd.clock import FakeClock
from conftest import CALLER_ID, both_backends
from fake_plivo import FakePlivo
from fake_vonage import FakeVonage

PRIMARY, SECONDARY, MANAGER = "+15551230002", "+15551230003", "+15551230001"
CALLER = "+15559998888"
ROTATIONS = {"ops": {"members": ["oncall_primary", "oncall_secondary"], "shift": "1w",
                     "start": "2026-01-05T09:00"}}
GREETING = "You have reached the on-call engineer for Acme. Connecting you now."
PROMPT = "Nobody is available. Please leave a message after the tone."

pytestmark = both_backends


class Plivo:
    """Plivo as the flow sees it: form posts signed with V3, Plivo XML answers."""
    name, kind = "pl", "plivo"
    UNANSWERED = "no-answer"

    def __init__(self, fake: FakePlivo, clock):
        self.fake = fake
        self.entry = {"name": self.name, "kind": self.kind, "auth_id": fake.auth_id, "auth_token": fake.auth_token,
                      "api_base_url": fake.base_url}

    def post(self, url: str, params: dict, forge: bool = False) -> tuple[int, str]:
        return self.fake.post(url, params, token="not-the-auth-token" if forge else None)

    def call_in(self, d, forge: bool = False) -> tuple[int, str, str]:
        sid = str(uuid.uuid4())  # Plivo's CallUUID; numbers without the plus, as Plivo writes them
        code, text = self.post(d.url(f"/providers/{self.name}/voice"), {
            "CallUUID": sid, "From": CALLER.lstrip("+"), "To": CALLER_ID.lstrip("+"), "CallStatus": "ringing",
            "Direction": "inbound", "Event": "StartApp"}, forge=forge)
        return code, text, sid

    @staticmethod
    def doc(text: str) -> ET.Element:
        root = ET.fromstring(text)
        assert root.tag == "Response", text
        return root

    def said(self, text: str) -> list[str]:
        return [e.text for e in self.doc(text) if e.tag == "Speak"]

    def dial(self, text: str) -> ET.Element:
        dial = self.doc(text).find("Dial")
        assert dial is not None, text
        return dial

    def dialled(self, text: str) -> list[str]:
        return ["+" + n.text for n in self.dial(text).findall("Number")]

    def ring_seconds(self, text: str) -> int:
        return int(self.dial(text).get("timeout"))

    def action(self, text: str) -> str:
        return self.dial(text).get("action")

    def outcome(self, text: str, sid: str, status: str, duration: int = 0, forge: bool = False) -> tuple[int, str]:
        """Plivo's request to the Dial's action when the dial ends."""
        params = {"CallUUID": sid, "From": CALLER.lstrip("+"), "To": CALLER_ID.lstrip("+"),
                  "CallStatus": "in-progress", "DialStatus": status, "DialALegUUID": sid,
                  "DialRingStatus": "true", "DialHangupCause": "NORMAL_CLEARING" if duration else "NO_ANSWER"}
        if duration:
            params.update(DialBLegUUID=str(uuid.uuid4()), DialBLegDuration=str(duration))
        return self.post(self.action(text), params, forge=forge)

    def ended(self, text: str) -> bool:
        return [e.tag for e in self.doc(text)] == ["Hangup"]

    def record(self, text: str) -> ET.Element:
        record = self.doc(text).find("Record")
        assert record is not None, text
        return record

    def record_url(self, text: str) -> str:
        return self.record(text).get("action")

    def leave_message(self, text: str, sid: str, seconds: int) -> tuple[int, str]:
        """The Record's action, then its callbackUrl with the same recording (both are sent)."""
        rec = {"CallUUID": sid, "RecordUrl": "https://media.plivo.com/v1/Account/MA/Recording/r1.mp3",
               "RecordingDuration": str(seconds), "RecordingDurationMs": str(seconds * 1000), "RecordingID": "r1"}
        code, bye = self.post(self.record_url(text), rec)
        assert self.post(self.record(text).get("callbackUrl"), rec)[0] == 200
        return code, bye

    def said_goodbye(self, text: str) -> bool:
        return [e.tag for e in self.doc(text)] == ["Speak", "Hangup"]

    def sms(self, n: int) -> list[tuple[str, str]]:
        return [(m.body["dst"], m.body["text"]) for m in self.fake.wait_for(n, "sms")]


class Vonage:
    """Vonage as the flow sees it: JSON posts with a signed JWT, NCCO answers."""
    name, kind = "vg", "vonage"
    UNANSWERED = "unanswered"

    def __init__(self, fake: FakeVonage, clock):
        fake.clock = clock.timestamp  # the JWTs' iat is the daemon's now
        self.fake = fake
        self.entry = {"name": self.name, "kind": self.kind, "application_id": fake.application_id,
                      "private_key": fake.private_key_pem, "signature_secret": fake.signature_secret,
                      "api_base_url": fake.base_url}

    def post(self, url: str, doc: dict, forge: bool = False) -> tuple[int, str]:
        return self.fake.post(url, doc, secret="not-the-signature-secret-0123456789abcdefghij" if forge else None)

    def call_in(self, d, forge: bool = False) -> tuple[int, str, str]:
        sid = str(uuid.uuid4())
        code, text = self.post(d.url(f"/providers/{self.name}/voice"), {
            "uuid": sid, "conversation_uuid": "CON-" + str(uuid.uuid4()), "from": CALLER.lstrip("+"),
            "to": CALLER_ID.lstrip("+")}, forge=forge)
        return code, text, sid

    @staticmethod
    def doc(text: str) -> list[dict]:
        ncco = orjson.loads(text)
        assert isinstance(ncco, list), text
        return ncco

    def said(self, text: str) -> list[str]:
        return [a["text"] for a in self.doc(text) if a["action"] == "talk"]

    def dial(self, text: str) -> dict:
        (connect,) = [a for a in self.doc(text) if a["action"] == "connect"]
        return connect

    def dialled(self, text: str) -> list[str]:
        return ["+" + e["number"] for e in self.dial(text)["endpoint"]]

    def ring_seconds(self, text: str) -> int:
        return self.dial(text)["timeout"]

    def action(self, text: str) -> str:
        connect = self.dial(text)
        assert connect["eventType"] == "synchronous" and connect["eventMethod"] == "POST"
        return connect["eventUrl"][0]

    def event(self, text: str, sid: str, status: str, forge: bool = False, **extra) -> tuple[int, str]:
        connect = self.dial(text)
        return self.post(self.action(text), {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, sid + connect["endpoint"][0]["number"])),
            "conversation_uuid": "CON-1", "status": status, "direction": "outbound",
            "to": connect["endpoint"][0]["number"], "from": connect.get("from", ""), **extra}, forge=forge)

    def outcome(self, text: str, sid: str, status: str, duration: int = 0, forge: bool = False) -> tuple[int, str]:
        """The connect's eventUrl as the rung leg goes: ringing, then its end state."""
        assert self.event(text, sid, "ringing")[0] == 200
        if status == "completed":
            assert self.event(text, sid, "answered")[0] == 200
            return self.event(text, sid, "completed", forge=forge, duration=str(duration),
                              start_time="2026-01-07T17:00:05.000Z", end_time="2026-01-07T17:00:47.000Z")
        return self.event(text, sid, status, forge=forge)

    def ended(self, text: str) -> bool:
        return self.doc(text) == []

    def record(self, text: str) -> dict:
        (record,) = [a for a in self.doc(text) if a["action"] == "record"]
        return record

    def record_url(self, text: str) -> str:
        return self.record(text)["eventUrl"][0]

    def leave_message(self, text: str, sid: str, seconds: int) -> tuple[int, str]:
        start = datetime(2026, 1, 7, 17, 1, tzinfo=timezone.utc)
        return self.post(self.record_url(text), {
            "start_time": start.isoformat().replace("+00:00", "Z"),
            "end_time": (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
            "recording_url": "https://api.nexmo.com/v1/files/aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
            "recording_uuid": str(uuid.uuid4()), "conversation_uuid": "CON-1", "size": 12222})

    def said_goodbye(self, text: str) -> bool:
        return [a["action"] for a in self.doc(text)] == ["talk"]

    def sms(self, n: int) -> list[tuple[str, str]]:
        return [("+" + m.body["to"], m.body["text"]) for m in self.fake.wait_for(n, "sms")]


CARRIERS = {"plivo": (FakePlivo, Plivo), "vonage": (FakeVonage, Vonage)}


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 1, 7, 17, 0, tzinfo=timezone.utc))  # a Wednesday: oncall_primary's week


@pytest.fixture(params=sorted(CARRIERS))
def carrier(request, clock):
    fake_class, adapter = CARRIERS[request.param]
    with fake_class() as fake:
        yield adapter(fake, clock)


def make(make_daemon, carrier, clock, **entry):
    inbound = {CALLER_ID: {"rotation": "ops", "greeting": GREETING, "ring": "20s",
                           "then": ["oncall_secondary", "manager"], "language": "en-US", **entry}}
    provider = {**carrier.entry, "numbers": [CALLER_ID], "timeout": "5s"}
    return make_daemon({"providers": [provider], "rotations": ROTATIONS, "inbound": inbound}, clock=clock)


def log_row(d, sid: str) -> dict:
    call = d.run(d.daemon.store.reach.call_by_sid(sid))
    return d.api.get(d.url(f"/api/v1/calls/logs/{call['log_id']}"), timeout=10).json()["log"]


def logs(d) -> list:
    return d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"]


def test_a_signed_call_is_greeted_rung_through_to_whoever_is_on_call_and_logged_answered(
        make_daemon, carrier, clock):
    d = make(make_daemon, carrier, clock)
    code, doc, sid = carrier.call_in(d)
    assert code == 200, doc
    assert carrier.said(doc) == [GREETING]
    assert carrier.dialled(doc) == [PRIMARY] and carrier.ring_seconds(doc) == 20
    action = urllib.parse.urlsplit(carrier.action(doc))
    assert action.path == f"/providers/{carrier.name}/voice/dial" and "step=0" in action.query
    # a call token where the signature does not cover the URL (Vonage), none where it does (Plivo)
    assert ("t" in dict(urllib.parse.parse_qsl(action.query))) == (carrier.kind == "vonage")
    row = log_row(d, sid)
    assert (row["source"], row["status"], row["to"]) == ("inbound", "ringing", CALLER_ID)

    code, answer = carrier.outcome(doc, sid, "completed", duration=42)
    assert code == 200 and carrier.ended(answer), answer
    row = log_row(d, sid)
    assert row["status"] == "answered"
    assert row["message"] == f"Inbound call from {CALLER}: answered by ops: oncall_primary ({PRIMARY}), 42 s"
    assert carrier.fake.of_kind("sms") == []  # nothing sent: the call was answered


def test_nobody_answering_rings_each_fallback_then_the_voicemail_texts_the_rotation_and_escalates(
        make_daemon, carrier, clock):
    d = make(make_daemon, carrier, clock, voicemail={"escalate_after": "10m"})
    _, doc, sid = carrier.call_in(d)
    code, doc = carrier.outcome(doc, sid, carrier.UNANSWERED)
    assert code == 200 and carrier.dialled(doc) == [SECONDARY] and carrier.said(doc) == []
    code, doc = carrier.outcome(doc, sid, "busy")
    assert code == 200 and carrier.dialled(doc) == [MANAGER]
    code, doc = carrier.outcome(doc, sid, "timeout")
    assert code == 200 and carrier.said(doc) == [PROMPT, "Thank you. Goodbye."]
    assert carrier.record_url(doc).startswith(d.url(f"/providers/{carrier.name}/voice/recorded?"))
    assert log_row(d, sid)["status"] == "ringing"

    code, bye = carrier.leave_message(doc, sid, 14)
    assert code == 200 and carrier.said_goodbye(bye), bye
    row = log_row(d, sid)
    assert row["status"] == "voicemail" and "voicemail of 14 s" in row["message"]

    ((to, body),) = carrier.sms(1)
    assert to == PRIMARY
    assert body.startswith(f"Voicemail for ops: oncall_primary from {CALLER} (14 s)\nListen: {d.url('/voicemail/')}")
    call = d.run(d.daemon.store.reach.call_by_sid(sid))
    assert d.run(d.daemon.store.logs.trigger(call["voicemail_trigger_id"]))["source"] == "inbound"
    # unacknowledged, it escalates like any trigger: the first fallback 10 minutes later
    clock.advance(timedelta(minutes=10))
    d.daemon.dispatcher.poke()
    assert carrier.sms(2)[1] == (SECONDARY, body)


def test_a_forged_request_is_refused_before_anything_is_read(make_daemon, carrier, clock):
    d = make(make_daemon, carrier, clock)
    code, _, _ = carrier.call_in(d, forge=True)
    assert code == 403
    assert logs(d) == []
    unsigned = d.api.post(d.url(f"/providers/{carrier.name}/voice"), data=b"{not even a form or JSON",
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code == 403 and logs(d) == []

    _, doc, sid = carrier.call_in(d)
    code, _ = carrier.outcome(doc, sid, "completed", duration=5, forge=True)
    assert code == 403 and log_row(d, sid)["status"] == "ringing"


def test_a_plivo_voicemail_is_transcribed_and_the_text_goes_in_the_sms(make_daemon, clock):
    with FakePlivo() as fake:
        carrier = Plivo(fake, clock)
        d = make(make_daemon, carrier, clock, then=[], voicemail={"transcribe": True})
        _, doc, sid = carrier.call_in(d)
        _, doc = carrier.outcome(doc, sid, "no-answer")
        record = carrier.record(doc)
        assert (record.get("transcriptionType"), record.get("transcriptionMethod")) == ("auto", "POST")
        assert record.get("maxLength") == "120" and record.get("playBeep") == "true"
        assert carrier.leave_message(doc, sid, 9)[0] == 200
        assert fake.of_kind("sms") == []  # waiting for the text
        assert carrier.post(record.get("transcriptionUrl"), {
            "transcription": "The boiler in building 4 is leaking.", "duration": "9", "call_uuid": sid,
            "recording_id": "r1", "transcription_charge": "0.05", "transcription_rate": "0.05"})[0] == 200
        ((to, body),) = carrier.sms(1)
        assert to == PRIMARY and '"The boiler in building 4 is leaking."' in body


def test_a_plivo_caller_who_hangs_up_while_ringing_is_logged_missed(make_daemon, clock):
    with FakePlivo() as fake:
        carrier = Plivo(fake, clock)
        d = make(make_daemon, carrier, clock, voicemail=True)
        _, doc, sid = carrier.call_in(d)
        code, text = carrier.post(carrier.action(doc), {"CallUUID": sid, "DialStatus": "no-answer",
                                                        "CallStatus": "completed", "DialRingStatus": "true"})
        assert code == 200 and carrier.ended(text)
        row = log_row(d, sid)
        assert row["status"] == "missed" and "hung up while ops: oncall_primary was rung" in row["message"]


def test_a_call_to_a_plivo_number_without_an_inbound_entry_is_rejected(make_daemon, clock):
    with FakePlivo() as fake:
        carrier = Plivo(fake, clock)
        d = make_daemon({"providers": [{**carrier.entry, "numbers": [CALLER_ID, "+15550000009"]}],
                         "inbound": {CALLER_ID: {"rotation": "ops"}}, "rotations": ROTATIONS}, clock=clock)
        code, text = carrier.post(d.url("/providers/pl/voice"), {"CallUUID": "u1", "From": CALLER.lstrip("+"),
                                                                  "To": "15550000009"})
        assert code == 200 and [(e.tag, e.get("reason")) for e in carrier.doc(text)] == [("Hangup", "rejected")]
        assert logs(d) == []


def test_a_vonage_group_step_rings_its_members_one_after_another(make_daemon, clock):
    """A connect rings one endpoint: a group's numbers are rung in turn, each for ``ring``;
    the leg's own news (ringing, answered) asks nothing of the call."""
    with FakeVonage() as fake:
        carrier = Vonage(fake, clock)
        d = make(make_daemon, carrier, clock, rotation=None, group="oncall", then=["manager"])
        _, doc, sid = carrier.call_in(d)
        assert carrier.dialled(doc) == [PRIMARY] and carrier.dial(doc)["from"] == CALLER_ID.lstrip("+")
        assert carrier.event(doc, sid, "started") == (200, "")
        code, doc = carrier.outcome(doc, sid, "timeout")
        assert code == 200 and carrier.dialled(doc) == [SECONDARY] and "n=1" in carrier.action(doc)
        code, answer = carrier.outcome(doc, sid, "completed", duration=30)
        assert code == 200 and carrier.ended(answer)
        row = log_row(d, sid)
        assert row["message"] == (f"Inbound call from {CALLER}: answered by group oncall: oncall_secondary ({SECONDARY}),"
                                  " 30 s")


def test_the_vonage_applications_event_url_is_acknowledged_and_a_tampered_body_refused(make_daemon, clock):
    with FakeVonage() as fake:
        carrier = Vonage(fake, clock)
        d = make(make_daemon, carrier, clock)
        _, doc, sid = carrier.call_in(d)
        event = {"uuid": sid, "status": "ringing", "direction": "inbound", "from": CALLER.lstrip("+"),
                 "to": CALLER_ID.lstrip("+")}
        assert carrier.post(d.url("/providers/vg/voice/event"), event) == (200, "")
        assert fake.post(carrier.action(doc), {"status": "completed", "duration": "9"}, tamper=True)[0] == 403
        stale = clock.timestamp() - 301
        assert fake.post(carrier.action(doc), {"status": "completed", "duration": "9"}, iat=stale)[0] == 403
        assert log_row(d, sid)["status"] == "ringing"


def test_a_vonage_caller_who_hangs_up_while_ringing_is_logged_missed(make_daemon, clock):
    """The rung leg is cancelled when the caller hangs up before anyone answers."""
    with FakeVonage() as fake:
        carrier = Vonage(fake, clock)
        d = make(make_daemon, carrier, clock, voicemail=True)
        _, doc, sid = carrier.call_in(d)
        code, text = carrier.outcome(doc, sid, "cancelled")
        assert code == 200 and carrier.ended(text)
        row = log_row(d, sid)
        assert row["status"] == "missed" and "hung up while ops: oncall_primary was rung" in row["message"]


def test_a_vonage_step_url_without_its_calls_token_is_refused_though_signed(make_daemon, clock):
    """Vonage's JWT covers the body, not the URL: the call in a step's URL is vouched for by its token."""
    with FakeVonage() as fake:
        carrier = Vonage(fake, clock)
        d = make(make_daemon, carrier, clock)
        _, doc, sid = carrier.call_in(d)
        action = urllib.parse.urlsplit(carrier.action(doc))
        query = dict(urllib.parse.parse_qsl(action.query))
        assert len(query.pop("t")) == 32
        _, other, other_sid = carrier.call_in(d)
        other_token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(carrier.action(other)).query))["t"]
        for t in (None, "0" * 32, other_token):
            url = action._replace(query=urllib.parse.urlencode({**query, **({"t": t} if t else {})})).geturl()
            assert carrier.post(url, {"status": "completed", "duration": "9"})[0] == 403
        assert log_row(d, sid)["status"] == "ringing" and log_row(d, other_sid)["status"] == "ringing"
