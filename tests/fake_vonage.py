"""A fake Vonage: the Voice API (/v1/calls with an NCCO) and the Messages API
(/v1/messages) over a real socket. Requests must carry the application's
RS256 JWT (a key pair made here); webhooks are signed as Vonage signs them:
an HS256 JWT with the signature secret whose payload_hash is the body's SHA-256."""
from __future__ import annotations

import hashlib
import time
import uuid

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fake_provider import FakeProvider


class FakeVonage(FakeProvider):
    name = "vonage"

    def __init__(self, application_id: str = "app-vg-1",
                 signature_secret: str = "sig-secret-test-0123456789abcdefghijklmnop"):
        super().__init__()
        self.application_id, self.signature_secret = application_id, signature_secret
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        self.public_key = key.public_key()
        self.clock = time.time

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/calls", self._call)
        app.router.add_post("/v1/messages", self._message)
        app.router.add_get("/v1/files/{name}", self._recording)

    def error(self, status: int, code, message: str) -> web.Response:
        kind = code or {401: "unauthorized", 429: "throttled"}.get(status, "internal-error")
        return web.json_response({"type": f"https://developer.nexmo.com/api-errors#{kind}", "title": message,
                                  "detail": message}, status=status)

    def _authorized(self, request: web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return False
        return claims.get("application_id") == self.application_id

    def recording_url(self, name: str, audio: bytes) -> str:
        """Store a recording; returns the recording_url of Vonage's record event."""
        self.recordings[name] = audio
        return f"{self.base_url}/v1/files/{name}"

    async def _recording(self, request: web.Request) -> web.StreamResponse:
        return self.recording(request, self._authorized(request))

    async def _call(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, "unauthorized", "Invalid Token")
        body = await request.json()
        to = "+" + body["to"][0]["number"]
        return await self.create(request, "call", body, to, lambda sid: web.json_response(
            {"uuid": sid, "status": "started", "direction": "outbound", "conversation_uuid": "CON-" + sid},
            status=201))

    async def _message(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, "unauthorized", "Invalid Token")
        body = await request.json()
        return await self.create(request, "sms", body, "+" + body["to"], lambda sid: web.json_response(
            {"message_uuid": sid}, status=202))

    # ---- webhooks --------------------------------------------------------
    def post(self, url: str, doc: dict, *, secret: str | None = None, iat: float | None = None,
             tamper: bool = False) -> tuple[int, str]:
        body = orjson.dumps(doc)
        claims = {"iat": int(self.clock() if iat is None else iat), "jti": str(uuid.uuid4()), "iss": "Vonage",
                  "payload_hash": hashlib.sha256(body).hexdigest(), "api_key": "k", "application_id":
                  self.application_id}
        token = jwt.encode(claims, secret or self.signature_secret, algorithm="HS256")
        if tamper:
            body = body.replace(b'"', b'"', 1) + b" "
        r = self.http.post(url, data=body, timeout=10, headers={"Content-Type": "application/json",
                                                                 "Authorization": f"Bearer {token}"})
        return r.status_code, r.text

    def event(self, sid: str, status: str, **sign) -> tuple[int, str]:
        call = self.created[sid]
        return self.post(call.body["event_url"][0], {"uuid": sid, "status": status, "direction": "outbound",
                                                    "to": call.body["to"][0]["number"],
                                                    "from": call.body["from"]["number"]}, **sign)

    def press(self, sid: str, digits: str = "1") -> tuple[int, str]:
        call = self.created[sid]
        (action,) = [a for a in call.body["ncco"] if a["action"] == "input"]
        return self.post(action["eventUrl"][0], {"uuid": sid, "dtmf": {"digits": digits, "timed_out": False},
                                                "from": call.body["to"][0]["number"]})

    def message_status(self, sid: str, status: str) -> tuple[int, str]:
        msg = self.created[sid]
        return self.post(msg.body["webhook_url"], {"message_uuid": sid, "status": status, "to": msg.body["to"],
                                                  "from": msg.body["from"], "channel": "sms"})

    def inbound_sms(self, url: str, from_: str, text: str, to: str = "+15550000004") -> tuple[int, str]:
        return self.post(url, {"channel": "sms", "message_type": "text", "message_uuid": str(uuid.uuid4()),
                               "from": from_.lstrip("+"), "to": to.lstrip("+"), "text": text})
