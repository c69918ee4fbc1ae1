"""The fake Twilio server behaves like Twilio for the real `twilio` client library."""

import asyncio
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest
import requests
from multidict import MultiDict
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from fake_twilio import FakeTwilio

# twilio 9.13's AsyncTwilioHttpClient passes aiohttp.BasicAuth, deprecated in aiohttp 3.14.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

FROM = "+15005550006"


@pytest.fixture
def fake():
    with FakeTwilio() as server:
        yield server


def sync_client(fake, token=None):
    client = Client(fake.account_sid, token or fake.auth_token)
    client.api.base_url = fake.base_url
    return client


async def async_client(fake, token=None):
    client = Client(fake.account_sid, token or fake.auth_token, http_client=AsyncTwilioHttpClient())
    client.api.base_url = fake.base_url
    return client


def raw_post(fake, to, kind="Calls"):
    url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/{kind}.json"
    return requests.post(url, data={"To": to, "From": FROM, "Twiml": "<Response/>"},
                         auth=(fake.account_sid, fake.auth_token), timeout=5)


class Receiver:
    """A tiny webhook receiver standing in for the system under test."""

    def __init__(self, token):
        self.validator, self.hits = RequestValidator(token), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                self.respond(MultiDict(urllib.parse.parse_qsl(body)))

            def do_GET(self):
                self.respond(MultiDict())

            def respond(self, params):
                url = receiver.url + self.path
                valid = receiver.validator.validate(url, params, self.headers.get("X-Twilio-Signature", ""))
                receiver.hits.append((self.command, self.path, params, valid))
                text = "<Response><Gather action='/gather'/></Response>" if "twiml" in self.path else "ok"
                self.send_response(200 if valid else 403)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)


@pytest.fixture
def receiver(fake):
    r = Receiver(fake.auth_token)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_sync_client_creates_call_and_sms(fake):
    client = sync_client(fake)
    call = client.calls.create(to="+15550100", from_=FROM, twiml="<Response><Say>hi</Say></Response>",
                               status_callback="http://127.0.0.1:1/cb",
                               status_callback_event=["answered", "completed"])
    msg = client.messages.create(to="+15550101", from_=FROM, body="disk full")
    assert call.sid.startswith("CA") and len(call.sid) == 34 and call.status == "queued"
    assert call.to == "+15550100" and call.date_created is not None
    assert msg.sid.startswith("SM") and msg.body == "disk full" and msg.status == "queued"
    assert [c.sid for c in fake.calls] == [call.sid] and [m.sid for m in fake.messages] == [msg.sid]
    assert fake.calls[0].form["StatusCallbackEvent"] == ["answered", "completed"]
    assert fake.messages[0].form["Body"] == "disk full"


def test_async_client_creates_call_and_sms(fake):
    async def main():
        client = await async_client(fake)
        try:
            call = await client.calls.create_async(to="+15550102", from_=FROM, twiml="<Response/>")
            msg = await client.messages.create_async(to="+15550103", from_=FROM, body="hello")
        finally:
            await client.http_client.close()
        return call, msg

    call, msg = asyncio.run(main())
    assert call.sid == fake.wait_for(1, kind="call")[0].sid
    assert msg.sid == fake.wait_for(1, kind="sms")[0].sid


def test_wrong_credentials_are_refused_with_401(fake):
    with pytest.raises(TwilioRestException) as err:
        sync_client(fake, token="wrong").messages.create(to="+15550104", from_=FROM, body="x")
    assert err.value.status == 401 and err.value.code == 20003
    assert fake.requests[0].outcome == "unauthorized" and fake.messages == []


def test_scripted_503_fails_once_then_succeeds(fake):
    fake.script("+15550105", [("http", 503)])
    client = sync_client(fake)
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(to="+15550105", from_=FROM, twiml="<Response/>")
    assert err.value.status == 503 and err.value.code == 20500
    assert client.calls.create(to="+15550105", from_=FROM, twiml="<Response/>").sid.startswith("CA")
    assert [r.status for r in fake.requests] == [503, 201]


def test_scripted_429_carries_retry_after_header(fake):
    fake.script("+15550106", [("http", 429, 7)])
    response = raw_post(fake, "+15550106")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["code"] == 20429


def test_scripted_error_21211_surfaces_as_exception_code(fake):
    fake.script("+15550107", [("error", 21211, "The 'To' number +15550107 is not a valid phone number.")])
    with pytest.raises(TwilioRestException) as err:
        sync_client(fake).calls.create(to="+15550107", from_=FROM, twiml="<Response/>")
    assert err.value.status == 400 and err.value.code == 21211 and "+15550107" in err.value.msg


def test_permanent_number_always_fails(fake):
    fake.permanent("+15550108", code=21610)
    for _ in range(3):
        assert raw_post(fake, "+15550108", "Messages").json()["code"] == 21610
    assert fake.messages == []


