"""Connections that do not finish their request head in time are closed.

uvicorn closes an idle keep-alive connection, but not one that was opened and
then said nothing, or that sends a header byte every few seconds (slowloris):
each holds a file descriptor for as long as the client likes, and a few
hundred of them exhausted the open-file limit, so /healthz went unanswered and
provider requests failed with "Too many open files". The ASGI app never sees
such a connection (its request has not begun), so the guard lives in the HTTP
protocol: a timer from the moment the connection is made, or the previous
answer is sent, until the head is complete.

The body is not timed here: a route reads it, bounded by server.max_body_bytes
(alertd/api/limits.py).
"""
from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head is not complete
    ``head_timeout`` seconds after it was opened or after its previous response."""

    head_timeout = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn armed its keep-alive timer: the connection now waits for the next request's head
        if self.timeout_keep_alive_task is not None:
            self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol(head_timeout: float) -> type[HeadTimeoutProtocol]:
    """The protocol class for uvicorn.Config(http=...), with this server's timeout."""
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"head_timeout": head_timeout})
