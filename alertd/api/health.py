"""GET /healthz and GET /metrics: what a supervisor and a Prometheus ask."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..clock import from_timestamp, iso
from ..runtime.metrics import CONTENT_TYPE
from .errors import ApiError

router = APIRouter()


async def check(daemon) -> dict:
    """The health report: ``ok`` and, when not, the ``problems`` in words.

    ok needs three things: the database answers; the dispatcher loop is alive
    (the same test as the systemd watchdog's, alertd/runtime/service.py); and no
    outbox item has been due for longer than ``server.health_max_outbox_age``
    (a send deferred to later is not due yet, so it is not stuck). Rule file
    errors are reported, not failed on: the last good rules stay live.
    """
    problems: list[str] = []
    now = daemon.clock.timestamp()
    outbox = None
    if not await daemon.store.ping():
        problems.append("the database does not answer")
    else:
        try:
            stats = await daemon.store.outbox.stats(now)
        except Exception as exc:  # noqa: BLE001 - whatever SQLite says, it is the reason
            problems.append(f"the outbox cannot be read: {exc}")
        else:
            age = stats["oldest_due_age"]
            outbox = {"pending": stats["pending"], "due": stats["due"],
                      "oldest_due_age_seconds": None if age is None else round(age, 1)}
            bound = daemon.config.server.health_max_outbox_age.total_seconds()
            if age is not None and age > bound:
                problems.append(f"the oldest due outbox item has waited {age:.0f}s"
                                f" (server.health_max_outbox_age: {bound:.0f}s)")
    loops = daemon.loops_problem()
    if loops:
        problems.append(loops)
    health = daemon.attempts.health
    failing_since = health.failing_since
    report = {"ok": not problems, "rules": {"loaded": len(daemon.runner.ruleset), "errors": daemon.rules.errors}}
    if daemon.cluster is not None:  # several nodes: which one answers, and whether it leads
        report["node"], report["leader"] = daemon.cluster.node_id, daemon.cluster.leader
    if problems:
        report["problems"] = problems
    report["outbox"] = outbox
    report["provider"] = {"failing_since": iso(from_timestamp(failing_since)),
                          "failures": health.failures}
    if daemon.router is not None:  # each provider's circuit and counts (alertd/dispatch/failover.py)
        report["providers"] = daemon.router.health()
    return report


@router.get("/healthz", summary="Health: ok while the database answers, the dispatcher runs and the outbox drains")
async def healthz(request: Request) -> JSONResponse:
    report = await check(request.app.state.daemon)
    return JSONResponse(report, status_code=200 if report["ok"] else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # async on purpose: the scrape reads the store on the event loop's thread, which owns the connection
    daemon = request.app.state.daemon
    cfg = daemon.config.server.metrics
    if not cfg.enabled:
        raise ApiError(404, "Not found.")
    if cfg.require_key:
        await daemon.auth(request)
    return Response(await daemon.metrics.render(), media_type=CONTENT_TYPE)
