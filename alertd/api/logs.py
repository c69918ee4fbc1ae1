"""The trigger log: GET /api/v1/calls/logs and /api/v1/calls/logs/{log_id}."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..clock import from_timestamp, iso
from .errors import ApiError

router = APIRouter(prefix="/api/v1/calls")


def log_row(row) -> dict:
    """A trigger-log row as the API, the CLI and the dashboard show it."""
    # a set: an asyncpg Record's keys() is an iterator, and each `in` below would use it up
    # further (on PostgreSQL, silence_id and summary_log_id came back None)
    keys = set(row.keys())
    return {
        "log_id": row["log_id"],
        "created_at": iso(from_timestamp(row["created_at"])),
        "source": row["source"],
        "to": row["to_number"],
        "type": row["type"],
        "template_id": row["template_id"],
        "message": row["message"],
        "call_sid": row["call_sid"],
        "sms_sid": row["sms_sid"],
        "status": row["status"],
        "call_status": row["call_status"],
        "sms_status": row["sms_status"],
        "acknowledged": row["acknowledged_at"] is not None,
        "acknowledged_at": iso(from_timestamp(row["acknowledged_at"])),
        "acknowledged_by": row["acknowledged_by"],
        "error": json.loads(row["error"]) if row["error"] else None,
        "rule_id": row["rule_id"] if "rule_id" in keys else None,
        "trigger_id": row["trigger_id"],
        "attempt": row["attempt"],
        "step": row["step"],
        "answered_by": row["answered_by"],
        # which provider carried the call and the SMS (providers:, failover); provider: the call's, else the SMS's
        "provider": (row["call_provider"] or row["sms_provider"]) if "call_provider" in keys else None,
        "call_provider": row["call_provider"] if "call_provider" in keys else None,
        "sms_provider": row["sms_provider"] if "sms_provider" in keys else None,
        "silence_id": row["silence_id"] if "silence_id" in keys else None,
        "summary_log_id": row["summary_log_id"] if "summary_log_id" in keys else None,
    }


def parse_since(value: str) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"since: not an ISO 8601 time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def row_id(text: str) -> int | None:
    """A log id from the URL, or None when it cannot be one: isdigit() alone lets
    through "²" (int() refuses it) and ids past SQLite's 64-bit integers, which
    answered 500 instead of 404 (found by schemathesis, tests/reliability)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


@router.get("/logs", summary="The trigger log, newest first")
async def list_logs(request: Request, limit: str = "50", source: str | None = None,
                    since: str | None = None) -> JSONResponse:
    daemon = request.app.state.daemon
    await daemon.auth(request)
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 4) or not 1 <= int(limit) <= 1000:
        raise ApiError(400, "limit: must be a whole number from 1 to 1000")
    rows = await daemon.store.logs.list(limit=int(limit), source=source,
                                  since=parse_since(since) if since else None)
    return JSONResponse({"ok": True, "logs": [log_row(r) for r in rows]})


@router.get("/logs/{log_id}", summary="One trigger-log row")
async def get_log(request: Request, log_id: str) -> JSONResponse:
    daemon = request.app.state.daemon
    await daemon.auth(request)
    number = row_id(log_id)
    row = await daemon.store.logs.get(number) if number is not None else None
    if row is None:
        raise ApiError(404, f"Log row not found: {log_id}")
    return JSONResponse({"ok": True, "log": log_row(row)})


@router.post("/logs/{log_id}/ack", summary="Acknowledge the trigger of a log row (cancels its retries and escalation)")
async def ack(request: Request, log_id: str) -> JSONResponse:
    daemon = request.app.state.daemon
    key_id = await daemon.auth(request)
    number = row_id(log_id)
    if number is None or await daemon.callbacks.acknowledge(number, f"api key {key_id}", "api") is None:
        raise ApiError(404, f"Log row not found: {log_id}")
    return JSONResponse({"ok": True, "log": log_row(await daemon.store.logs.get(number))})
