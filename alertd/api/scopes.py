"""API key scopes: what each key may do, and the one table of what each route needs.

A key holds one or more scopes (stored space-separated in api_keys.scopes):

- ``admin``: every route (keys made before scopes existed, and keys made without --scope);
- ``notify``: send (POST /api/v1/calls/notify) and use templates;
- ``read``: the trigger log, rules, silences, templates and /metrics (when it needs a key);
- ``hooks:NAME``: the webhook /hooks/NAME only; ``hooks:*``: every webhook.

A door sensor's key, printed into its URL, should be ``hooks:door``: it can
then neither read phone numbers and messages nor acknowledge or silence.

Every route of the app has a decision here: ROUTES (the scopes that open a
keyed route; ``{name}`` is the webhook's name from the path), NO_KEY (routes
that never take an API key, and what checks them instead), or the dashboard's
prefix (its own sessions, alertd/ui). tests/test_scopes.py walks the app and
fails on a route with none, so a new route cannot forget.
"""
from __future__ import annotations

import re

ADMIN, NOTIFY, READ = "admin", "notify", "read"
HOOK = "hooks:{name}"

# (method, route path) -> the scopes that open it (any one of them; admin always does)
ROUTES: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/api/v1/calls/notify"): (NOTIFY,),
    ("GET", "/api/v1/calls/templates"): (NOTIFY, READ),
    ("POST", "/api/v1/calls/templates"): (NOTIFY,),
    ("GET", "/api/v1/calls/logs"): (READ,),
    ("GET", "/api/v1/calls/logs/{log_id}"): (READ,),
    ("POST", "/api/v1/calls/logs/{log_id}/ack"): (ADMIN,),
    ("GET", "/api/v1/rules"): (READ,),
    ("GET", "/api/v1/silences"): (READ,),
    ("POST", "/api/v1/silences"): (ADMIN,),
    ("GET", "/hooks/{name}"): (HOOK,),
    ("POST", "/hooks/{name}"): (HOOK,),
    ("GET", "/metrics"): (READ,),  # only when server.metrics.require_key is set; else as NO_KEY
    ("GET", "/api/v1/heartbeats"): (READ,),
    ("POST", "/api/v1/simulator/inbound"): (NOTIFY,),  # a simulated call's voicemail is texted
}

# routes that never read an API key, and what stands in for one
NO_KEY: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public: a supervisor's health check, no personal data",
    ("POST", "/twilio/status"): "Twilio's signature (X-Twilio-Signature)",
    ("POST", "/twilio/gather"): "Twilio's signature",
    ("POST", "/twilio/sms"): "Twilio's signature",
    ("GET", "/twilio/twiml"): "Twilio's signature",
    ("POST", "/twilio/twiml"): "Twilio's signature",
    ("POST", "/twilio/voice"): "Twilio's signature (the inbound voice webhook, alertd/inbound)",
    ("POST", "/twilio/voice/{what}"): "Twilio's signature (each step of an inbound call)",
    ("GET", "/voicemail/{call_id}"): "the voicemail link's own token (alertd/inbound/listen.py)",
    ("GET", "/api/v1/oncall/{rotation}.ics"): "the feed's own token (alertd oncall feed NAME)",
    ("GET", "/providers/{name}/{what}"): "the named provider's own signature (alertd/providers/*.py)",
    ("POST", "/providers/{name}/{what}"): "the named provider's own signature (alertd/providers/*.py)",
    ("POST", "/providers/{name}/voice"): "the named provider's own signature (inbound calls, api/provider_voice.py)",
    ("POST", "/providers/{name}/voice/{what}"): "the named provider's own signature (each step of an inbound call)",
    ("GET", "/openapi.json"): "public: the API's description",
    ("GET", "/docs"): "public: the API's description",
    ("GET", "/docs/oauth2-redirect"): "public: the API's description",
    ("GET", "/redoc"): "public: the API's description",
    # Healthchecks' ping API (alertd/api/ping.py): the unguessable uuid, or a ping key, is in the path
    **{(m, "/ping/{rest:path}"): "the check's uuid or a ping key in the path" for m in ("GET", "POST")},
}
DASHBOARD = "the dashboard's login session and CSRF token (alertd/ui)"

_HOOK_NAME = re.compile(r"hooks:(\*|[A-Za-z0-9_.-]{1,100})")  # a webhook name (alertd/rules/models.py)


def parse(given: list[str]) -> str:
    """``--scope`` values (each may hold several, split on commas or spaces) as stored: space-separated,
    sorted, without repeats; "admin" when none is given. Raises ValueError naming an unknown one."""
    found = {s for value in given for s in re.split(r"[,\s]+", value.strip()) if s}
    for s in sorted(found):
        if s not in (ADMIN, NOTIFY, READ) and not _HOOK_NAME.fullmatch(s):
            raise ValueError(f"scope: unknown '{s}': use admin, notify, read or hooks:NAME")
    return " ".join(sorted(found)) or ADMIN


def decision(method: str, path: str, ui_path: str) -> str | tuple[str, ...] | None:
    """What opens ``method path``: its scopes, how it is checked without a key, or None (undecided)."""
    if (method, path) in ROUTES:
        return ROUTES[method, path]
    if (method, path) in NO_KEY:
        return NO_KEY[method, path]
    if path == ui_path or path.startswith(ui_path + "/"):
        return DASHBOARD
    return None


def needed(method: str, path: str, path_params: dict) -> tuple[str, ...]:
    """The scopes that open a keyed route (admin only for a route missing from ROUTES: fail closed)."""
    wanted = ROUTES.get((method, path), (ADMIN,))
    return tuple(s.replace("{name}", str(path_params.get("name", ""))) for s in wanted)


def allows(held: str, wanted: tuple[str, ...]) -> bool:
    """Whether a key holding ``held`` (space-separated) may call a route that ``wanted`` opens."""
    have = set(held.split())
    if ADMIN in have:
        return True
    if any(w.startswith("hooks:") for w in wanted) and "hooks:*" in have:
        return True
    return bool(have & set(wanted))


def refusal(held: str, wanted: tuple[str, ...]) -> str:
    """The 403's words: the scope missing, and what the key has."""
    names = " or ".join(f"'{w}'" for w in wanted)
    return (f"This API key lacks the scope {names} (it has: {held.replace(' ', ', ')})."
            f" Make a key for it: alertd keys create --name NAME --scope {wanted[0]}.")
