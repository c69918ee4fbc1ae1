"""POST /calls/notify and the templates endpoints of the reference API."""
from __future__ import annotations

import json
import secrets
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from .. import phones
from ..escalation import build_spec
from .errors import ApiError, describe_validation
from .limits import BodyTooLarge
from .models import TEMPLATE_FIELDS, NotifyRequest, TemplateCreate, TemplateDelete, json_body

log = structlog.get_logger("alertd.api")
router = APIRouter(prefix="/api/v1/calls")


async def read_body(request: Request, limit: int, *, allow_empty: bool = False, fast: bool = False) -> Any:
    """The JSON (or form) body; None when empty and ``allow_empty``. Raises ApiError 400 / 413.

    ``fast``: parse with orjson, which reads an integer beyond 64 bits as a float:
    fine for notify's fields, not for a webhook's event (a rule may template it)."""
    raw = await request.body()  # never more than the limit: alertd/api/limits.py stops it sooner
    if len(raw) > limit:
        raise BodyTooLarge(limit)
    ctype = request.headers.get("content-type", "")
    looks_json = raw.lstrip()[:1] in (b"{", b"[")  # curl -d without a Content-Type still sends JSON
    if not looks_json and (ctype.startswith("application/x-www-form-urlencoded")
                           or ctype.startswith("multipart/form-data")):
        async with request.form() as form:  # closes what a multipart part spooled
            for k, v in form.multi_items():
                if not isinstance(v, str):  # it would reach a message as "UploadFile(filename=...)"
                    raise ApiError(400, f"{k}: a file upload; send text fields only")
            return {k: (form.getlist(k) if len(form.getlist(k)) > 1 else v) for k, v in form.items()}
    if not raw.strip():
        if allow_empty:
            return None
        raise ApiError(400, "Request body is empty: send a JSON object.")
    if fast:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:  # the standard library says what is wrong in the words people search for
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None
    except ValueError:  # what else json.loads raises: int() refuses integers of more than 4300 digits
        raise ApiError(400, "Malformed JSON body: an integer has more than 4300 digits.") from None
    except RecursionError:
        raise ApiError(400, "Malformed JSON body: nested too deeply.") from None


def parse(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, describe_validation(exc)) from None


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
    numbers = daemon.config.provider.numbers
    if merged.get("from"):
        if numbers and merged["from"] not in numbers or not numbers and daemon.config.provider.kind == "twilio":
            raise ApiError(403, f"from: caller ID {merged['from']} is not one of this account's numbers.")
    return merged


def build_rows(daemon, to: list[str], merged: dict, template_id: str | None) -> list[dict]:
    params = {"voice": merged.get("voice") or "alice", "repeat": merged.get("repeat") or 1,
              "gather": bool(merged.get("gather")), "language": merged.get("language")}
    rows = []
    for number in to:
        p = dict(params, **{"from": merged.get("from") or daemon.caller_id(number)})
        rows.append({"to": number, "type": merged["action_type"], "message": merged["message"],
                     "template_id": template_id, "params": p})
    return rows


def call_entry(row: dict) -> dict:
    """One element of the reference's ``calls`` array."""
    entry: dict[str, Any] = {"to": row["to"], "type": row["type"]}
    if row["type"] in ("call", "both"):
        entry["call_sid"] = row.get("call_sid")
    if row["type"] in ("sms", "both"):
        entry["sms_sid"] = row.get("sms_sid")
    entry["status"] = row["status"]
    entry["log_id"] = row["log_id"]
    if row.get("error") and row["status"] != "initiated":
        entry["error"] = row["error"]["message"]
        entry["error_code"] = row["error"]["code"]
    return entry


@router.post("/notify", summary="Trigger an alert call or SMS",
             openapi_extra=json_body(NotifyRequest))
async def notify(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    key_id = daemon.auth(request)
    req = parse(NotifyRequest, await read_body(request, daemon.config.server.max_body_bytes, fast=True))
    if not daemon.provider.configured:
        raise ApiError(503, "Twilio credentials not configured (provider.account_sid / provider.auth_token).")
    template = None
    if req.template_id is not None:
        template = daemon.store.get_template(req.template_id)
        if template is None:
            raise ApiError(404, f"Template not found: {req.template_id}")
    merged = resolve_params(daemon, req, template)
    rows = build_rows(daemon, req.to, merged, req.template_id)
    trigger = {"source": merged.get("source"), "api_key_id": key_id}
    if req.retry is not None or req.escalate:
        trigger["spec"] = escalation_spec(daemon, req, rows[0])
    rows = await daemon.submit(trigger, rows)
    calls = [call_entry(r) for r in rows]
    structlog.contextvars.bind_contextvars(log_ids=[r["log_id"] for r in rows])
    if all(r["status"] == "failed" for r in rows):
        first = rows[0].get("error") or {}
        raise ApiError(400, first.get("message") or "Every recipient was refused.", calls=calls)
    return _ok({"calls": calls})


def escalation_spec(daemon, req: NotifyRequest, first: dict) -> dict:
    """retry/escalate of a notify request as the trigger's spec. Raises ApiError 400."""
    names = daemon.config
    steps = []
    for k, st in enumerate(req.escalate or ()):
        numbers, rotations = [], []
        for entry in st.to:
            entry = str(entry)
            if entry in names.contacts:
                numbers.append(names.contacts[entry].phone)
            elif entry in names.groups:
                numbers.extend(names.contacts[m].phone for m in names.groups[entry])
            elif entry in (getattr(names, "rotations", None) or {}):
                rotations.append(entry)
            else:
                try:
                    numbers.append(phones.normalize(entry))
                except ValueError:
                    raise ApiError(400, f"escalate[{k}].to: {entry!r} is not a number, contact, group or rotation")
        steps.append({**st.model_dump(exclude={"to"}), "to": numbers, "rotations": rotations})
    base = {"type": first["type"], "message": first["message"],
            "params": {k: v for k, v in first["params"].items() if k != "from"}}
    return build_spec(req.retry.model_dump() if req.retry else None, steps, base)


def _template_out(t: dict) -> dict:
    return {"template_id": t["template_id"], "name": t["name"], **{k: t.get(k) for k in TEMPLATE_FIELDS}}


@router.get("/templates", summary="List templates")
async def list_templates(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    daemon.auth(request)
    return _ok({"templates": [_template_out(t) for t in daemon.store.list_templates()]})


@router.post("/templates", summary="Create or delete a template",
             openapi_extra=json_body(TemplateCreate, TemplateDelete))
async def post_templates(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    daemon.auth(request)
    data = await read_body(request, daemon.config.server.max_body_bytes)
    if isinstance(data, dict) and "action" in data:
        req = parse(TemplateDelete, data)
        if not daemon.store.delete_template(req.template_id):
            raise ApiError(404, f"Template not found: {req.template_id}")
        return _ok({"template_id": req.template_id, "deleted": True})
    req = parse(TemplateCreate, data)
    numbers = daemon.config.provider.numbers
    if req.from_ and numbers and req.from_ not in numbers:
        raise ApiError(403, f"from: caller ID {req.from_} is not one of this account's numbers.")
    template_id = "tpl_" + secrets.token_hex(6)
    daemon.store.create_template(template_id, req.name, req.fields(), daemon.clock.timestamp())
    return _ok({"template_id": template_id, "name": req.name})
