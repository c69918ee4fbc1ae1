"""The HTTP surface, assembled."""
from __future__ import annotations

import time

import structlog
from fastapi import FastAPI, Request

from ..ui import install as install_ui
from . import (errors, health, heartbeats, hooks, inbound, logs, notify, oncall_feed, ping, provider_hooks,
               provider_voice, silences, twilio_hooks)
from .limits import BodyLimit

log = structlog.get_logger("alertd.http")


class RequestLog:
    """One log line per request (pure ASGI: no per-request task or body copy).

    Logs the path, never the query string, which may carry ?key=.
    """

    def __init__(self, app, owner=None, fast=None):
        self.app, self.owner = app, owner
        # (method, path) -> endpoint served without FastAPI's routing and
        # dependency layers: the notify hot path spends a fifth of its CPU there
        self.fast = fast or {}

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
            endpoint = self.fast.get((scope["method"], scope["path"]))
            if endpoint is None:
                await self.app(scope, receive, send_wrapper)
            else:
                scope["app"] = self.owner
                request = Request(scope, receive)
                try:
                    response = await endpoint(request)
                except Exception as exc:  # the same envelope FastAPI's handlers give
                    response = errors.response_for(request, exc)
                await response(scope, receive, send_wrapper)
        finally:
            log.info("request", method=scope["method"], path=ping.shown_path(scope["path"]), status=status["code"],
                     duration_ms=round((time.perf_counter() - started) * 1000, 2))
            structlog.contextvars.clear_contextvars()


def create_app(daemon, lifespan=None) -> FastAPI:
    # redirect_slashes off: the 307 for a trailing slash built its Location from the Host header
    # and copied ?key= into it; a path with a stray slash is 404 instead
    app = FastAPI(title="alertd", version="0.1.0", lifespan=lifespan, redirect_slashes=False,
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

    app.add_middleware(RequestLog, owner=app, fast={("POST", "/api/v1/calls/notify"): notify.notify})
    # outermost, so it wraps the notify fast path too; it only wraps receive: the 413 it raises is
    # answered by the error handlers inside RequestLog, and logged like any request
    app.add_middleware(BodyLimit, limit=daemon.config.server.max_body_bytes)
    return app
