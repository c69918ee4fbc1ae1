"""Dashboard: the API's message templates (list, create, edit, delete) and "send a test".

The same store as /api/v1/calls/templates, validated by the same model
(TemplateCreate), so a template made here works in the API and the other way
round. A test goes through the same steps as POST /api/v1/calls/notify
(template defaults, caller ID, the durable outbox), under the source
``dashboard-test`` so it stands out in the trigger log.
"""
from __future__ import annotations

import secrets

import structlog
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from ..api.body import parse
from ..api.errors import ApiError
from ..api.logs import row_id
from ..api.models import NotifyRequest, TemplateCreate
from ..api.notify import send
from ..store import StoreError

log = structlog.get_logger("alertd.ui")
TEST_SOURCE = "dashboard-test"
FORM_FIELDS = ("name", "message", "action_type", "from", "voice", "repeat", "language", "source")


def template_of(daemon, form: dict) -> TemplateCreate:
    """The posted form as a template. Raises ApiError naming the field ("repeat: ...")."""
    data: dict = {k: str(form[k]).strip() for k in FORM_FIELDS if str(form.get(k, "")).strip()}
    data["gather"] = bool(form.get("gather"))  # an unticked checkbox is not posted at all
    req = parse(TemplateCreate, data)
    refused = daemon.caller_id.refusal(req.from_)
    if refused:
        raise ApiError(403, refused)
    return req


async def send_test(daemon, template_id: str, to: str) -> list:
    """One notification from the template to ``to``, through POST /calls/notify's own flow.
    Raises ApiError (a bad number, an unknown template, no provider)."""
    req = parse(NotifyRequest, {"to": to, "template_id": template_id, "source": TEST_SOURCE})
    try:
        return await send(daemon, req, api_key_id=None)
    except StoreError as exc:  # the database cannot be written: nothing was sent, say so on the page
        raise ApiError(503, str(exc)) from None


def add_routes(base: str, *, page, post, html) -> None:
    """Registers the pages with ``page``/``post`` (alertd/ui/views.py: login and CSRF checked there)."""
    def list_page(request, session, status=200, **extra):
        d = request.app.state.daemon
        test = row_id(request.query_params.get("test", ""))
        sent = d.store.logs.get(test) if test is not None else None
        return html("templates.html", request, session, status=status, templates=d.store.templates.list(),
                    numbers=d.config.provider.numbers, sent=sent, **extra)

    def edit_page(request, session, template, status=200, **extra):
        return html("template.html", request, session, status=status, t=template,
                    numbers=request.app.state.daemon.config.provider.numbers, **extra)

    def not_found(request, session, template_id):
        return html("message.html", request, session, status=404, title="Not found",
                    text=f"No template {template_id}.")

    @page("/templates")
    async def templates(request: Request, session) -> Response:
        return list_page(request, session)

    @post("/templates")
    async def create(request: Request, session, form: dict) -> Response:
        d = request.app.state.daemon
        try:
            req = template_of(d, form)
        except ApiError as exc:
            return list_page(request, session, status=exc.code, error=exc.error, form=form)
        template_id = "tpl_" + secrets.token_hex(6)  # the API's form of id
        d.store.templates.create(template_id, req.name, req.fields(), d.clock.timestamp())
        log.info("template created", template_id=template_id, by=session["name"])
        return RedirectResponse(f"{base}/templates#{template_id}", status_code=303)

    @page("/templates/{template_id}")
    async def edit(request: Request, session, template_id: str) -> Response:
        template = request.app.state.daemon.store.templates.get(template_id)
        return edit_page(request, session, template) if template else not_found(request, session, template_id)

    @post("/templates/{template_id}")
    async def update(request: Request, session, form: dict, template_id: str) -> Response:
        d = request.app.state.daemon
        template = d.store.templates.get(template_id)
        if template is None:
            return not_found(request, session, template_id)
        try:
            req = template_of(d, form)
        except ApiError as exc:
            return edit_page(request, session, template, status=exc.code, error=exc.error, form=form)
        d.store.templates.update(template_id, req.name, req.fields())
        log.info("template changed", template_id=template_id, by=session["name"])
        return RedirectResponse(f"{base}/templates#{template_id}", status_code=303)

    @post("/templates/{template_id}/delete")
    async def delete(request: Request, session, form: dict, template_id: str) -> Response:
        if request.app.state.daemon.store.templates.delete(template_id):
            log.info("template deleted", template_id=template_id, by=session["name"])
        return RedirectResponse(f"{base}/templates", status_code=303)

    @post("/templates/{template_id}/test")
    async def test(request: Request, session, form: dict, template_id: str) -> Response:
        d = request.app.state.daemon
        try:
            rows = await send_test(d, template_id, str(form.get("to", "")))
        except ApiError as exc:
            return list_page(request, session, status=exc.code, error=exc.error, test_for=template_id,
                             test_to=str(form.get("to", "")))
        log.info("template test sent", template_id=template_id, log_ids=[r.log_id for r in rows],
                 by=session["name"])
        # Post/Redirect/Get: reloading the page shows the test again, it does not send another
        return RedirectResponse(f"{base}/templates?test={rows[0].log_id}", status_code=303)
