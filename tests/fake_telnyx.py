"""A fake Telnyx: TeXML calls and Messaging v2 over a real socket, webhooks
signed with Ed25519 the way Telnyx signs them (a key pair made here)."""
from __future__ import annotations

import base64
import hashlib
import time
import urllib.parse
import xml.etree.ElementTree as ET

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fake_provider import FakeProvider


class FakeTelnyx(FakeProvider):
    name = "telnyx"

    def __init__(self, api_key: str = "KEY-test", application_id: str = "app-1"):
        super().__init__()
        self.api_key, self.application_id = api_key, application_id
        self.key = Ed25519PrivateKey.generate()
        self.public_key = base64.b64encode(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        self.clock = time.time  # what the signatures' timestamps say
        self.expired = False  # the recordings' pre-signed URLs have expired

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/texml/calls/{app}", self._call)
        app.router.add_post("/v2/texml/Accounts/{sid}/Calls", self._call)
        app.router.add_post("/v2/messages", self._message)
        app.router.add_get("/recordings/{name}", self._recording)

    def error(self, status: int, code, message: str) -> web.Response:
        code = str(code or {401: "10009", 429: "10011"}.get(status, "10007"))
        return web.json_response({"errors": [{"code": code, "title": message, "detail": message}]}, status=status)

    def recording_url(self, name: str, audio: bytes) -> str:
        """Store a recording; returns the pre-signed RecordingUrl of TeXML's recording callback."""
        self.recordings[name] = audio
        return f"{self.base_url}/recordings/{name}?Expires=600&Signature={self._presign(name)}"

    def _presign(self, name: str) -> str:
        return hashlib.sha256(f"{self.api_key}|{name}".encode()).hexdigest()[:32]

    async def _recording(self, request: web.Request) -> web.StreamResponse:
        # pre-signed: the query is the key; a request carrying Authorization as well is refused,
        # and past its ten minutes (``expired``) the URL no longer opens
        signed = request.query.get("Signature") == self._presign(request.match_info["name"])
        return self.recording(request, signed and not self.expired and "Authorization" not in request.headers)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _call(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, "10009", "Authentication failed")
        body = await request.json()
        if request.match_info.get("app", body.get("ApplicationSid")) != self.application_id:
            return self.error(404, "10005", "Resource not found")
        return await self.create(request, "call", body, body.get("To", ""), lambda sid: web.json_response(
            {"call_sid": sid, "from": body["From"], "to": body["To"], "status": "queued"}))

    async def _message(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, "10009", "Authentication failed")
        body = await request.json()
        return await self.create(request, "sms", body, body.get("to", ""), lambda sid: web.json_response(
            {"data": {"id": sid, "record_type": "message", "to": [{"phone_number": body["to"], "status": "queued"}],
                      "from": {"phone_number": body["from"]}, "text": body["text"]}}))

    # ---- webhooks --------------------------------------------------------
    def headers(self, body: bytes, timestamp: int | None = None, forge: bool = False) -> dict:
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        signature = self.key.sign(ts.encode() + b"|" + body)
        if forge:
            signature = Ed25519PrivateKey.generate().sign(ts.encode() + b"|" + body)
        return {"telnyx-signature-ed25519": base64.b64encode(signature).decode(), "telnyx-timestamp": ts}

    def post_form(self, url: str, params: dict, **sign) -> tuple[int, str]:
        body = urllib.parse.urlencode(params).encode()
        r = self.http.post(url, data=body, timeout=10, headers={
            "Content-Type": "application/x-www-form-urlencoded", **self.headers(body, **sign)})
        return r.status_code, r.text

    def post_json(self, url: str, doc: dict, **sign) -> tuple[int, str]:
        body = orjson.dumps(doc)
        r = self.http.post(url, data=body, timeout=10, headers={"Content-Type": "application/json",
                                                                 **self.headers(body, **sign)})
        return r.status_code, r.text

    def call_status(self, sid: str, status: str, **sign) -> tuple[int, str]:
        call = self.created[sid]
        return self.post_form(call.body["StatusCallback"], {
            "CallSid": sid, "CallStatus": status, "To": call.body["To"], "From": call.body["From"]}, **sign)

    def press(self, sid: str, digits: str = "1") -> tuple[int, str]:
        call = self.created[sid]
        gather = ET.fromstring(call.body["Texml"]).find(".//Gather")
        return self.post_form(gather.get("action"), {"CallSid": sid, "Digits": digits, "To": call.body["To"],
                                                     "From": call.body["From"]})

    def sms_status(self, sid: str, status: str) -> tuple[int, str]:
        msg = self.created[sid]
        return self.post_json(msg.body["webhook_url"], {"data": {
            "event_type": "message.finalized" if status != "sent" else "message.sent", "payload": {
                "id": sid, "to": [{"phone_number": msg.body["to"], "status": status}]}}})

    def inbound_sms(self, url: str, from_: str, text: str, to: str = "+15550000003") -> tuple[int, str]:
        return self.post_json(url, {"data": {"event_type": "message.received", "payload": {
            "from": {"phone_number": from_}, "to": [{"phone_number": to}], "text": text}}})
