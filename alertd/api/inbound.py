"""The inbound voice webhook ({public_url}/twilio/voice) and the steps after it.

``answer_step`` is the one handler of a verified request of the flow; other
providers' webhooks (/providers/NAME/voice, api/provider_voice.py) use it too.

Every request is checked against X-Twilio-Signature like the other callbacks
(api/twilio_hooks.py) before anything is read from it. The call's id and step
travel in the action URLs, which the signature covers. The flow is in
alertd/inbound/calls.py; the simulator plays it through POST /api/v1/simulator/inbound.
"""
from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ..inbound import listen, simulate
from ..inbound.calls import TWILIO
from ..providers import inbound_twiml
from .body import parse, read_body
from .errors import ApiError
from .logs import row_id
from .twilio_hooks import verified_params

log = structlog.get_logger("alertd.inbound")
router = APIRouter(include_in_schema=False)


def _number(request: Request, name: str) -> int:
    value = row_id(request.query_params.get(name, ""))
    if value is None:
        raise ApiError(400, f"{name}: missing from the callback URL")
    return value


async def answer_step(request: Request, base: str, what: str | None, raw: dict,
                      dialect=inbound_twiml, token=None) -> Response:
    """One verified request of an inbound call's flow, whichever provider's webhook it came to:
    ``what`` None is the call coming in; else dial, answered, recorded, recording or transcription
    (404 otherwise). ``raw`` is read and answered in ``dialect`` (alertd/providers/inbound_voice.py:
    TwiML by default); the next steps' URLs are under ``base``, with ``token(call_id)`` when given."""
    calls = request.app.state.daemon.inbound

    def reply(text: str) -> Response:
        return Response(text, media_type=dialect.media_type)

    params = dialect.params(what, raw)
    if params is None:  # news of the call that asks nothing of it (a leg ringing, say)
        return reply(dialect.empty())
    if what is None:
        return reply(await calls.answer(params.get("CallSid", ""), params.get("To", ""), params.get("From", ""),
                                        base, dialect, token))
    if what == "dial":
        member = row_id(request.query_params.get("n", "")) if "n" in request.query_params else None
        return reply(await calls.dial_result(_number(request, "call"), _number(request, "step"), params, base,
                                             dialect, member, token))
    if what == "answered":
        await calls.answered(_number(request, "call"), _number(request, "step"), _number(request, "n"))
        return reply(dialect.empty())
    if what == "recorded":
        return reply(await calls.recorded(_number(request, "call"), params, dialect))
    if what == "recording":
        await calls.recording(_number(request, "call"), params, dialect)
    elif what == "transcription":
        await calls.transcription(_number(request, "call"), params, dialect)
    else:
        raise ApiError(404, f"No inbound call step '{what}'.")
    return reply(dialect.empty())


@router.post("/twilio/voice")
async def voice(request: Request) -> Response:
    """Set as the voice webhook ('A call comes in') of each number under ``inbound:``."""
    return await answer_step(request, TWILIO, None, await verified_params(request))


@router.post("/twilio/voice/{what}")
async def step(request: Request, what: str) -> Response:
    return await answer_step(request, TWILIO, what, await verified_params(request))


@router.get("/voicemail/{call_id}")
async def voicemail(request: Request, call_id: str, t: str = "") -> Response:
    """The voicemail's listening link (inbound/listen.py): the token is the key, like a feed's."""
    daemon = request.app.state.daemon
    call, number = None, row_id(call_id)
    if number is not None and t:
        call = await daemon.store.reach.listenable(number, listen.token_hash(t))
    if call is None or not call["recording_url"]:
        raise ApiError(404, "No such voicemail.")
    try:
        kind, chunks = await listen.open_recording(daemon.config, call["recording_url"])
    except listen.RecordingUnavailable as exc:
        log.warning("voicemail recording unavailable", call_id=call["id"], error=str(exc))
        hint = f" ({exc.hint})" if exc.hint else ""
        raise ApiError(502, f"The provider did not hand over the recording{hint}; it is in its console's call logs.")
    return StreamingResponse(chunks, media_type=kind, headers={"Cache-Control": "private, no-store"})


@router.post("/api/v1/simulator/inbound", summary="Simulator only: play an inbound call to one of the inbound numbers")
async def simulate_inbound(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    await daemon.auth(request)
    if daemon.config.provider.kind != "simulator":
        raise ApiError(409, "provider.kind: inbound calls are simulated only with the simulator provider.")
    req = parse(simulate.SimulatedCall, await read_body(request, daemon.config.server.max_body_bytes,
                                                        allow_empty=True) or {})
    try:
        played = await simulate.play(daemon.inbound, req)
    except simulate.SimulationError as exc:
        raise ApiError(400, str(exc)) from None
    return JSONResponse({"ok": True, **played})
