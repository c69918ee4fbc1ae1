"""GET /api/v1/heartbeats (API key): every heartbeat check, as ``alertd heartbeats`` prints it.

``describe`` is the one view of a check that the API, the CLI and the
dashboard share.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..clock import from_timestamp, iso
from ..engine import heartbeat as hb

router = APIRouter(prefix="/api/v1")


def describe(row, spec: hb.Spec | None, now: float, base_url: str) -> dict:
    """A check's row (and its rule's spec) as shown at ``now``; ``base_url`` makes its ping URL."""
    check = hb.check_of(row)
    state = hb.state(check, spec, now) if spec is not None else "unloaded"
    expected = None
    if spec is not None and check.status == "up" and check.anchor_at is not None:
        expected = hb.expected_at(spec, check.anchor_at)
    return {
        "name": row["rule_id"],
        "state": state,
        "status": check.status,
        "reason": check.reason if check.status == "down" else None,
        "uuid": row["uuid"],
        "slug": row["slug"],
        "ping_url": f"{base_url}/ping/{row['uuid']}",
        "every": hb.format_duration_s(spec.every) if spec and spec.every else None,
        "cron": spec.cron if spec else None,
        "grace": hb.format_duration_s(spec.grace) if spec else None,
        "last_ping_at": iso(from_timestamp(row["last_ping_at"])),
        "last_ping_kind": row["last_ping_kind"],
        "expected_at": iso(from_timestamp(expected)) if expected not in (None, float("inf")) else None,
        "next_deadline": iso(from_timestamp(row["down_at"])),
        "runs": len(check.runs),
        "changed_at": iso(from_timestamp(row["changed_at"])),
        "pings": {"total": row["n_pings"], "success": row["n_success"], "fail": row["n_fail"],
                  "start": row["n_start"], "log": row["n_log"]},
    }


def described(daemon) -> list[dict]:
    beats = daemon.heartbeats
    now = daemon.clock.timestamp()
    base = daemon.config.server.base_url
    return [describe(r, beats.specs.get(r["rule_id"]), now, base) for r in daemon.store.heartbeats.all()]


@router.get("/heartbeats", summary="Heartbeat checks: state, last ping, next deadline, ping URL")
async def list_heartbeats(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    daemon.auth(request)
    return JSONResponse({"ok": True, "heartbeats": described(daemon)})
