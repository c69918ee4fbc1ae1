"""Callbacks in Twilio's shape (form fields CallSid, CallStatus, Digits,
MessageStatus; TwiML answers), shared by Twilio, SignalWire and Telnyx TeXML.

Each provider checks its own signature first (``verify``) and hands the
request here only then.
"""
from __future__ import annotations

from typing import Callable
from xml.sax.saxutils import escape

from . import Outgoing
from .common import CallbackRefused, Hooks, Inbound, Reply, number
from .twilio import call_twiml, compute_signature, gather_reply_twiml

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def message_twiml(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(text)}</Message></Response>'


def hmac_sha1_valid(key: str, inbound: Inbound, header_names: tuple[str, ...]) -> None:
    """Twilio's scheme (SignalWire's compatibility API uses it too): base64
    HMAC-SHA1 of the URL and the sorted form fields; CallbackRefused(403) when no header matches."""
    import hmac as _hmac

    params = inbound.form() if inbound.method == "POST" else {}
    expected = compute_signature(key, inbound.url, params) if key else ""
    for name in header_names:
        got = inbound.headers.get(name, "")
        if got and expected and _hmac.compare_digest(got, expected):
            return
    raise CallbackRefused(403, "invalid signature")


async def handle(what: str, inbound: Inbound, hooks: Hooks, prepare: Callable[[Outgoing], Outgoing],
           form: dict[str, str] | None = None) -> Reply:
    """One verified TwiML-style callback: ``what`` is status, gather, twiml or sms."""
    params = form if form is not None else (inbound.form() if inbound.method == "POST" else {})
    if what == "sms":
        return Reply(message_twiml(await hooks.inbound_sms(params.get("From", ""), params.get("Body", ""))))
    log_id = inbound.log_id()
    if what == "status":
        code = number(params.get("ErrorCode", ""))
        if inbound.query.get("channel") == "sms" or "MessageStatus" in params:
            await hooks.sms_status(log_id, params.get("MessageSid"), params.get("MessageStatus", ""), code)
        else:
            await hooks.call_status(log_id, params.get("CallSid"), params.get("CallStatus", ""),
                              params.get("AnsweredBy"), code)
        return Reply(EMPTY)
    if what == "gather":
        digits = params.get("Digits", "")
        acknowledged = await hooks.digits(log_id, digits, params.get("To"))
        out = await hooks.outgoing(log_id)
        if out is None:
            return Reply(EMPTY)
        return Reply(gather_reply_twiml(prepare(out), acknowledged or digits.strip() == "1"))
    if what == "twiml":
        out = await hooks.outgoing(log_id)
        if out is None:
            raise CallbackRefused(404, f"Log row not found: {log_id}")
        return Reply(call_twiml(prepare(out)))
    raise CallbackRefused(404, f"no callback '{what}'")


class LamlCallbacks:
    """The callbacks of a provider signed the Twilio way with ``key``."""

    def __init__(self, key: str, header_names: tuple[str, ...] = ("x-twilio-signature",)):
        self.key, self.header_names = key, header_names

    def verify(self, inbound: Inbound) -> None:
        """CallbackRefused(403) unless one of ``header_names`` signs the request with ``key``."""
        hmac_sha1_valid(self.key, inbound, self.header_names)

    async def callback(self, what: str, inbound: Inbound, hooks: Hooks,
                       prepare: Callable[[Outgoing], Outgoing]) -> Reply:
        self.verify(inbound)
        return await handle(what, inbound, hooks, prepare)
