"""Inbound calls through a ``providers:`` entry: /providers/{name}/voice and its steps.

The same flow as /twilio/voice (api/inbound.py, alertd/inbound/calls.py),
answered in the dialect of the provider's kind (providers/inbound_voice.py):
TwiML-compatible XML for SignalWire's LaML and Telnyx's TeXML, Plivo XML,
Vonage's NCCO (JSON). Each request is checked by the named provider's own
scheme (``verify``: a signature, Vonage's signed JWT) before anything in it is
read; the steps' URLs are under the same /providers/{name}/voice, so they are
too. Where the signature does not cover the URL (Vonage's covers the body),
each step's URL also carries a token of the call, derived from the provider's
secret, so a signed body cannot be replayed at another call's step. A
provider of a kind without a dialect is answered 404.
"""
from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..providers.common import CallbackRefused, row_token
from ..providers.inbound_voice import dialect as dialect_of
from .errors import ApiError
from .inbound import answer_step
from .logs import row_id
from .provider_hooks import provider_request

# included before provider_hooks.router: /providers/{name}/voice would be its /{name}/{what}
router = APIRouter(prefix="/providers", include_in_schema=False)


async def _verified(request: Request, name: str, what: str | None):
    """(the dialect of the provider's kind, the request's fields: a form, or Vonage's JSON,
    the call token of its step URLs or None)."""
    member, inbound = await provider_request(request, name)
    dialect = dialect_of(member.kind)
    if dialect is None or not hasattr(member.callbacks, "verify"):
        raise ApiError(404, f"Provider '{name}' does not route inbound calls (docs/oncall-and-silences.md).")
    token = None
    if not dialect.signs_url:  # the call in the URL is vouched for by a token the signature cannot give
        def token(call_id) -> str:
            return row_token(member.token_secret, f"{name}:inbound-call", int(call_id))
    try:
        member.callbacks.verify(inbound)
        if token is not None and what not in (None, "event"):
            call = row_id(inbound.query.get("call", ""))
            if call is None or not hmac.compare_digest(inbound.query.get("t", ""), token(call)):
                raise CallbackRefused(403, "invalid inbound call token")
        if inbound.headers.get("content-type", "").startswith("application/json"):
            raw = inbound.json()
            if not isinstance(raw, dict):
                raise CallbackRefused(400, "the body is not a JSON object")
        else:
            raw = inbound.form()
    except CallbackRefused as exc:
        raise ApiError(exc.status, exc.message) from None
    return dialect, raw, token


@router.post("/{name}/voice")
async def voice(request: Request, name: str) -> Response:
    """The voice webhook ('A call comes in'; Plivo's and Vonage's answer URL) of each of the
    provider's numbers under ``inbound:``."""
    dialect, raw, token = await _verified(request, name, None)
    return await answer_step(request, f"/providers/{name}/voice", None, raw, dialect, token)


@router.post("/{name}/voice/{what}")
async def step(request: Request, name: str, what: str) -> Response:
    dialect, raw, token = await _verified(request, name, what)
    return await answer_step(request, f"/providers/{name}/voice", what, raw, dialect, token)
