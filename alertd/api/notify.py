"""POST /calls/notify and the templates endpoints of the reference API."""
from __future__ import annotations

import secrets
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..dispatch.followups import build_spec
from ..dispatch.notification import Notification, notification
from .body import parse, read_body
from .errors import ApiError
from .models import TEMPLATE_FIELDS, NotifyRequest, TemplateCreate, TemplateDelete, json_body

log = structlog.get_logger("alertd.api")
router = APIRouter(prefix="/api/v1/calls")


class _JSON(JSONResponse):
    """JSONResponse rendered by orjson: the same bytes (UTF-8, no spaces), in a tenth of the time."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _ok(payload: dict, status: int = 200) -> JSONResponse:
    return _JSON({"ok": True, **payload}, status_code=status)


def resolve_params(daemon, req: NotifyRequest, template: dict | None) -> dict:
    """Template defaults, then inline parameters. Raises ApiError 400/403."""
    merged: dict[str, Any] = {k: template.get(k) for k in TEMPLATE_FIELDS} if template else {}
    for field in req.model_fields_set - {"to", "template_id"}:
        key = "from" if field == "from_" else field
        value = getattr(req, field)
        if value is not None:
            merged[key] = value
    if not merged.get("message"):
        raise ApiError(400, "message: is required unless template_id is given.")
    action = merged.get("action_type") or "call"
    if merged.get("send_sms") or req.send_sms:
        action = "both"
    merged["action_type"] = action
    refused = daemon.caller_id.refusal(merged.get("from"))
    if refused:
        raise ApiError(403, refused)
    return merged


def build_rows(daemon, to: list[str], merged: dict, template_id: str | None) -> list[Notification]:
    return [notification(number, merged["action_type"], merged["message"],
                         from_=merged.get("from") or daemon.caller_id.pick(number), voice=merged.get("voice"),
                         repeat=merged.get("repeat"), gather=merged.get("gather"), language=merged.get("language"),
                         template_id=template_id)
            for number in to]


def call_entry(row: Notification) -> dict:
    """One element of the reference's ``calls`` array."""
    entry: dict[str, Any] = {"to": row.to, "type": row.type}
    if row.type in ("call", "both"):
        entry["call_sid"] = row.call_sid
    if row.type in ("sms", "both"):
        entry["sms_sid"] = row.sms_sid
    entry["status"] = row.status
    entry["log_id"] = row.log_id
    if row.error and row.status != "initiated":
        entry["error"] = row.error["message"]
        entry["error_code"] = row.error["code"]
    return entry


async def send(daemon, req: NotifyRequest, *, api_key_id: int | None) -> list[Notification]:
    """The notify flow, for POST /calls/notify and the dashboard's "send a test":
    template defaults, then inline fields; caller ID; retry and escalation; the
    durable outbox and the first attempt. Raises ApiError (400, 403, 404, 503),
    and StoreUnavailable when nothing could be stored."""
    if not daemon.provider.configured:
        raise ApiError(503, "Twilio credentials not configured (provider.account_sid / provider.auth_token).")
    template = None
    if req.template_id is not None:
        template = daemon.store.templates.get(req.template_id)
        if template is None:
            raise ApiError(404, f"Template not found: {req.template_id}")
    merged = resolve_params(daemon, req, template)
    rows = build_rows(daemon, req.to, merged, req.template_id)
    trigger = {"source": merged.get("source"), "api_key_id": api_key_id}
    if req.retry is not None or req.escalate:
        trigger["spec"] = escalation_spec(daemon, req, rows[0])
    return await daemon.submit(trigger, rows)


@router.post("/notify", summary="Trigger an alert call or SMS",
             openapi_extra=json_body(NotifyRequest))
async def notify(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    key_id = daemon.auth(request)
    req = parse(NotifyRequest, await read_body(request, daemon.config.server.max_body_bytes, fast=True))
    rows = await send(daemon, req, api_key_id=key_id)
    calls = [call_entry(r) for r in rows]
    structlog.contextvars.bind_contextvars(log_ids=[r.log_id for r in rows])
    if all(r.status == "failed" for r in rows):
        first = rows[0].error or {}
        raise ApiError(400, first.get("message") or "Every recipient was refused.", calls=calls)
    return _ok({"calls": calls})


def escalation_spec(daemon, req: NotifyRequest, first: Notification) -> dict:
    """retry/escalate of a notify request as the trigger's spec. Raises ApiError 400."""
    steps = []
    for k, st in enumerate(req.escalate or ()):
        try:
            numbers, rotations = daemon.directory.resolve([str(e) for e in st.to], f"escalate[{k}].to")
        except ValueError:
            bad = next(str(e) for e in st.to if not _resolves(daemon, str(e)))
            raise ApiError(400, f"escalate[{k}].to: {bad!r} is not a number, contact, group or rotation") from None
        steps.append({**st.model_dump(exclude={"to"}), "to": numbers, "rotations": rotations})
    base = {"type": first.type, "message": first.message,
            "params": {k: v for k, v in first.params.items() if k != "from"}}
    return build_spec(req.retry.model_dump() if req.retry else None, steps, base)


def _resolves(daemon, entry: str) -> bool:
    try:
        daemon.directory.resolve([entry], "to")
    except ValueError:
        return False
    return True


def _template_out(t: dict) -> dict:
    return {"template_id": t["template_id"], "name": t["name"], **{k: t.get(k) for k in TEMPLATE_FIELDS}}


@router.get("/templates", summary="List templates")
async def list_templates(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    daemon.auth(request)
    return _ok({"templates": [_template_out(t) for t in daemon.store.templates.list()]})


@router.post("/templates", summary="Create or delete a template",
             openapi_extra=json_body(TemplateCreate, TemplateDelete))
async def post_templates(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    daemon.auth(request)
    data = await read_body(request, daemon.config.server.max_body_bytes)
    if isinstance(data, dict) and "action" in data:
        req = parse(TemplateDelete, data)
        if not daemon.store.templates.delete(req.template_id):
            raise ApiError(404, f"Template not found: {req.template_id}")
        return _ok({"template_id": req.template_id, "deleted": True})
    req = parse(TemplateCreate, data)
    refused = daemon.caller_id.refusal(req.from_)
    if refused:
        raise ApiError(403, refused)
    template_id = "tpl_" + secrets.token_hex(6)
    daemon.store.templates.create(template_id, req.name, req.fields(), daemon.clock.timestamp())
    return _ok({"template_id": template_id, "name": req.name})
