"""The voicemail's listening link for a call through Telnyx, Plivo or Vonage: alertd fetches
the recording named by the (signed) recording callback and streams it on, with the
provider's credentials only at that provider's own host (Plivo: Basic with the auth id
and token; Vonage: the application's JWT; Telnyx: none, its URLs are pre-signed), and
answers 502 when the provider will not hand it over. Daemon and fakes over loopback; the tests of
a voicemail run on SQLite and on PostgreSQL."""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import jwt
import pytest
import requests
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from alertd.clock import FakeClock
from alertd.inbound import listen
from conftest import both_backends
from fake_plivo import FakePlivo
from fake_provider import FakeProvider
from fake_telnyx import FakeTelnyx
from fake_vonage import FakeVonage
from test_inbound_plivo_vonage import PRIMARY, Plivo, Vonage, make
from test_inbound_providers import call_in, dial_outcome, telnyx, xml

AUDIO = b"ID3\x04 the freezer in room 4 is at minus 2"


class Elsewhere(FakeProvider):
    """A host that is no provider's: serves recordings to anyone, and notes what it was sent."""
    name = "elsewhere"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{name}", self._recording)

    async def _recording(self, request: web.Request) -> web.Response:
        return self.recording(request, True)

    def error(self, status: int, code, message: str) -> web.Response:
        return web.Response(status=status, text=message)

    def url(self, name: str, audio: bytes) -> str:
        self.recordings[name] = audio
        return f"{self.base_url}/{name}"


class TelnyxVoicemail:
    kind = "telnyx"

    def __init__(self, fake: FakeTelnyx, clock):
        self.fake, self.carrier = fake, telnyx(fake, clock)
        self.entry, self.secret = self.carrier.entry, fake.api_key

    def voicemail(self, d, recording_url: str) -> None:
        _, twiml, sid = call_in(d, self.carrier)
        record = xml(dial_outcome(self.carrier, twiml, sid, "no-answer")).find("Record")
        assert self.carrier.post(record.get("recordingStatusCallback"), {
            "CallSid": sid, "RecordingSid": "35094891-3290-4142-b2c2-b2eda57534cf", "RecordingStatus": "completed",
            "RecordingUrl": recording_url, "RecordingDuration": "6"})[0] == 200

    def link(self) -> str:
        (sms,) = self.fake.wait_for(1, "sms")
        assert sms.body["to"] == PRIMARY
        return sms.body["text"].split("Listen: ")[1].split("\n")[0]

    def recording_url(self, audio: bytes) -> str:
        return self.fake.recording_url("rec-1.mp3", audio)

    def refuse(self) -> None:
        self.fake.expired = True  # ten minutes after the call

    def sent_credentials(self, headers: dict) -> bool:
        return "Authorization" in headers


class PlivoVoicemail:
    kind = "plivo"

    def __init__(self, fake: FakePlivo, clock):
        self.fake, self.carrier = fake, Plivo(fake, clock)
        self.entry, self.secret = self.carrier.entry, fake.auth_token

    def voicemail(self, d, recording_url: str) -> None:
        _, doc, sid = self.carrier.call_in(d)
        _, doc = self.carrier.outcome(doc, sid, "no-answer")
        assert self.carrier.post(self.carrier.record(doc).get("callbackUrl"), {
            "CallUUID": sid, "RecordUrl": recording_url, "RecordingDuration": "6", "RecordingDurationMs": "6000",
            "RecordingID": "r1"})[0] == 200

    def link(self) -> str:
        ((to, body),) = self.carrier.sms(1)
        assert to == PRIMARY
        return body.split("Listen: ")[1].split("\n")[0]

    def recording_url(self, audio: bytes) -> str:
        return self.fake.recording_url("r1", audio)

    def refuse(self) -> None:  # the auth token was rotated in Plivo's console, not in alertd's config
        self.fake._auth = "Basic " + base64.b64encode(f"{self.fake.auth_id}:rotated".encode()).decode()

    def sent_credentials(self, headers: dict) -> bool:
        return "Authorization" in headers


class VonageVoicemail:
    kind = "vonage"

    def __init__(self, fake: FakeVonage, clock):
        self.fake, self.carrier = fake, Vonage(fake, clock)
        self.entry, self.secret = self.carrier.entry, fake.signature_secret

    def voicemail(self, d, recording_url: str) -> None:
        _, doc, sid = self.carrier.call_in(d)
        _, doc = self.carrier.outcome(doc, sid, self.carrier.UNANSWERED)
        assert self.carrier.post(self.carrier.record_url(doc), {
            "start_time": "2026-01-07T17:01:00Z", "end_time": "2026-01-07T17:01:06Z",
            "recording_url": recording_url, "recording_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
            "conversation_uuid": "CON-1", "size": len(AUDIO)})[0] == 200

    def link(self) -> str:
        ((to, body),) = self.carrier.sms(1)
        assert to == PRIMARY
        return body.split("Listen: ")[1].split("\n")[0]

    def recording_url(self, audio: bytes) -> str:
        return self.fake.recording_url("aaaaaaaa-bbbb-cccc-dddd-0123456789ab", audio)

    def refuse(self) -> None:  # the application's key pair was replaced in Vonage's dashboard
        self.fake.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()

    def sent_credentials(self, headers: dict) -> bool:
        return "Authorization" in headers


