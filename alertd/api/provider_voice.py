"""Inbound calls through a ``providers:`` entry: /providers/{name}/voice and its steps.

The same flow as /twilio/voice (api/inbound.py, alertd/inbound/calls.py),
for each provider whose calls read TwiML-compatible XML (SignalWire's LaML,
Telnyx's TeXML: its callbacks have ``inbound_voice``). Each request is checked
by the named provider's own scheme (``verify``) before anything in it is read;
the steps' URLs are under the same /providers/{name}/voice, so they are too.
A provider without inbound voice is answered 404.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..providers.common import CallbackRefused
from .errors import ApiError
from .inbound import answer_step
from .provider_hooks import provider_request

# included before provider_hooks.router: /providers/{name}/voice would be its /{name}/{what}
router = APIRouter(prefix="/providers", include_in_schema=False)


async def _verified(request: Request, name: str) -> dict:
    member, inbound = await provider_request(request, name)
    if not getattr(member.callbacks, "inbound_voice", False):
        raise ApiError(404, f"Provider '{name}' does not route inbound calls (docs/oncall-and-silences.md).")
    try:
        member.callbacks.verify(inbound)
    except CallbackRefused as exc:
        raise ApiError(exc.status, exc.message) from None
    return inbound.form()


@router.post("/{name}/voice")
async def voice(request: Request, name: str) -> Response:
    """The voice webhook ('A call comes in') of each of the provider's numbers under ``inbound:``."""
    return await answer_step(request, f"/providers/{name}/voice", None, await _verified(request, name))


@router.post("/{name}/voice/{what}")
async def step(request: Request, name: str, what: str) -> Response:
    return await answer_step(request, f"/providers/{name}/voice", what, await _verified(request, name))
