"""Webhooks (/hooks/NAME, GET and POST) and the rules API (GET /api/v1/rules)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..clock import from_timestamp, iso
from ..sources.webhook import PayloadError
from .errors import ApiError
from .body import read_body

router = APIRouter()


# two routes, not one api_route with two methods: FastAPI would give both the same operation id
@router.get("/hooks/{name}", summary="A webhook bound to rules (GET: query parameters only)", operation_id="hook_get")
@router.post("/hooks/{name}", summary="A webhook bound to rules", operation_id="hook_post")
async def hook(request: Request, name: str) -> JSONResponse:
    daemon = request.app.state.daemon
    daemon.auth(request)
    if not daemon.runner.ruleset.for_webhook(name):
        raise ApiError(404, f"No rule listens on webhook '{name}'.")
    daemon.metrics.webhook_events.labels(name).inc()  # a name some rule listens on: bounded by the rules
    body = None
    if request.method == "POST":
        body = await read_body(request, daemon.config.server.max_body_bytes, allow_empty=True)
    query = dict(request.query_params)
    try:
        result = await daemon.sources.webhook(name, body, query)
    except KeyError:
        raise ApiError(404, f"No rule listens on webhook '{name}'.") from None
    except PayloadError as exc:
        raise ApiError(400, str(exc)) from None
    return JSONResponse({"ok": True, **result})


@router.get("/api/v1/rules", summary="Every rule, its state and the current load errors")
async def rules(request: Request) -> JSONResponse:
    daemon = request.app.state.daemon
    daemon.auth(request)
    runner, manager = daemon.runner, daemon.rules
    summaries = daemon.store.rule_state.summaries()
    jobs = daemon.scheduler.jobs() if daemon.scheduler else {}
    out = []
    for rule_id, rule in runner.ruleset.rules.items():
        s = summaries.get(rule_id, {})
        src = rule.source
        source = ({"webhook": src.webhook, "format": src.webhook_format} if src.webhook is not None else
                  {"poll": src.poll.shown()} if src.poll is not None else
                  {src.kind: getattr(src, src.kind).model_dump(mode="json")})
        out.append({
            "id": rule_id, "description": rule.description, "file": runner.ruleset.files.get(rule_id),
            "source": source, "firing": bool(s.get("firing")),
            "last_evaluated": iso(from_timestamp(runner.last_evaluated.get(rule_id))),
            "last_fired": iso(from_timestamp(runner.last_fired.get(rule_id) or s.get("last_sent_at"))),
            "next_run": iso(jobs.get(rule_id)),
        })
    return JSONResponse({"ok": True, "rules": out, "errors": manager.errors,
                         "loaded_at": iso(from_timestamp(manager.loaded_at))})