KINDS = {"telnyx": (FakeTelnyx, TelnyxVoicemail), "plivo": (FakePlivo, PlivoVoicemail),
         "vonage": (FakeVonage, VonageVoicemail)}


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 1, 7, 17, 0, tzinfo=timezone.utc))  # a Wednesday: oncall_primary's week


@pytest.fixture(params=sorted(KINDS))
def provider(request, clock):
    fake_class, adapter = KINDS[request.param]
    with fake_class() as fake:
        yield adapter(fake, clock)


@both_backends
def test_the_link_plays_the_recording_the_signed_callback_named_with_the_providers_own_credentials(
        make_daemon, provider, clock, structlog_output):
    d = make(make_daemon, provider, clock, then=[], voicemail=True)
    provider.voicemail(d, provider.recording_url(AUDIO))
    link = provider.link()
    assert link.startswith(d.url("/voicemail/")) and "?t=" in link

    heard = requests.get(link, timeout=10)
    assert (heard.status_code, heard.content) == (200, AUDIO)
    (sent,) = provider.fake.recording_headers
    auth = sent.get("Authorization", "")
    if provider.kind == "telnyx":  # pre-signed: the API key goes nowhere but Telnyx's API
        assert auth == "" and provider.secret not in str(sent)
    elif provider.kind == "plivo":
        assert auth == "Basic " + base64.b64encode(f"{provider.fake.auth_id}:{provider.secret}".encode()).decode()
    else:  # the application's RS256 JWT, verifiable with its public key
        claims = jwt.decode(auth.removeprefix("Bearer "), provider.fake.public_key, algorithms=["RS256"])
        assert claims["application_id"] == provider.fake.application_id

    provider.refuse()
    refused = requests.get(link, timeout=10)
    assert refused.status_code == 502
    assert ("10 minutes" in refused.text) == (provider.kind == "telnyx"), refused.text
    assert len(provider.fake.recording_headers) == 2
    assert requests.get(link + "x", timeout=10).status_code == 404  # the token is the key

    logged = structlog_output.getvalue()
    assert "voicemail recording unavailable" in logged
    assert provider.secret not in logged and link.partition("?t=")[2] not in logged


@both_backends
def test_a_recording_at_a_host_that_is_not_the_providers_is_fetched_without_its_credentials(
        make_daemon, provider, clock):
    with Elsewhere() as elsewhere:
        d = make(make_daemon, provider, clock, then=[], voicemail=True)
        provider.voicemail(d, elsewhere.url("r1.mp3", AUDIO))
        heard = requests.get(provider.link(), timeout=10)
        assert (heard.status_code, heard.content) == (200, AUDIO)
        (sent,) = elsewhere.recording_headers
        assert "Authorization" not in sent and provider.secret not in str(sent)
        assert provider.fake.recording_headers == []


@both_backends
def test_a_recording_url_that_is_not_http_is_not_fetched(make_daemon, clock):
    with FakePlivo() as fake:
        provider = PlivoVoicemail(fake, clock)
        d = make(make_daemon, provider, clock, then=[], voicemail=True)
        provider.voicemail(d, "file:///etc/passwd")
        assert requests.get(provider.link(), timeout=10).status_code == 502


def test_credentials_go_only_to_the_providers_own_hosts(make_daemon, clock):
    """Which requests the link would make for a URL: Plivo's auth at its API or media host,
    Vonage's JWT at its API hosts, over https; nothing at a look-alike host or over http."""
    with FakePlivo() as plivo, FakeVonage() as vonage:
        entries = [{**PlivoVoicemail(plivo, clock).entry, "numbers": ["+15550000005"], "api_base_url":
                    "https://api.plivo.com"},
                   {**VonageVoicemail(vonage, clock).entry, "numbers": ["+15550000004"],
                    "api_base_url": "https://api.nexmo.com"}]
        d = make_daemon({"providers": entries}, clock=clock)
    config = d.daemon.config

    def auth(url: str) -> list[str]:
        return [h.get("Authorization", "").split(" ")[0] for _, h in listen._requests(config, url)]
    assert auth("https://media.plivo.com/v1/Account/MA/Recording/r1.mp3") == ["Basic"]
    assert auth("https://api.plivo.com/v1/Account/MA/Recording/r1.mp3") == ["Basic"]
    assert auth("https://api.nexmo.com/v1/files/aaaa") == ["Bearer"]
    assert auth("https://api-us.vonage.com/v1/files/aaaa") == ["Bearer"]
    assert auth("https://api-eu.nexmo.com/v1/files/aaaa") == ["Bearer"]
    for elsewhere in ("https://media.plivo.com.example.net/r1.mp3", "http://media.plivo.com/r1.mp3",
                      "https://api.nexmo.com.example.net/v1/files/aaaa", "https://evil.example/api.nexmo.com/",
                      "https://s3.amazonaws.com/telnyx-recordings/r1.mp3?X-Amz-Signature=abc"):
        assert auth(elsewhere) == [""], elsewhere
