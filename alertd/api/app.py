"""The HTTP surface, assembled."""
from __future__ import annotations

import time

import structlog
from fastapi import FastAPI, Request

from ..ui import install as install_ui
from . import (errors, health, heartbeats, hooks, inbound, logs, models, notify, oncall_feed, ping, provider_hooks,
               provider_voice, silences, twilio_hooks)
from .limits import BodyLimit, limited

log = structlog.get_logger("alertd.http")


def _log_request(scope, status: int, started: float) -> None:
    """The one line a request leaves: its path, never the query string, which may carry ?key=."""
    log.info("request", method=scope["method"], path=ping.shown_path(scope["path"]), status=status,
             duration_ms=round((time.perf_counter() - started) * 1000, 2))


class RequestLog:
    """ASGI middleware: one log line per request (pure ASGI: no per-request task or body copy)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        structlog.contextvars.clear_contextvars()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _log_request(scope, status["code"], started)
            structlog.contextvars.clear_contextvars()


class App(FastAPI):
    """FastAPI, plus routes served before its middleware stack and router.

    ``fast`` maps (method, path) to an endpoint taking a Request: the notify hot path spent
    a fifth of its CPU in FastAPI's routing and dependency layers, and then 10 to 15 us a
    request in the five ASGI layers every other request passes (Starlette's error
    middleware, FastAPI's telemetry and body-limit layers, alertd's body limit and request
    log). Such a route gets what those layers give it here: the body limit, the error
    envelope of errors.response_for, and the request's log line."""

    fast: dict = {}
    body_limit: int = 0

    async def __call__(self, scope, receive, send):
        endpoint = self.fast.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        if endpoint is None:
            return await super().__call__(scope, receive, send)
        started = time.perf_counter()
        scope["app"] = self
        structlog.contextvars.clear_contextvars()
        response = None
        try:
            request = Request(scope, limited(scope, receive, self.body_limit))
            try:
                response = await endpoint(request)
            except Exception as exc:  # the envelope FastAPI's handlers give
                response = errors.response_for(request, exc)
            await response(scope, receive, send)
        finally:
            _log_request(scope, response.status_code if response is not None else 500, started)
            structlog.contextvars.clear_contextvars()

    def openapi(self) -> dict:
        """FastAPI's document, with the request bodies the routes named by models.json_body
        made now, on the first request for it, rather than at every start-up."""
        if self.openapi_schema is None:
            schema = super().openapi()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if isinstance(operation, dict) and models.BODY_KEY in operation:
                        operation["requestBody"] = models.request_body(operation.pop(models.BODY_KEY))
        return self.openapi_schema


def create_app(daemon, lifespan=None) -> FastAPI:
    # redirect_slashes off: the 307 for a trailing slash built its Location from the Host header
    # and copied ?key= into it; a path with a stray slash is 404 instead
    app = App(title="alertd", version="0.1.0", lifespan=lifespan, redirect_slashes=False,
              description="Alert calls and SMS; a drop-in for the hosted notify API.")
    app.state.daemon = daemon
    errors.install(app)
    app.include_router(notify.router)
    app.include_router(logs.router)
    app.include_router(twilio_hooks.router)
    app.include_router(inbound.router)  # /twilio/voice: live call routing
    app.include_router(oncall_feed.router)  # /api/v1/oncall/{rotation}.ics
    app.include_router(provider_voice.router)  # /providers/NAME/voice: before provider_hooks' /NAME/WHAT
    app.include_router(provider_hooks.router)
    app.include_router(hooks.router)
    app.include_router(silences.router)
    app.include_router(health.router)  # /healthz, /metrics
    app.include_router(heartbeats.router)
    ping.install(app)  # /ping/...: Healthchecks' ping API
    install_ui(app, daemon.config)  # the dashboard, under ui.path

    app.add_middleware(RequestLog)
    # outside the request log; it only wraps receive: the 413 it raises is answered by the
    # error handlers inside RequestLog, and logged like any request
    app.add_middleware(BodyLimit, limit=daemon.config.server.max_body_bytes)
    app.fast = {("POST", "/api/v1/calls/notify"): notify.notify}
    app.body_limit = daemon.config.server.max_body_bytes
    return app
