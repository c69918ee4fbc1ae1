"""A fake Plivo: the Call API and the Message API over a real socket (Basic
auth with the auth id and token). Callbacks carry Plivo's V3 signature, made
here as Plivo documents it; the answer URL's Plivo XML is fetched like Plivo does."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
import xml.etree.ElementTree as ET

from aiohttp import web

from fake_provider import FakeProvider


def v3_signature(auth_token: str, url: str, params: dict, nonce: str) -> str:
    """Plivo's V3 scheme for a POST, written independently of alertd's: the URL
    with its query sorted, '.', the sorted fields as keyvalue, then '.' nonce."""
    parts = urllib.parse.urlsplit(url)
    query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    q = "&".join(f"{k}={v}" for k, v in query)
    if params:
        base += "?" + (q + "." if q else "") + "".join(f"{k}{params[k]}" for k in sorted(params))
    elif q:
        base += "?" + q
    return base64.b64encode(hmac.new(auth_token.encode(), f"{base}.{nonce}".encode(), hashlib.sha256).digest()
                            ).decode()


class FakePlivo(FakeProvider):
    name = "plivo"

    def __init__(self, auth_id: str = "MAFAKE0000000000", auth_token: str = "plivo-token"):
        super().__init__()
        self.auth_id, self.auth_token = auth_id, auth_token
        self._auth = "Basic " + base64.b64encode(f"{auth_id}:{auth_token}".encode()).decode()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/Account/{id}/Call/", self._call)
        app.router.add_post("/v1/Account/{id}/Message/", self._message)
        app.router.add_get("/v1/Account/{id}/Recording/{name}", self._recording)

    def error(self, status: int, code, message: str) -> web.Response:
        return web.json_response({"api_id": "x", "error": message}, status=status)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == self._auth and request.match_info["id"] == self.auth_id

    def recording_url(self, name: str, audio: bytes) -> str:
        """Store a recording; returns the RecordUrl Plivo would send (its media host's shape)."""
        self.recordings[name + ".mp3"] = audio
        return f"{self.base_url}/v1/Account/{self.auth_id}/Recording/{name}.mp3"

    async def _recording(self, request: web.Request) -> web.StreamResponse:
        return self.recording(request, self._authorized(request))

    async def _call(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, None, "authentication failed")
        body = await request.json()
        return await self.create(request, "call", body, body["to"], lambda sid: web.json_response(
            {"api_id": "x", "message": "call fired", "request_uuid": sid}, status=201))

    async def _message(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, None, "authentication failed")
        body = await request.json()
        return await self.create(request, "sms", body, body["dst"], lambda sid: web.json_response(
            {"api_id": "x", "message": "message(s) queued", "message_uuid": [sid]}, status=202))

    # ---- callbacks -------------------------------------------------------
    def post(self, url: str, params: dict, *, token: str | None = None) -> tuple[int, str]:
        nonce = secrets.token_hex(10)
        signature = v3_signature(token or self.auth_token, url, params, nonce)
        r = self.http.post(url, data=params, timeout=10, headers={
            "X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce})
        return r.status_code, r.text

    def _params(self, sid: str, **extra) -> dict:
        call = self.created[sid]
        return {"CallUUID": sid, "RequestUUID": sid, "From": call.body["from"], "To": call.body["to"],
                "Direction": "outbound", **extra}

    def answer(self, sid: str) -> ET.Element:
        status, xml = self.post(self.created[sid].body["answer_url"], self._params(sid, CallStatus="in-progress"))
        assert status == 200, xml
        return ET.fromstring(xml)

    def press(self, sid: str, digits: str = "1") -> tuple[int, str]:
        get_input = self.answer(sid).find("GetInput")
        return self.post(get_input.get("action"), self._params(sid, Digits=digits))

    def hangup(self, sid: str, status: str = "completed", **sign) -> tuple[int, str]:
        return self.post(self.created[sid].body["hangup_url"], self._params(sid, CallStatus=status), **sign)

    def message_status(self, sid: str, status: str) -> tuple[int, str]:
        msg = self.created[sid]
        return self.post(msg.body["url"], {"MessageUUID": sid, "Status": status, "From": msg.body["src"],
                                           "To": msg.body["dst"], "ErrorCode": "000"})

    def inbound_sms(self, url: str, from_: str, text: str) -> tuple[int, str]:
        return self.post(url, {"From": from_.lstrip("+"), "To": "15550000005", "Text": text, "Type": "sms",
                               "MessageUUID": secrets.token_hex(8)})
