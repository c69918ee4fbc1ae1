"""The dashboard's routes: login, the trigger log (live over server-sent events), keys, silences, rules.

Sessions are the dashboard's own: the session cookie never opens the API (the
API reads only ``Authorization``/``?key=``) and an API key never opens a page.
Every POST carries the session's CSRF token in a hidden field.
"""
from __future__ import annotations

import asyncio
import gzip
import hmac
import json
from datetime import datetime

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from . import admin, auth, glance, heartbeats_view, render, templates_view

log = structlog.get_logger("alertd.ui")
PAGE_ROWS, MAX_ROWS = 200, 1000
# every script and style is a file of the package: nothing inline, nothing from elsewhere
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
LIVE_WINDOW = 300      # the newest rows the live stream watches for changes
STREAM_SECONDS = 60    # a stream ends after this; EventSource reconnects (and a daemon stop is not held up)


def _local_time(text: str, tz) -> float | None:
    """A datetime-local field's value (the config timezone) as a timestamp; None when empty or not a time."""
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=tz).timestamp() if text.strip() else None
    except ValueError:
        return None


def make_router(base: str) -> APIRouter:
    router = APIRouter(prefix=base, include_in_schema=False)
    throttle = router.throttle = auth.LoginThrottle()

    def ctx(request: Request, session, **extra) -> dict:
        d = request.app.state.daemon
        return {"base": base, "user": session["name"] if session else None,
                "csrf": session["csrf"] if session else "", "when": lambda ts: render.when(ts, d.config.tz),
                "clock_time": lambda ts: render.when(ts, d.config.tz, "%H:%M:%S"),
                "error_text": render.error_text, "code_text": render.code_text, **extra}

    def html(name: str, request: Request, session, status: int = 200, **extra) -> HTMLResponse:
        body = render.page(name, **ctx(request, session, **extra)).encode()
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                   "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP,
                   "Vary": "Accept-Encoding"}
        # the rows repeat the same markup: 1,000 of them compress about tenfold, which matters on a phone
        if len(body) > 4096 and "gzip" in request.headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        return HTMLResponse(body, status_code=status, headers=headers)

    def session_of(request: Request):
        token = request.cookies.get(auth.SESSION_COOKIE)
        if not token:
            return None
        d = request.app.state.daemon
        return d.store.users.find_session(auth.hash_session(token), d.clock.timestamp())

    def to_login() -> RedirectResponse:
        return RedirectResponse(base + "/login", status_code=303)

    async def form_of(request: Request, session) -> dict | None:
        """The posted form, or None when its CSRF token is not the session's."""
        form = dict(await request.form())
        if session is None or not hmac.compare_digest(str(form.get("csrf", "")).encode(), session["csrf"].encode()):
            return None
        return form

    def secure(request: Request) -> bool:
        return (request.app.state.daemon.config.server.public_url or "").startswith("https:")

    def forbidden(request: Request, session) -> HTMLResponse:
        return html("message.html", request, session, status=403, title="Refused",
                    text="The form was out of date or not from this dashboard (CSRF check). Reload and try again.")

    async def posted(request: Request) -> tuple[dict, dict] | Response:
        """(session, form) of a logged-in, CSRF-checked POST; otherwise the login redirect or a 403 page."""
        session = session_of(request)
        if session is None:
            return to_login()
        form = await form_of(request, session)
        return forbidden(request, session) if form is None else (session, form)

    def page(path: str):
        """Registers ``handler(request, session, **path params)`` as a GET page for logged-in users
        (others go to the login page). Path params take Starlette convertors: {log_id:int}."""
        def register(handler):
            async def endpoint(request: Request) -> Response:
                session = session_of(request)
                return to_login() if session is None else await handler(request, session, **request.path_params)
            router.add_api_route(path, endpoint, methods=["GET"], response_class=HTMLResponse, name=handler.__name__)
            return handler
        return register

    def post(path: str):
        """Registers ``handler(request, session, form, **path params)`` as a POST form handler,
        called only for a logged-in user whose form carries the session's CSRF token."""
        def register(handler):
            async def endpoint(request: Request) -> Response:
                got = await posted(request)
                return got if isinstance(got, Response) else await handler(request, *got, **request.path_params)
            router.add_api_route(path, endpoint, methods=["POST"], name=handler.__name__)
            return handler
        return register

    # --- login -------------------------------------------------------------
    @router.get("", response_class=HTMLResponse)
    async def root() -> Response:
        return RedirectResponse(base + "/", status_code=307)

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, failed: str = "") -> Response:
        token = auth.new_token()
        resp = html("login.html", request, None, login_csrf=token, failed=bool(failed))
        resp.set_cookie(auth.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure(request),
                        path=base + "/login", max_age=3600)
        return resp

    @router.post("/login")
    async def login(request: Request) -> Response:
        d = request.app.state.daemon
        form = dict(await request.form())
        cookie = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(str(form.get("csrf", "")).encode(), cookie.encode()):
            return forbidden(request, None)
        name, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        # behind a reverse proxy on this host, uvicorn takes the address from X-Forwarded-For
        client = request.client.host if request.client else "unknown"
        async with throttle.lock(client):
            user = d.store.users.get(name) if name else None
            # scrypt takes ~50 ms and 16 MiB: off the event loop, which also serves the API
            async with throttle.hashing:
                ok = await asyncio.to_thread(auth.verify, password, user["password_hash"] if user else None)
            if not ok:
                delay = await throttle.failed(client)
                log.warning("dashboard login failed", user=name, client=client, delay_s=delay)
                return RedirectResponse(base + "/login?failed=1", status_code=303)
            throttle.succeeded(client)
        token, now = auth.new_token(), d.clock.timestamp()
        d.store.users.add_session(auth.hash_session(token), user["user_id"], auth.new_token(), now,
                      now + auth.SESSION_SECONDS)
        log.info("dashboard login", user=name)
        resp = RedirectResponse(base + "/", status_code=303)
        resp.set_cookie(auth.SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure(request),
                        path=base, max_age=auth.SESSION_SECONDS)
        resp.delete_cookie(auth.LOGIN_CSRF_COOKIE, path=base + "/login")
        return resp

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = session_of(request)
        if session is not None and await form_of(request, session) is None:
            return forbidden(request, session)
        if session is not None:
            request.app.state.daemon.store.users.end_session(session["session_hash"])
        resp = to_login()
        resp.delete_cookie(auth.SESSION_COOKIE, path=base)
        return resp

    # --- the trigger log ---------------------------------------------------
    def filters_of(request: Request) -> dict:
        p = request.query_params
        ack = p.get("acknowledged", "")
        try:
            limit = max(1, min(int(p.get("limit") or PAGE_ROWS), MAX_ROWS))
        except ValueError:
            limit = PAGE_ROWS
        tz = request.app.state.daemon.config.tz
        return {"since": _local_time(p.get("since", ""), tz), "until": _local_time(p.get("until", ""), tz),
                "since_text": p.get("since", ""), "until_text": p.get("until", ""),
                "source": p.get("source", "").strip(), "rule_id": p.get("rule", "").strip(),
                "to_number": p.get("number", "").strip(), "status": p.get("status", "").strip(),
                "acknowledged": {"yes": True, "no": False}.get(ack), "limit": limit, "ack_text": ack}

    def query(d, f: dict, **kw):
        return d.store.dashboard.filtered_logs(limit=kw.pop("limit", f["limit"]), acknowledged=f["acknowledged"],
                               source=f["source"], rule_id=f["rule_id"], to_number=f["to_number"],
                               status=f["status"], since=f["since"], until=f["until"], **kw)

    @page("/")
    async def trigger_log(request: Request, session) -> Response:
        f = filters_of(request)
        rows = query(request.app.state.daemon, f)
        return html("log.html", request, session, rows=rows, f=f, query=request.url.query,
                    last_id=rows[0]["log_id"] if rows else 0)

    @router.get("/events")
    async def events(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return Response(status_code=401)
        d, f = request.app.state.daemon, filters_of(request)
        try:
            after = int(request.query_params.get("after") or 0)
        except ValueError:
            after = 0
        # the macro with the page's globals (base, csrf, when): the same row HTML the page renders
        row_macro = render.env.get_template("_row.html").make_module(ctx(request, session)).row

        def fingerprint(r) -> tuple:
            return (r["status"], r["call_status"], r["sms_status"], r["acknowledged_at"], r["error"], r["answered_by"])

        async def stream():
            seen = {r["log_id"]: fingerprint(r) for r in query(d, f, limit=LIVE_WINDOW) if r["log_id"] <= after}
            yield "retry: 1000\n\n"
            loop = asyncio.get_running_loop()
            until = loop.time() + STREAM_SECONDS
            while loop.time() < until:  # a client that leaves is noticed by StreamingResponse, which cancels this
                if session_of(request) is None:  # logged out (or expired) elsewhere: the stream ends with it
                    return
                for r in reversed(query(d, f, limit=LIVE_WINDOW)):
                    fp = fingerprint(r)
                    if seen.get(r["log_id"]) != fp:
                        kind = "change" if r["log_id"] in seen or r["log_id"] <= after else "new"
                        seen[r["log_id"]] = fp
                        data = json.dumps({"id": r["log_id"], "kind": kind, "html": str(row_macro(r))})
                        yield f"event: row\ndata: {data}\n\n"
                await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @page("/triggers/{trigger_id:int}")
    async def trigger_page(request: Request, session, trigger_id: int) -> Response:
        trigger, rows, followups = request.app.state.daemon.store.dashboard.trigger_story(trigger_id)
        if trigger is None:
            return html("message.html", request, session, status=404, title="Not found",
                        text=f"No trigger {trigger_id}.")
        callbacks = request.app.state.daemon.store.status.history([r["log_id"] for r in rows])
        return html("trigger.html", request, session, trigger=trigger, rows=rows, followups=followups,
                    callbacks=callbacks)

    @post("/logs/{log_id:int}/ack")
    async def acknowledge(request: Request, session, form: dict, log_id: int) -> Response:
        d = request.app.state.daemon
        d.callbacks.acknowledge(log_id, by=f"dashboard:{session['name']}", via="dashboard")
        back = str(form.get("next") or "")
        return RedirectResponse(back if back.startswith(base + "/") else base + "/", status_code=303)

    for module in (admin, glance, heartbeats_view, templates_view):
        module.add_routes(base, page=page, post=post, html=html)
    return router
