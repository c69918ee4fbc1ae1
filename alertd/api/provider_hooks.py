"""Requests from every provider: /providers/{name}/{status|gather|twiml|sms}.

The provider named in the path checks the request by its own scheme
(signature, and a row token where a kind of callback is unsigned) before
anything in it is read (alertd/providers/*.py), then reports through
``DaemonHooks``: the same callback handler the simulator and /twilio use,
so a press of 1 or an SMS reply through any provider acknowledges the
whole trigger.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..providers import Outgoing
from ..providers.common import CallbackRefused, Inbound
from .errors import ApiError
from .limits import BodyTooLarge, declared_length
from .twilio_hooks import call_of, sms_reply

router = APIRouter(prefix="/providers", include_in_schema=False)
# a provider's callback is a few kilobytes; anything far larger is not one, and is not kept in memory
CALLBACK_MAX_BYTES = 64 * 1024


async def _body(request: Request) -> bytes:
    """The raw body, which a signature covers; refused past CALLBACK_MAX_BYTES as it arrives
    (tighter than the app's server.max_body_bytes, alertd/api/limits.py)."""
    declared = declared_length(request.scope)
    if declared is not None and declared > CALLBACK_MAX_BYTES:
        raise BodyTooLarge(CALLBACK_MAX_BYTES)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > CALLBACK_MAX_BYTES:
            raise BodyTooLarge(CALLBACK_MAX_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)


class DaemonHooks:
    """alertd as a provider's callbacks see it (alertd.providers.common.Hooks)."""

    def __init__(self, daemon):
        self.daemon = daemon
        cb = daemon.callbacks
        self.call_status, self.sms_status, self.digits = cb.call_status, cb.sms_status, cb.digits

    async def inbound_sms(self, sender: str, body: str) -> str:
        return await sms_reply(self.daemon, sender, body)

    async def outgoing(self, log_id: int) -> Outgoing | None:
        row = await self.daemon.store.logs.get(log_id)
        return None if row is None else call_of(self.daemon, row)


async def provider_request(request: Request, name: str):
    """(the providers: entry named ``name``, the request as it sent it); 404 for a name that takes no callbacks."""
    daemon = request.app.state.daemon
    member = daemon.router.by_name.get(name) if daemon.router is not None else None
    if member is None or member.callbacks is None:
        raise ApiError(404, f"No provider '{name}' takes callbacks here.")
    url = daemon.config.server.base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return member, Inbound(request.method, url, {k.lower(): v for k, v in request.headers.items()},
                           await _body(request), dict(request.query_params))


@router.api_route("/{name}/{what}", methods=["GET", "POST"])
async def callback(name: str, what: str, request: Request) -> Response:
    daemon = request.app.state.daemon
    member, inbound = await provider_request(request, name)
    try:
        reply = await member.callbacks.callback(what, inbound, DaemonHooks(daemon), member.prepare)
    except CallbackRefused as exc:
        raise ApiError(exc.status, exc.message) from None
    return Response(reply.body, media_type=reply.media_type)
