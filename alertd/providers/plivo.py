"""Plivo: the Call API (an answer URL serving Plivo XML) and the Message API.

REST with aiohttp: Plivo's Python SDK is synchronous (requests). A call is
placed with answer_url (our Plivo XML: <Speak> inside <GetInput> so a press
during the message counts), hangup_url and ring_url (its statuses). Every
request Plivo makes to us carries its V3 signature: base64 HMAC-SHA256, with
the auth token, of the URL with its query sorted, then the sorted POST
fields, a '.' and X-Plivo-Signature-V3-Nonce.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape, quoteattr

from . import Outgoing
from . import ProviderError
from .common import CallbackRefused, Hooks, Inbound, Reply, RestProvider, classify, number, retry_after
from .speech import prompts

CALL_STATUS = {"ringing": "ringing", "in-progress": "in-progress", "completed": "completed", "busy": "busy",
               "failed": "failed", "timeout": "no-answer", "no-answer": "no-answer", "cancel": "canceled"}
SMS_STATUS = {"queued": "queued", "sent": "sent", "delivered": "delivered", "undelivered": "undelivered",
              "failed": "failed", "rejected": "failed"}
_XML = '<?xml version="1.0" encoding="UTF-8"?>'


def _sorted_query(params: dict[str, list[str]]) -> str:
    return "&".join(f"{k}={v}" for k in sorted(params) for v in sorted(params[k]))


def signature_v3(auth_token: str, method: str, url: str, params: dict[str, str], nonce: str) -> str:
    """Plivo's V3 signature of a request to ``url`` with POST fields ``params``."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query: dict[str, list[str]] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(k, []).append(v)
    if method == "GET":
        for k, v in params.items():
            query.setdefault(k, []).append(v)
        signed = base + ("?" + _sorted_query(query) if query else "")
    else:
        q = _sorted_query(query)
        signed = base + (("?" + q + ".") if q and params else ("?" + q) if q else ("?" if params else ""))
        signed += "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), f"{signed}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _speak(text: str, out: Outgoing, loop: int = 1) -> str:
    attrs = f' voice="{"MAN" if out.voice == "man" else "WOMAN"}" language={quoteattr(out.language or "en-US")}'
    if loop > 1:
        attrs += f' loop="{loop}"'
    return f"<Speak{attrs}>{escape(text)}</Speak>"


def _get_input(out: Outgoing, inner: str) -> str:
    return (f'<GetInput action={quoteattr(out.gather_action or "")} method="POST" inputType="dtmf" numDigits="1"'
            f' digitEndTimeout="8" redirect="true">{inner}</GetInput>')


def call_xml(out: Outgoing) -> str:
    """The Plivo XML of an alert call: as call_twiml, in Plivo's words."""
    if not out.gather:
        return f"{_XML}<Response>{_speak(out.message, out, out.repeat)}</Response>"
    ask, _, nothing = prompts(out.language)
    inner = _speak(out.message, out, out.repeat) + _speak(ask, out)
    return f"{_XML}<Response>{_get_input(out, inner)}{_speak(nothing, out)}</Response>"


class PlivoProvider(RestProvider):
    def __init__(self, auth_id: str, auth_token: str, *, api_base_url: str = "https://api.plivo.com",
                 timeout: float = 10.0, max_concurrency: int = 10):
        self.auth_id, self.auth_token = auth_id, auth_token
        self.api = f"{api_base_url.rstrip('/')}/v1/Account/{auth_id}"
        super().__init__(timeout, max_concurrency)
        basic = base64.b64encode(f"{auth_id}:{auth_token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {basic}", "Accept": "application/json"}
        self.configured = bool(auth_id and auth_token)

    def headers(self) -> dict:
        return self._headers

    async def send(self, out: Outgoing) -> str:
        """Returns the call's request_uuid or the message's uuid. Raises ProviderError."""
        if out.channel == "sms":
            body = {"src": out.from_, "dst": out.to, "text": out.message, "url": out.status_callback,
                    "method": "POST"}
            data = await self._post("/Message/", body)
            return (data.get("message_uuid") or [""])[0]
        body = {"from": out.from_, "to": out.to, "answer_url": out.twiml_url, "answer_method": "POST",
                "hangup_url": out.status_callback, "hangup_method": "POST", "ring_url": out.status_callback,
                "ring_method": "POST"}
        if out.machine_detection:
            body["machine_detection"] = "true"
        return (await self._post("/Call/", body)).get("request_uuid", "")

    def error(self, status: int, body: dict, headers) -> ProviderError:
        return classify(status, None, str(body.get("error") or ""), retry_after=retry_after(headers))

    # --- callbacks -------------------------------------------------------
    def verify(self, inbound: Inbound) -> dict[str, str]:
        """The POST fields; CallbackRefused(403) unless the V3 signature matches."""
        params = inbound.form() if inbound.method == "POST" else {}
        nonce = inbound.headers.get("x-plivo-signature-v3-nonce", "")
        got = inbound.headers.get("x-plivo-signature-v3", "")
        expected = signature_v3(self.auth_token, inbound.method, inbound.url, params, nonce)
        if not (nonce and got and any(hmac.compare_digest(s.strip(), expected) for s in got.split(","))):
            raise CallbackRefused(403, "invalid Plivo signature")
        return params

    async def callback(self, what: str, inbound: Inbound, hooks: Hooks, prepare) -> Reply:
        params = self.verify(inbound)
        if what == "sms":
            text = await hooks.inbound_sms(params.get("From", ""), params.get("Text", ""))
            return Reply(f'{_XML}<Response><Message src={quoteattr(params.get("To", ""))}'
                         f' dst={quoteattr(params.get("From", ""))}>{escape(text)}</Message></Response>')
        log_id = inbound.log_id()
        if what == "status" and inbound.query.get("channel") == "sms":
            code = params.get("ErrorCode", "")
            raw = params.get("Status", "")
            await hooks.sms_status(log_id, params.get("MessageUUID"), SMS_STATUS.get(raw, "sent"),
                             number(code) or None, provider_status=raw)
        elif what == "status":
            status = params.get("CallStatus", "")
            if status in CALL_STATUS:
                machine = params.get("Machine")
                await hooks.call_status(log_id, params.get("CallUUID") or params.get("RequestUUID"), CALL_STATUS[status],
                                  ("machine_start" if machine == "true" else "human") if machine else None,
                                  provider_status=status)
        elif what in ("twiml", "gather"):
            out = await hooks.outgoing(log_id)
            if out is None:
                return Reply(f"{_XML}<Response/>")
            out = prepare(out)
            if what == "twiml":
                return Reply(call_xml(out))
            digits = params.get("Digits", "")
            acked = await hooks.digits(log_id, digits, params.get("To"))
            ask, thanks, _ = prompts(out.language)
            if acked or digits.strip() == "1":
                return Reply(f"{_XML}<Response>{_speak(thanks, out)}</Response>")
            return Reply(f"{_XML}<Response>{_get_input(out, _speak(ask, out))}</Response>")
        else:
            raise CallbackRefused(404, f"no callback '{what}'")
        return Reply(f"{_XML}<Response/>")


def build(entry, timeout: float) -> PlivoProvider:
    return PlivoProvider(entry.auth_id, entry.auth_token, api_base_url=entry.api_base_url, timeout=timeout,
                         max_concurrency=entry.max_concurrency)