def test_scripted_drop_is_a_client_connection_error(fake):
    fake.script("+15550109", [("drop",), ("drop",)])
    with pytest.raises(requests.ConnectionError):
        sync_client(fake).calls.create(to="+15550109", from_=FROM, twiml="<Response/>")

    async def main():
        client = await async_client(fake)
        try:
            await client.calls.create_async(to="+15550109", from_=FROM, twiml="<Response/>")
        finally:
            await client.http_client.close()

    with pytest.raises(aiohttp.ClientError):
        asyncio.run(main())
    assert [r.outcome for r in fake.requests] == ["drop", "drop"]


def test_scripted_timeout_delays_then_succeeds(fake):
    fake.script("+15550110", [("timeout", 0.3)])
    with pytest.raises(requests.Timeout):
        requests.post(f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Calls.json",
                      data={"To": "+15550110"}, auth=(fake.account_sid, fake.auth_token), timeout=0.1)
    fake.wait_for(1, kind="call", timeout=2)


def test_max_concurrent_throttles_excess_requests_with_429(fake):
    fake.latency, fake.max_concurrent = 0.2, 5

    async def main():
        client = await async_client(fake)
        try:
            return await asyncio.gather(
                *(client.calls.create_async(to=f"+1555020{i:02}", from_=FROM, twiml="<Response/>")
                  for i in range(20)), return_exceptions=True)
        finally:
            await client.http_client.close()

    results = asyncio.run(main())
    throttled = [r for r in results if isinstance(r, TwilioRestException)]
    assert all(e.status == 429 and e.code == 20429 for e in throttled)
    assert len(throttled) >= 10 and len(results) - len(throttled) >= 5
    assert len(fake.calls) == 20 - len(throttled)


def test_fail_ratio_is_seeded_and_mixes_failures_with_successes(fake):
    def run():
        fake.reset()
        fake.fail_ratio, fake.seed = 0.5, 42
        outcomes = []
        for i in range(40):
            try:
                outcomes.append(raw_post(fake, f"+1555030{i:02}").status_code)
            except requests.ConnectionError:
                outcomes.append("drop")
        return outcomes

    first = run()
    assert first == run()
    assert 201 in first and set(first) - {201} <= {500, 503, 429, "drop"} and len(set(first)) >= 3


def test_wait_for_times_out_with_assertion_error(fake):
    with pytest.raises(AssertionError):
        fake.wait_for(1, timeout=0.05)


def test_post_signed_signature_validates_and_bad_signature_does_not(fake, receiver):
    params = {"CallSid": "CA" + "1" * 32, "StatusCallbackEvent": ["answered", "completed"]}
    assert fake.post_signed(receiver.url + "/hook?x=1", params) == (200, "ok")
    assert fake.post_signed(receiver.url + "/hook", params, signature="bad")[0] == 403
    assert [hit[3] for hit in receiver.hits] == [True, False]
    assert receiver.hits[0][2].getall("StatusCallbackEvent") == ["answered", "completed"]


def test_press_posts_digits_to_inline_gather_action(fake, receiver):
    twiml = f'<Response><Gather action="{receiver.url}/gather?alert=7" numDigits="1"><Say>ack?</Say></Gather></Response>'
    call = sync_client(fake).calls.create(to="+15550111", from_=FROM, twiml=twiml)
    assert fake.press(call.sid, "1") == (200, "ok")
    method, path, params, valid = receiver.hits[-1]
    assert (method, path, valid) == ("POST", "/gather?alert=7", True)
    assert params["Digits"] == "1" and params["CallSid"] == call.sid and params["To"] == "+15550111"


def test_press_fetches_twiml_from_url_and_resolves_relative_action(fake, receiver):
    call = sync_client(fake).calls.create(to="+15550112", from_=FROM, url=receiver.url + "/twiml")
    assert fake.press(call.sid, "2")[0] == 200
    assert [(h[1], h[3]) for h in receiver.hits] == [("/twiml", True), ("/gather", True)]
    assert receiver.hits[-1][2]["Digits"] == "2"


def test_status_callbacks_reach_the_urls_given_at_creation(fake, receiver):
    client = sync_client(fake)
    call = client.calls.create(to="+15550113", from_=FROM, twiml="<Response/>",
                               status_callback=receiver.url + "/call-status")
    msg = client.messages.create(to="+15550114", from_=FROM, body="x",
                                 status_callback=receiver.url + "/sms-status")
    assert fake.complete_call(call.sid, "completed", AnsweredBy="human")[0] == 200
    assert fake.sms_status(msg.sid, "undelivered", ErrorCode="30003")[0] == 200
    assert fake.inbound_sms(receiver.url + "/inbound", "+15550114", "ACK 7", FROM)[0] == 200
    (_, _, c, ok1), (_, _, m, ok2), (_, _, i, ok3) = receiver.hits
    assert ok1 and ok2 and ok3
    assert (c["CallSid"], c["CallStatus"], c["AnsweredBy"]) == (call.sid, "completed", "human")
    assert (m["MessageSid"], m["MessageStatus"], m["ErrorCode"]) == (msg.sid, "undelivered", "30003")
    assert (i["Body"], i["From"], i["NumMedia"]) == ("ACK 7", "+15550114", "0")
