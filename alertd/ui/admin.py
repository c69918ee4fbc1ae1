"""Dashboard pages besides the trigger log: API keys, silences, rules (read-only: rules stay in YAML)."""
from __future__ import annotations

import structlog
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from .. import oncall
from ..dispatch import silences
from ..engine import preview
from ..api import scopes
from ..api.auth import generate_key

log = structlog.get_logger("alertd.ui")


def add_routes(base: str, *, page, post, html) -> None:
    """Registers the pages with ``page``/``post`` (alertd/ui/views.py: login and CSRF checked there)."""
    def keys_page(request, session, status=200, **extra):
        return html("keys.html", request, session, status=status, keys=request.app.state.daemon.store.keys.list(),
                    **extra)

    @page("/keys")
    async def keys(request: Request, session) -> Response:
        return keys_page(request, session)

    @post("/keys")
    async def create_key(request: Request, session, form: dict) -> Response:
        name = str(form.get("name", "")).strip()[:100]
        if not name:
            return keys_page(request, session, error="A key needs a name.")
        try:
            granted = scopes.parse([str(form.get("scopes", ""))[:1000]])
        except ValueError as exc:
            return keys_page(request, session, status=400, error=str(exc))
        d = request.app.state.daemon
        key, prefix, digest = generate_key()
        key_id = d.store.keys.create(name, prefix, digest, d.clock.timestamp(), scopes=granted)
        log.info("api key created", key_id=key_id, scopes=granted, by=session["name"])
        # shown once, in this response only: never stored, never in a URL
        return keys_page(request, session, new_key=key, new_name=name)

    @post("/keys/{key_id:int}/revoke")
    async def revoke_key(request: Request, session, form: dict, key_id: int) -> Response:
        d = request.app.state.daemon
        if d.store.keys.revoke(key_id, d.clock.timestamp()):
            log.info("api key revoked", key_id=key_id, by=session["name"])
        return RedirectResponse(base + "/keys", status_code=303)

    def on_call_now(d) -> list[dict]:
        """Per rotation: who is on call now (override or schedule) and the next three handoffs."""
        cfg, now, out = d.config, d.clock.now(), []
        for name, rot in cfg.rotations.items():
            overrides = oncall.load_overrides(d.store, name, now, cfg.contacts)
            current = oncall.on_call(rot, cfg.tz, now, overrides)
            out.append({"name": name, "contact": current.contact, "phone": cfg.contacts[current.contact].phone,
                        "until": current.until.timestamp(), "override": current.override is not None,
                        "next": [{"at": h.at.timestamp(), "contact": h.contact, "note": h.note}
                                 for h in oncall.next_handoffs(rot, cfg.tz, now, 3, overrides)]})
        return out

    def silences_page(request, session, status=200, **extra):
        d = request.app.state.daemon
        return html("silences.html", request, session, status=status, rotations=on_call_now(d),
                    silences=silences.active(d.store, d.clock.now()), **extra)

    @page("/silences")
    async def list_silences(request: Request, session) -> Response:
        return silences_page(request, session)

    @post("/silences")
    async def add_silence(request: Request, session, form: dict) -> Response:
        matcher = str(form.get("matcher", ""))
        if matcher not in ("rule_id", "source", "to"):
            return silences_page(request, session, status=400, error="Choose what to silence.", form=form)
        d = request.app.state.daemon
        fields = {matcher: str(form.get("value", "")).strip() or None,
                  "duration": str(form.get("duration", "")).strip() or None,
                  "reason": str(form.get("reason", "")).strip() or None}
        try:
            s = silences.create(d.store, now=d.clock.now(), tz=d.config.tz,
                                created_by=f"dashboard:{session['name']}", **fields)
        except silences.SilenceError as exc:
            return silences_page(request, session, status=400, error=str(exc), form=form)
        log.info("silence created", silence_id=s.silence_id, by=session["name"])
        return RedirectResponse(base + "/silences", status_code=303)

    @post("/silences/{silence_id}/end")
    async def end_silence(request: Request, session, form: dict, silence_id: str) -> Response:
        d = request.app.state.daemon
        if silences.remove(d.store, silence_id, d.clock.now()):
            log.info("silence removed", silence_id=silence_id, by=session["name"])
        return RedirectResponse(base + "/silences", status_code=303)

    def rules_page(request, session, status=200, **extra):
        d = request.app.state.daemon
        ruleset, state = d.runner.ruleset, d.store.rule_state.summaries()
        fired = d.store.dashboard.rules_last_fired()
        rows = []
        for rule_id, rule in ruleset.rules.items():
            src = rule.source
            kind = next((k for k in ("webhook", "poll", "schedule", "heartbeat") if getattr(src, k, None) is not None),
                        "api")
            st = state.get(rule_id, {})
            last = max(filter(None, (st.get("last_sent_at"), fired.get(rule_id))), default=None)
            rows.append({"id": rule_id, "file": ruleset.files.get(rule_id), "source": kind,
                         "detail": getattr(src, "webhook", None) if kind == "webhook" else "",
                         "firing": st.get("firing", False), "last_fired": last})
        return html("rules.html", request, session, status=status, rules=rows, errors=d.rules.errors, **extra)

    @page("/rules")
    async def rules(request: Request, session) -> Response:
        return rules_page(request, session, form={"rule": request.query_params.get("rule", "")})

    @post("/rules/dry-run")
    async def dry_run(request: Request, session, form: dict) -> Response:
        """What `alertd test-rule` prints, for the live rule set: evaluates only, sends nothing."""
        d = request.app.state.daemon
        rule_id, text = str(form.get("rule", "")), str(form.get("event", ""))
        rule = d.runner.ruleset.rules.get(rule_id)
        if rule is None:
            return rules_page(request, session, status=400, form=form,
                              dry_error=f"rule: no rule '{rule_id}' is loaded")
        try:
            event = preview.read_event(text)
        except ValueError as exc:
            return rules_page(request, session, status=400, form=form, dry_error=f"event: {exc}")
        lines, ok = preview.dry_run(rule, event, d.clock.now(), names=d.directory, ruleset=d.runner.ruleset,
                                    resolved=bool(form.get("resolved")))
        return rules_page(request, session, form=form, dry_lines=lines, dry_ok=ok)
