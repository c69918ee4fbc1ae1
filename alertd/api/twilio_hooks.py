"""Requests from Twilio: status callbacks, the press of 1, long TwiML.

Each is checked against X-Twilio-Signature over the URL Twilio was given
(server.public_url + path + query) and refused with 403 when it does not match.
The log id travels in the URL: a callback can beat the stored sid.
"""
from __future__ import annotations

import json
from xml.sax.saxutils import escape

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import phones
from ..providers.common import number
from ..providers.twilio import call_twiml, gather_reply_twiml, signature_valid
from .errors import ApiError
from .logs import row_id

log = structlog.get_logger("alertd.twilio")
router = APIRouter(prefix="/twilio", include_in_schema=False)
_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def verified_params(request: Request) -> dict:
    daemon = request.app.state.daemon
    form = dict(await request.form()) if request.method == "POST" else {}
    url = daemon.config.server.base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    params = form if request.method == "POST" else {}
    if not signature_valid(daemon.config.provider.auth_token, url, params,
                           request.headers.get("x-twilio-signature", "")):
        raise ApiError(403, "Invalid Twilio signature.")
    return {k: str(v) for k, v in form.items()}


def _log_id(request: Request) -> int:
    number = row_id(request.query_params.get("log_id", ""))
    if number is None:
        raise ApiError(400, "log_id: missing from the callback URL, or not a log id")
    return number


def _error_code(text: str) -> int | None:
    return number(text, 9)  # ASCII digits only, and fewer than an INTEGER column's 64 bits


def _xml(text: str) -> Response:
    return Response(text, media_type="application/xml")


@router.post("/status")
async def status(request: Request) -> Response:
    params = await verified_params(request)
    daemon, log_id = request.app.state.daemon, _log_id(request)
    error_code = _error_code(params.get("ErrorCode", ""))  # the story shows it in words (alertd/ui/render.py)
    if request.query_params.get("channel") == "sms" or "MessageStatus" in params:
        await daemon.callbacks.sms_status(log_id, params.get("MessageSid"), params.get("MessageStatus", ""), error_code)
    else:
        await daemon.callbacks.call_status(log_id, params.get("CallSid"), params.get("CallStatus", ""),
                                     params.get("AnsweredBy"), error_code)
    return _xml(_EMPTY)


@router.post("/gather")
async def gather(request: Request) -> Response:
    params = await verified_params(request)
    daemon, log_id = request.app.state.daemon, _log_id(request)
    acknowledged = await daemon.callbacks.digits(log_id, params.get("Digits", ""), params.get("To"))
    row = await daemon.store.logs.get(log_id)
    if row is None:
        return _xml(_EMPTY)
    out = call_of(daemon, row)
    return _xml(gather_reply_twiml(out, acknowledged or params.get("Digits", "").strip() == "1"))


@router.api_route("/twiml", methods=["GET", "POST"])
async def twiml(request: Request) -> Response:
    await verified_params(request)
    daemon, log_id = request.app.state.daemon, _log_id(request)
    row = await daemon.store.logs.get(log_id)
    if row is None:
        raise ApiError(404, f"Log row not found: {log_id}")
    return _xml(call_twiml(call_of(daemon, row)))


def call_of(daemon, row):
    """The call of a stored log row, as the provider was asked to place it."""
    return daemon.attempts.outgoing(row["to_number"], row["message"], json.loads(row["params"]), row["log_id"], "call")


ACK_WORDS = {"1", "ACK", "OK"}
ACK_WINDOW = 24 * 3600


def _message(text: str) -> Response:
    return _xml(f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(text)}</Message></Response>')


@router.post("/sms")
async def inbound_sms(request: Request) -> Response:
    """A reply to an alert SMS (set {public_url}/twilio/sms as the number's messaging webhook).

    1, ACK or OK (any case, spaces ignored) from a number that was notified
    acknowledges that number's most recent unacknowledged trigger of the last
    24 hours; anything else is answered with a short help text.
    """
    params = await verified_params(request)
    return _message(await sms_reply(request.app.state.daemon, params.get("From", ""), params.get("Body", "")))


async def sms_reply(daemon, sender: str, body: str) -> str:
    """What an SMS reply does, through any provider; the text to answer with."""
    word = "".join(body.split()).upper()
    log.info("inbound sms", sender=sender, body=body[:160])
    if word not in ACK_WORDS:
        return "alertd: reply 1, ACK or OK to acknowledge your latest alert."
    try:
        number = phones.normalize(sender)
    except ValueError:
        return "alertd: this number cannot acknowledge alerts."
    now = daemon.clock.timestamp()
    row = await daemon.store.logs.latest_open_trigger_for(number, now - ACK_WINDOW)
    if row is None:
        return "alertd: no open alert to acknowledge for this number."
    await daemon.callbacks.acknowledge(row["log_id"], number, "sms")
    message = (await daemon.store.logs.get(row["log_id"]))["message"] or ""
    return f"Acknowledged: {message[:100]}"
