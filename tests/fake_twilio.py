"""A real (socket-level) fake of the Twilio REST API for tests and benchmarks.

Runs an aiohttp server on 127.0.0.1 in a background thread with its own event
loop. Point a twilio ``Client`` at it with ``client.api.base_url = fake.base_url``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import email.utils
import random
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import requests
from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from fake_provider import LoopbackServer

API = "/2010-04-01/Accounts/{sid}"
KINDS = {"Calls.json": ("call", "CA", "Calls"), "Messages.json": ("sms", "SM", "Messages")}
MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}


@dataclass
class FakeRequest:
    kind: str  # "call" | "sms"
    form: dict  # str -> str, or str -> list[str] for repeated keys
    outcome: str = "created"  # created | unauthorized | throttled | http | error | problem | drop
    status: int | None = 201  # HTTP status sent (None for drop)
    code: int | None = None  # Twilio error code, if any
    sid: str | None = None
    time: float = field(default_factory=time.monotonic)  # arrival, monotonic
    path: str = ""  # as sent, with the query string
    headers: dict = field(default_factory=dict)  # as sent
    raw_headers: list = field(default_factory=list)  # (name, value) as sent, in order, repeats kept
    body: bytes = b""  # as sent


def twilio_error(status: int, code: int, message: str | None = None, to: str = "") -> dict:
    message = message or MESSAGES.get(code, "Error").format(to=to)
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


class FakeTwilio(LoopbackServer):
    PREFIX = ""  # SignalWire's LaML API lives under /api/laml (fake_signalwire.py)
    SIGNATURE_HEADER = "X-Twilio-Signature"

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-token"):
        self.account_sid, self.auth_token = account_sid, auth_token
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.validator = RequestValidator(auth_token)
        self.latency = 0.0
        self.max_concurrent: int | None = None
        self.fail_ratio = 0.0
        self.seed = None
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._created = threading.Condition(self._lock)
        self._scripts: dict[str, collections.deque] = {}
        self._permanent: dict[str, int] = {}
        self._resources: dict[str, FakeRequest] = {}
        self._counts = collections.Counter()  # created resources per kind
        self.recordings: dict[str, bytes] = {}  # RE... -> the MP3 served, with the account's credentials only
        self._inflight = 0  # only touched on the server loop
        self._local = threading.local()

    # ---- controls -------------------------------------------------------
    @property
    def seed(self):
        return self._seed

    @seed.setter
    def seed(self, value):
        self._seed, self._rng = value, random.Random(value)

    def script(self, to_number: str, outcomes) -> None:
        with self._lock:
            self._scripts.setdefault(to_number, collections.deque()).extend(tuple(o) for o in outcomes)

    def permanent(self, to_number: str, code: int = 21211, message: str | None = None) -> None:
        with self._lock:
            self._permanent[to_number] = (code, message)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._permanent.clear()
            self.requests.clear()
            self._resources.clear()
            self._counts.clear()
        self.latency, self.max_concurrent, self.fail_ratio = 0.0, None, 0.0

    # ---- inspection -----------------------------------------------------
    def _created_list(self, kind=None):
        with self._lock:
            return [r for r in self.requests if r.sid and (kind is None or r.kind == kind)]

    @property
    def calls(self) -> list[FakeRequest]:
        return self._created_list("call")

    @property
    def messages(self) -> list[FakeRequest]:
        return self._created_list("sms")

    def wait_for(self, n: int, kind: str | None = None, timeout: float = 5) -> list[FakeRequest]:
        """Block until at least n resources (of kind "call"/"sms", or any) were created; return them."""
        def count():
            return self._counts[kind] if kind else sum(self._counts.values())
        with self._created:
            if not self._created.wait_for(lambda: count() >= n, timeout):
                raise AssertionError(f"expected {n} created {kind or 'resources'}, got {count()}")
        return self._created_list(kind)

    # ---- lifecycle (LoopbackServer) --------------------------------------
    name = "twilio"

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.PREFIX + "/2010-04-01/Accounts/{sid}/{res:(Calls|Messages)\\.json}", self._handle)
        app.router.add_get(self.PREFIX + "/2010-04-01/Accounts/{sid}/Recordings/{name}", self._recording)

    # ---- REST handler ---------------------------------------------------
    def _next_outcome(self, to: str) -> tuple:
        with self._lock:
            if to in self._permanent:
                code, message = self._permanent[to]
                return ("error", code, message)
            queue = self._scripts.get(to)
            if queue:
                return queue.popleft()
            if self.fail_ratio and self._rng.random() < self.fail_ratio:
                return self._rng.choice([("http", 500), ("http", 503), ("http", 429, 1), ("drop",)])
        return ("ok",)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        kind, prefix, plural = KINDS[request.match_info["res"]]
        body = await request.read()
        raw = await request.post()
        form = {k: (v if len(v) > 1 else v[0]) for k in raw for v in [raw.getall(k)]}
        rec = FakeRequest(kind, form, time=arrived, path=request.path_qs, headers=dict(request.headers),
                          raw_headers=list(request.raw_headers), body=body)
        to = form.get("To", "")
        self._inflight += 1
        try:
            if request.headers.get("Authorization") != self._auth:
                return self._error(rec, "unauthorized", 401, 20003)
            if request.match_info["sid"] != self.account_sid:
                return self._error(rec, "error", 404, 20404)
            if self.max_concurrent is not None and self._inflight > self.max_concurrent:
                return self._error(rec, "throttled", 429, 20429, retry_after=1)
            outcome = self._next_outcome(to)
            if self.latency:
                await asyncio.sleep(self.latency)
            what = outcome[0]
            if what == "timeout":
                await asyncio.sleep(outcome[1])
            elif what == "http":
                status = outcome[1]
                retry = outcome[2] if len(outcome) > 2 else (1 if status == 429 else None)
                return self._error(rec, "http", status, 20429 if status == 429 else 20500, retry_after=retry)
            elif what == "error":
                message = outcome[2] if len(outcome) > 2 else None
                return self._error(rec, "error", 400, outcome[1], message, to)
            elif what == "problem":  # an answer in RFC 9457's shape, as Twilio's newer APIs give
                rec.outcome, rec.status, rec.code = "problem", outcome[1], outcome[2]
                self._record(rec)
                return web.json_response(
                    {"type": f"https://www.twilio.com/docs/errors/{outcome[2]}", "title": "Problem",
                     "status": outcome[1], "code": outcome[2], "detail": f"The 'To' number {to} is refused."},
                    status=outcome[1], content_type="application/problem+json")
            elif what == "drop":
                rec.outcome, rec.status = "drop", None
                self._record(rec)
                request.transport.abort()
                raise asyncio.CancelledError()  # aiohttp drops the connection silently
            elif what != "ok":
                raise ValueError(f"unknown scripted outcome {outcome!r}")
            rec.sid = prefix + uuid.uuid4().hex
            self._record(rec)
            return web.json_response(self._resource(rec, plural), status=201)
        finally:
            self._inflight -= 1

    def recording_url(self, recording_sid: str, audio: bytes) -> str:
        """Store a recording; returns the RecordingUrl Twilio would send (no extension)."""
        self.recordings[recording_sid] = audio
        return f"{self.base_url}{self.PREFIX}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    async def _recording(self, request: web.Request) -> web.StreamResponse:
        # as Twilio with "Enforce HTTP Auth on Media URLs": the account's credentials or 401
        if request.headers.get("Authorization") != self._auth:
            return web.json_response(twilio_error(401, 20003), status=401)
        sid, _, ext = request.match_info["name"].partition(".")
        audio = self.recordings.get(sid) if request.match_info["sid"] == self.account_sid else None
        if audio is None:
            return web.json_response(twilio_error(404, 20404), status=404)
        return web.Response(body=audio, content_type="audio/mpeg" if ext == "mp3" else "audio/x-wav")

    @property
    def in_flight(self) -> int:
        """Requests the fake has received and not answered yet (a scripted timeout holds one)."""
        return self._inflight

    def _record(self, rec: FakeRequest) -> None:
        with self._created:
            self.requests.append(rec)
            if rec.sid:
                self._resources[rec.sid] = rec
                self._counts[rec.kind] += 1
                self._created.notify_all()

    def _error(self, rec, outcome, status, code, message=None, to="", retry_after=None):
        rec.outcome, rec.status, rec.code = outcome, status, code
        self._record(rec)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response(twilio_error(status, code, message, to), status=status, headers=headers)

    def _resource(self, rec: FakeRequest, plural: str) -> dict:
        f, now = rec.form, email.utils.formatdate(usegmt=False).replace("-0000", "+0000")
        uri = f"{API.format(sid=self.account_sid)}/{plural}/{rec.sid}.json"
        common = {
            "sid": rec.sid, "account_sid": self.account_sid, "to": f.get("To"), "from": f.get("From"),
            "status": "queued", "date_created": now, "date_updated": now, "api_version": "2010-04-01",
            "direction": "outbound-api", "price": None, "price_unit": "USD", "uri": uri,
        }
        if rec.kind == "call":
            return {**common, "to_formatted": f.get("To"), "from_formatted": f.get("From"),
                    "parent_call_sid": None, "phone_number_sid": None, "start_time": None,
                    "end_time": None, "duration": None, "answered_by": None, "annotation": None,
                    "forwarded_from": None, "group_sid": None, "caller_name": None,
                    "queue_time": "0", "trunk_sid": None,
                    "subresource_uris": {"notifications": uri[:-5] + "/Notifications.json",
                                         "recordings": uri[:-5] + "/Recordings.json"}}
        return {**common, "body": f.get("Body", ""), "num_segments": "1", "num_media": "0",
                "messaging_service_sid": f.get("MessagingServiceSid"), "date_sent": None,
                "error_code": None, "error_message": None,
                "subresource_uris": {"media": uri[:-5] + "/Media.json"}}

    # ---- callbacks into the system under test (run on the caller's thread) ----
    @property
    def _http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def sign(self, url: str, params: dict) -> str:
        multi = MultiDict((k, v) for k, vs in params.items()
                          for v in (vs if isinstance(vs, (list, tuple)) else [vs]))
        return self.validator.compute_signature(url, multi)

    def post_signed(self, url: str, params: dict, signature: str | None = None,
                    method: str = "POST") -> tuple[int, str]:
        """Send a webhook like Twilio does; GET puts params in the query (signed as part of the URL)."""
        params = {k: v for k, v in params.items() if v is not None}
        if method.upper() == "GET":
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
            headers = {self.SIGNATURE_HEADER: signature or self.sign(url, {})}
            r = self._http.get(url, headers=headers, timeout=10)
        else:
            headers = {self.SIGNATURE_HEADER: signature or self.sign(url, params)}
            r = self._http.post(url, data=params, headers=headers, timeout=10)
        return r.status_code, r.text

    def _created_resource(self, sid: str) -> FakeRequest:
        with self._lock:
            rec = self._resources.get(sid)
        if rec is None:
            raise AssertionError(f"no created resource with sid {sid}")
        return rec

    def _call_params(self, rec: FakeRequest, status: str) -> dict:
        return {"AccountSid": self.account_sid, "CallSid": rec.sid, "CallStatus": status,
                "To": rec.form.get("To"), "From": rec.form.get("From"),
                "Direction": "outbound-api", "ApiVersion": "2010-04-01"}

    def complete_call(self, sid: str, status: str = "completed", **extra) -> tuple[int, str]:
        rec = self._created_resource(sid)
        url = rec.form.get("StatusCallback")
        if not url:
            raise AssertionError(f"call {sid} was created without a StatusCallback")
        return self.post_signed(url, {**self._call_params(rec, status), **extra},
                                method=rec.form.get("StatusCallbackMethod", "POST").upper())

    def press(self, sid: str, digits: str = "1") -> tuple[int, str]:
        rec = self._created_resource(sid)
        params = self._call_params(rec, "in-progress")
        doc_url = rec.form.get("Url")
        if rec.form.get("Twiml"):
            twiml = rec.form["Twiml"]
        elif doc_url:
            status, twiml = self.post_signed(doc_url, params, method=rec.form.get("Method", "POST").upper())
            if status != 200:
                raise AssertionError(f"fetching TwiML from {doc_url} gave {status}: {twiml}")
        else:
            raise AssertionError(f"call {sid} has neither Twiml nor Url")
        gather = ET.fromstring(twiml).find(".//Gather")
        if gather is None or not (gather.get("action") or doc_url):
            raise AssertionError(f"no <Gather action=...> in TwiML: {twiml}")
        action = urllib.parse.urljoin(doc_url or "", gather.get("action") or doc_url)
        return self.post_signed(action, {**params, "Digits": digits},
                                method=gather.get("method", "POST").upper())

    def sms_status(self, sid: str, status: str = "delivered", **extra) -> tuple[int, str]:
        rec = self._created_resource(sid)
        url = rec.form.get("StatusCallback")
        if not url:
            raise AssertionError(f"message {sid} was created without a StatusCallback")
        return self.post_signed(url, {
            "AccountSid": self.account_sid, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
            "SmsStatus": status, "To": rec.form.get("To"), "From": rec.form.get("From"),
            "ApiVersion": "2010-04-01", **extra})

    def inbound_sms(self, url: str, from_: str, body: str, to: str, **extra) -> tuple[int, str]:
        sid = "SM" + uuid.uuid4().hex
        return self.post_signed(url, {
            "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid,
            "From": from_, "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1",
            "ApiVersion": "2010-04-01", **extra})


if __name__ == "__main__":
    with FakeTwilio() as fake:
        print(f"fake twilio at {fake.base_url} (account {fake.account_sid}, token {fake.auth_token})")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
