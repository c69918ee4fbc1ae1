"""Requests from Twilio: status callbacks, the press of 1, long TwiML.

Each is checked against X-Twilio-Signature over the URL Twilio was given
(server.public_url + path + query) and refused with 403 when it does not match.
The log id travels in the URL: a callback can beat the stored sid.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..providers.twilio import call_twiml, gather_reply_twiml, signature_valid
from .errors import ApiError

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
    value = request.query_params.get("log_id", "")
    if not value.isdigit():
        raise ApiError(400, "log_id: missing from the callback URL")
    return int(value)


def _xml(text: str) -> Response:
    return Response(text, media_type="application/xml")


@router.post("/status")
async def status(request: Request) -> Response:
    params = await verified_params(request)
    daemon, log_id = request.app.state.daemon, _log_id(request)
    if request.query_params.get("channel") == "sms" or "MessageStatus" in params:
        daemon.callbacks.sms_status(log_id, params.get("MessageSid"), params.get("MessageStatus", ""))
    else:
        daemon.callbacks.call_status(log_id, params.get("CallSid"), params.get("CallStatus", ""),
                                     params.get("AnsweredBy"))
    return _xml(_EMPTY)


@router.post("/gather")
async def gather(request: Request) -> Response:
    params = await verified_params(request)
    daemon, log_id = request.app.state.daemon, _log_id(request)
    acknowledged = daemon.callbacks.digits(log_id, params.get("CallSid"), params.get("Digits", ""),
                                           params.get("To"))
    row = daemon.store.get_log(log_id)
    if row is None:
        return _xml(_EMPTY)
    out = daemon.dispatcher.outgoing(daemon.store.row_dict(row), "call")
    return _xml(gather_reply_twiml(out, acknowledged or params.get("Digits", "").strip() == "1"))


@router.api_route("/twiml", methods=["GET", "POST"])
async def twiml(request: Request) -> Response:
    await verified_params(request)
    daemon, log_id = request.app.state.daemon, _log_id(request)
    row = daemon.store.get_log(log_id)
    if row is None:
        raise ApiError(404, f"Log row not found: {log_id}")
    return _xml(call_twiml(daemon.dispatcher.outgoing(daemon.store.row_dict(row), "call")))
