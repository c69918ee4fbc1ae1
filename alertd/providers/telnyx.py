"""Telnyx: calls through TeXML (TwiML-compatible XML), SMS through Messaging v2.

REST with aiohttp: Telnyx's Python SDK is synchronous (a thread per request
on the hot path), and both endpoints are one JSON POST with a Bearer key.
Every webhook Telnyx sends, TeXML callbacks included, is signed with Ed25519
(``telnyx-signature-ed25519`` over ``telnyx-timestamp|raw body``); it is
checked with the account's public key before anything is read, and a
timestamp more than five minutes off is refused.
"""
from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import Outgoing, ProviderError
from .common import CallbackRefused, Hooks, Inbound, Reply, RestProvider, classify, number, retry_after
from .laml import EMPTY, handle
from .twilio import TWIML_INLINE_MAX, call_twiml

TOLERANCE = 300  # seconds: Telnyx's own SDK refuses older webhooks
# Telnyx error codes about the recipient, the same through any provider
_PERMANENT = frozenset({"40001", "40002", "40008", "40012", "40013", "40300", "40310", "40311"})
# Messaging v2 delivery statuses in alertd's words
SMS_STATUS = {"queued": "queued", "sending": "sent", "sent": "sent", "delivered": "delivered",
              "sending_failed": "failed", "delivery_failed": "undelivered", "delivery_unconfirmed": "sent"}


class TelnyxProvider(RestProvider):
    def __init__(self, api_key: str, public_key: str, application_id: str, *, account_sid: str = "",
                 messaging_profile_id: str = "", api_base_url: str = "https://api.telnyx.com", timeout: float = 10.0,
                 max_concurrency: int = 10, clock):
        self.api_key, self.application_id, self.account_sid = api_key, application_id, account_sid
        self.messaging_profile_id = messaging_profile_id
        self.api = api_base_url.rstrip("/") + "/v2"
        self.clock = clock  # has timestamp(): how old a signed timestamp is
        super().__init__(timeout, max_concurrency)
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        try:
            self.public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
        except (binascii.Error, ValueError):
            self.public_key = None  # every callback is refused; `alertd check` says why
        self.configured = bool(api_key and self.public_key and application_id)

    def headers(self) -> dict:
        return self._headers

    async def send(self, out: Outgoing) -> str:
        """Returns the call's sid or the message's id. Raises ProviderError."""
        if out.channel == "sms":
            body = {"from": out.from_, "to": out.to, "text": out.message}
            if out.status_callback:
                body["webhook_url"] = out.status_callback
            if self.messaging_profile_id:
                body["messaging_profile_id"] = self.messaging_profile_id
            data = await self._post("/messages", body)
            return (data.get("data") or {}).get("id") or ""
        body = {"To": out.to, "From": out.from_, "StatusCallback": out.status_callback,
                "StatusCallbackEvent": "initiated ringing answered completed", "StatusCallbackMethod": "POST"}
        twiml = call_twiml(out)
        if len(twiml) <= TWIML_INLINE_MAX or not out.twiml_url:
            body["Texml"] = twiml
        else:
            body["Url"], body["UrlMethod"] = out.twiml_url, "POST"
        if out.machine_detection:
            body["MachineDetection"] = "Enable"
        if self.account_sid:
            body["ApplicationSid"] = self.application_id
            data = await self._post(f"/texml/Accounts/{self.account_sid}/Calls", body)
        else:
            data = await self._post(f"/texml/calls/{self.application_id}", body)
        data = data.get("data", data)
        return data.get("call_sid") or data.get("sid") or ""

    def error(self, status: int, body: dict, headers) -> ProviderError:
        error = (body.get("errors") or [{}])[0]
        return classify(status, error.get("code"), error.get("detail") or error.get("title") or "",
                        permanent_codes=_PERMANENT, retry_after=retry_after(headers))

    # --- callbacks -------------------------------------------------------
    def verify(self, inbound: Inbound) -> None:
        """CallbackRefused(403) unless Telnyx signed this body within TOLERANCE seconds."""
        signature = inbound.headers.get("telnyx-signature-ed25519", "")
        timestamp = inbound.headers.get("telnyx-timestamp", "")
        signed_at = number(timestamp, 12)
        if self.public_key is None or not signature or signed_at is None:
            raise CallbackRefused(403, "invalid Telnyx signature")
        try:
            self.public_key.verify(base64.b64decode(signature), timestamp.encode() + b"|" + inbound.body)
        except (InvalidSignature, binascii.Error, ValueError):
            raise CallbackRefused(403, "invalid Telnyx signature") from None
        if abs(self.clock.timestamp() - signed_at) > TOLERANCE:
            raise CallbackRefused(403, "stale Telnyx signature")

    async def callback(self, what: str, inbound: Inbound, hooks: Hooks, prepare) -> Reply:
        self.verify(inbound)
        if inbound.headers.get("content-type", "").startswith("application/json"):
            return await self._messaging(what, inbound, hooks)
        return await handle(what, inbound, hooks, prepare)  # TeXML: Twilio's form fields

    async def _messaging(self, what: str, inbound: Inbound, hooks: Hooks) -> Reply:
        event = (inbound.json() or {}).get("data") or {}
        payload = event.get("payload") or {}
        kind = event.get("event_type", "")
        if what == "sms" and kind == "message.received":
            sender = (payload.get("from") or {}).get("phone_number", "")
            ours = ((payload.get("to") or [{}])[0]).get("phone_number", "")
            self.reply(sender, ours, await hooks.inbound_sms(sender, payload.get("text") or ""))
            return Reply("", "text/plain")
        if what == "status" and kind in ("message.sent", "message.finalized"):
            to = (payload.get("to") or [{}])[0]
            errors = payload.get("errors") or [{}]
            code = str(errors[0].get("code", "")) if payload.get("errors") else ""
            raw = to.get("status", "")
            await hooks.sms_status(inbound.log_id(), payload.get("id"), SMS_STATUS.get(raw, "sent"),
                             number(code), provider_status=raw)
        return Reply(EMPTY)


def build(entry, timeout: float, clock) -> TelnyxProvider:
    return TelnyxProvider(entry.api_key, entry.public_key, entry.application_id, account_sid=entry.account_sid,
                          messaging_profile_id=entry.messaging_profile_id, api_base_url=entry.api_base_url,
                          timeout=timeout, max_concurrency=entry.max_concurrency, clock=clock)

