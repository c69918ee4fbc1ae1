"""Silences over HTTP: POST /api/v1/silences (create, or {"action": "delete"}), GET lists the active ones.

An extension of the reference API, so its bodies are strict: an unknown key
(``starts_at``, a misspelt ``reason``) is refused rather than ignored, since a
silence that does something other than what was asked hides alerts.
"""
from __future__ import annotations

from typing import Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..dispatch import silences
from .errors import ApiError
from .models import json_body
from .body import parse, read_body

log = structlog.get_logger("alertd.api")
router = APIRouter(prefix="/api/v1")


class SilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first use, as api/models.py's

    rule_id: str | None = Field(None, description="Silence this rule's notifications.")
    source: str | None = Field(None, max_length=100, description="Silence triggers with this source label.")
    to: str | int | None = Field(None, description="Silence one number (US 10-digit or E.164).")
    duration: str | int | None = Field(None, description="How long, like 30m or 2h (or seconds).")
    until: str | None = Field(None, description="Or an end time, ISO 8601; no offset means the config timezone.")
    reason: str | None = Field(None, description="Why: shown with the silence and kept with it.")


class SilenceDelete(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    action: Literal["delete"]
    silence_id: str


@router.get("/silences", summary="The silences in force")
async def list_silences(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    await daemon.auth(request)
    active = await silences.active(daemon.store, daemon.clock.now())
    return JSONResponse({"ok": True, "silences": [s.as_dict() for s in active]})


@router.post("/silences", summary="Create a silence, or end one with {\"action\": \"delete\"}",
             openapi_extra=json_body(SilenceCreate, SilenceDelete))
async def post_silences(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    key_id = await daemon.auth(request)
    data = await read_body(request, daemon.config.server.max_body_bytes)
    now = daemon.clock.now()
    if isinstance(data, dict) and "action" in data:
        req = parse(SilenceDelete, data)
        if not await silences.remove(daemon.store, req.silence_id, now):
            raise ApiError(404, f"Silence not found or already ended: {req.silence_id}")
        log.info("silence removed", silence_id=req.silence_id)
        return JSONResponse({"ok": True, "silence_id": req.silence_id, "deleted": True})
    req = parse(SilenceCreate, data)
    fields = req.model_dump()
    if fields["to"] is not None:
        fields["to"] = str(fields["to"])
    try:
        silence = await silences.create(daemon.store, now=now, tz=daemon.config.tz, created_by=f"api key {key_id}",
                                  **fields)
    except silences.SilenceError as exc:
        raise ApiError(400, str(exc)) from None
    log.info("silence created", silence_id=silence.silence_id, matcher=silence.matcher, value=silence.value,
             until=silence.as_dict()["ends_at"], created_by=silence.created_by)
    return JSONResponse({"ok": True, "silence_id": silence.silence_id, "silence": silence.as_dict()})
