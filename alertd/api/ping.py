"""The ping API, as Healthchecks answers it: a job's URL changes only its base.

    HEAD|GET|POST /ping/{uuid}                   success
    /ping/{uuid}/start | /fail | /log | /{0-255}  a run started; it failed; a message; an exit status
    /ping/{ping_key}/{slug}[/start|/fail|/log|/{0-255}]   the same, by name

``?rid=UUID`` pairs a start with its end. A POST body (the job's output) is
kept, its first 100,000 bytes. 200 ``OK``; an unknown uuid, key or slug is
404 ``not found``; a malformed rid is 400. No API key: the uuid, or the ping
key, is the secret (so neither is ever logged: the request log line shows
``/ping/…``).
"""
from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..sources.heartbeat import BODY_LIMIT
from ..store import StoreError
from .auth import hash_key
from .limits import BodyTooLarge

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ACTIONS = {"": "success", "start": "start", "fail": "fail", "log": "log"}
HEADERS = {"Ping-Body-Limit": str(BODY_LIMIT), "Access-Control-Allow-Origin": "*"}


def _text(body: str, status: int = 200) -> Response:
    return PlainTextResponse(body, status_code=status, headers=HEADERS)


def parse(parts: list[str]) -> tuple[str | None, str | None, str | None, str] | None:
    """(uuid, ping key, slug, action) of the path after /ping/, or None when it is no ping URL."""
    if not parts or len(parts) > 3 or not parts[0]:
        return None
    if UUID.fullmatch(parts[0]):
        if len(parts) > 2:
            return None
        return parts[0].lower(), None, None, parts[1] if len(parts) == 2 else ""
    if len(parts) < 2:
        return None
    return None, parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def action_of(text: str) -> tuple[str, int | None] | None:
    """(kind, exit status) of the last path segment, or None when it is not one."""
    if text in ACTIONS:
        return ACTIONS[text], None
    if text.isdigit() and len(text) <= 3 and int(text) <= 255:
        return ("success" if int(text) == 0 else "fail"), int(text)
    return None


async def read_capped(request: Request) -> str:
    """The body's first BODY_LIMIT bytes as text; the rest is left unread (the server drops it).

    A body declared longer than server.max_body_bytes is not read at all: the ping still counts,
    with no body (a job whose output is huge must not look like a job that did not run)."""
    kept = bytearray()
    try:
        async for chunk in request.stream():
            kept += chunk[: BODY_LIMIT - len(kept)]
            if len(kept) >= BODY_LIMIT:
                break
    except BodyTooLarge:
        pass
    return kept.decode("utf-8", errors="replace")


async def ping(request: Request) -> Response:
    daemon = request.app.state.daemon
    beats = daemon.heartbeats
    parsed = parse(request.path_params["rest"].split("/"))
    if parsed is None:
        return _text("not found", 404)
    uuid, key, slug, action_text = parsed
    action = action_of(action_text)
    if action is None:
        return _text("not found", 404)
    if uuid is not None:
        rule_id = beats.by_uuid.get(uuid)
    else:
        rule_id = beats.by_slug.get(slug)
        if rule_id is not None and daemon.store.ping_keys.find(hash_key(key)) is None:
            rule_id = None
    if rule_id is None:
        return _text("not found", 404)
    rid = request.query_params.get("rid", "")
    if rid and not UUID.fullmatch(rid):
        return _text("invalid rid", 400)
    body = await read_capped(request) if request.method == "POST" else ""
    kind, exit_status = action
    try:
        await beats.ping(rule_id, kind, exit_status=exit_status, rid=rid.lower(), body=body,
                         method=request.method, remote=request.client.host if request.client else None)
    except KeyError:  # its rule went away in a reload since the lookup
        return _text("not found", 404)
    except StoreError:
        return PlainTextResponse("database unavailable", status_code=503, headers={**HEADERS, "Retry-After": "5"})
    return _text("OK")


def shown_path(path: str) -> str:
    """The path as the request log may show it: a ping URL's uuid or ping key is its secret."""
    return "/ping/…" if path.startswith("/ping/") else path


def install(app) -> None:
    app.add_route("/ping/{rest:path}", ping, methods=["GET", "HEAD", "POST"], include_in_schema=False)
