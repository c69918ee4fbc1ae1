"""The body limit, for every route at once: no request body is read past
``server.max_body_bytes``, chunked or with a Content-Length.

One ASGI layer wraps ``receive``, so a route cannot forget the limit: the
Twilio callbacks and the dashboard's login parse their forms before they can
check a signature or a CSRF token, and a form parser buffers what it reads.
Past the limit, the next ``receive`` raises :class:`BodyTooLarge` (the 413
envelope, through the app's error handlers), so at most the limit plus one
network read is ever held. What the client still sends after the answer is
read and dropped by the server as it arrives: nothing of it is kept.
"""
from __future__ import annotations

from .errors import ApiError


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(413, f"Request body too large (limit {limit} bytes).")


def declared_length(scope) -> int | None:
    """The Content-Length header as a number; None when absent or not one."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            # past 18 digits it is over any limit (and int() refuses more than 4300)
            return (int(value) if len(value) <= 18 else 10**18) if value.isdigit() else None
    return None


class BodyLimit:
    """ASGI middleware: raise BodyTooLarge from ``receive`` once more than ``limit`` bytes came."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        await self.app(scope, limited(scope, receive, self.limit), send)


def limited(scope, receive, limit: int):
    """``receive``, raising BodyTooLarge once more than ``limit`` bytes came (or were declared)."""
    declared = declared_length(scope)
    seen = 0

    async def receive_limited():
        nonlocal seen
        if declared is not None and declared > limit:
            raise BodyTooLarge(limit)  # refused before a byte of it is read
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_limited
