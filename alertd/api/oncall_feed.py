"""GET /api/v1/oncall/{rotation}.ics?token=...: a rotation's shifts as a calendar feed.

The token is the feed's own (alertd oncall feed NAME), not an API key: calendar
apps cannot send an Authorization header. It travels in the query string, which
the request log never records (api/app.py).
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import oncall_feed
from .errors import ApiError

router = APIRouter(prefix="/api/v1/oncall")


@router.get("/{rotation}.ics", summary="A rotation's next 8 weeks of shifts as iCalendar (token in the URL)")
async def feed(request: Request, rotation: str, token: str = "") -> Response:
    daemon = request.app.state.daemon
    # the same answer for an unknown rotation and a wrong token: a guess learns nothing
    if rotation not in daemon.config.rotations or not await oncall_feed.token_valid(daemon.store, rotation, token):
        raise ApiError(404, "No such feed: check the URL, or make a new one with: alertd oncall feed NAME")
    body = await oncall_feed.calendar(daemon.config, daemon.store, rotation, daemon.clock.now())
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300",
                             "Content-Disposition": f'inline; filename="{rotation}.ics"'})
