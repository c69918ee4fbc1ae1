"""API key scopes: a door sensor's key opens its webhook and nothing else.

Every route of the app has a scope decision in alertd/api/scopes.py (a scope,
or how it is checked without a key), and each keyed route refuses a key
without its scope with the 403 envelope naming the scope.

A key's scopes are stored with it: the tests of scoped keys at work run on
SQLite and on PostgreSQL. The route table, the parser and SQLite's upgrade of
keys made before scopes run once.
"""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time

import fastapi.routing
import pytest
import requests

from alertd.api import scopes
from alertd.api.auth import generate_key
from alertd.store import Store
from alertd.store.sqlite.schema import MIGRATIONS
from conftest import both_backends, sync
from test_ui_auth import add_user, csrf_of, login

NUMBER = "+15551234567"
DOOR_RULE = """
rules:
  - id: door
    source: {webhook: door}
    notify: {to: [manager], message: "Door {{ event.state }}", action_type: sms}
  - id: garage
    source: {webhook: garage}
    notify: {to: [manager], message: "Garage {{ event.state }}", action_type: sms}
"""


def key_with(d, *granted: str) -> requests.Session:
    key, prefix, digest = generate_key()
    d.run(d.daemon.store.keys.create("scoped", prefix, digest, time.time(), scopes=scopes.parse(list(granted))))
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    return s


@pytest.fixture
def d(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "door.yaml").write_text(DOOR_RULE)
    return make_daemon({"server": {"metrics": {"require_key": True}}})


def app_routes(app):
    """Every route of ``app``, whichever way this FastAPI keeps the routers it includes."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)  # FastAPI 0.16x includes lazily
    return list(flatten(app.routes)) if flatten else list(app.routes)


def test_every_route_of_the_app_has_a_scope_decision(d):
    undecided, seen = [], set()
    ui = d.config.ui.path
    routes = app_routes(d.daemon.app)
    assert len(routes) > 30
    for route in routes:
        if getattr(route, "methods", None) is None:
            assert route.path.startswith(ui + "/"), route.path  # a mount: the dashboard's static files
            continue
        for method in sorted(route.methods - {"HEAD"}):
            seen.add((method, route.path))
            if scopes.decision(method, route.path, ui) is None:
                undecided.append(f"{method} {route.path}")
    assert undecided == [], "routes without a scope decision in alertd/api/scopes.py"
    stale = set(scopes.ROUTES) | set(scopes.NO_KEY)
    assert stale - seen == set(), "alertd/api/scopes.py names routes the app does not have"


@both_backends
def test_every_keyed_route_refuses_a_key_without_its_scope_with_403_naming_it(d):
    wrong = key_with(d, "hooks:elsewhere")
    for (method, path), needed in scopes.ROUTES.items():
        url = d.url(path.replace("{log_id}", "1").replace("{name}", "door"))
        r = wrong.request(method, url, json={}, timeout=10)
        assert r.status_code == 403, (method, path, r.text)
        body = r.json()
        assert body["ok"] is False and body["code"] == 403
        wanted = [n.replace("{name}", "door") for n in needed]
        assert all(f"'{n}'" in body["error"] for n in wanted), (path, body)
        assert body["missing_scope"] == wanted[0], body


@both_backends
def test_a_hooks_scope_opens_its_own_webhook_and_nothing_else(d):
    door = key_with(d, "hooks:door")
    r = door.post(d.url("/hooks/door"), json={"state": "open"}, timeout=10)
    assert r.status_code == 200 and r.json()["fired"] == ["door"], r.text
    assert door.post(d.url("/hooks/garage"), json={"state": "open"}, timeout=10).status_code == 403
    refused = door.post(d.url("/api/v1/calls/notify"), json={"to": NUMBER, "message": "x"}, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"] == ("This API key lacks the scope 'notify' (it has: hooks:door)."
                                       " Make a key for it: alertd keys create --name NAME --scope notify.")
    for path in ("/api/v1/calls/logs", "/api/v1/rules", "/api/v1/silences", "/metrics"):
        assert door.get(d.url(path), timeout=10).status_code == 403, path
    assert door.post(d.url("/api/v1/silences"), json={"rule_id": "door", "duration": "1h", "reason": "x"},
                     timeout=10).status_code == 403
    assert d.query("SELECT COUNT(*) FROM silences") == [(0,)]


@both_backends
def test_hooks_star_opens_every_webhook(d):
    every = key_with(d, "hooks:*")
    for name in ("door", "garage"):
        assert every.post(d.url(f"/hooks/{name}"), json={"state": "x"}, timeout=10).status_code == 200


@both_backends
def test_notify_sends_and_uses_templates_but_reads_no_log_and_acks_nothing(d):
    sender = key_with(d, "notify")
    r = sender.post(d.url("/api/v1/calls/notify"), json={"to": NUMBER, "message": "x"}, timeout=10)
    assert r.status_code == 200, r.text
    log_id = r.json()["calls"][0]["log_id"]
    assert sender.post(d.url("/api/v1/calls/templates"), json={"name": "t", "message": "m"},
                       timeout=10).status_code == 200
    assert sender.get(d.url("/api/v1/calls/templates"), timeout=10).status_code == 200
    assert sender.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).status_code == 403
    assert sender.post(d.url(f"/api/v1/calls/logs/{log_id}/ack"), timeout=10).status_code == 403
    assert sender.post(d.url("/hooks/door"), json={}, timeout=10).status_code == 403


@both_backends
def test_read_reads_but_sends_nothing(d):
    reader = key_with(d, "read")
    for path in ("/api/v1/calls/logs", "/api/v1/rules", "/api/v1/silences", "/api/v1/calls/templates",
                 "/metrics"):
        assert reader.get(d.url(path), timeout=10).status_code == 200, path
    assert reader.post(d.url("/api/v1/calls/notify"), json={"to": NUMBER, "message": "x"},
                       timeout=10).status_code == 403
    assert d.query("SELECT COUNT(*) FROM logs") == [(0,)]


@both_backends
def test_several_scopes_add_up_and_admin_opens_everything(d):
    both = key_with(d, "notify", "read")
    assert both.post(d.url("/api/v1/calls/notify"), json={"to": NUMBER, "message": "x"}, timeout=10).ok
    assert both.get(d.url("/api/v1/calls/logs"), timeout=10).ok
    admin = key_with(d, "admin")
    assert admin.post(d.url("/api/v1/silences"), json={"rule_id": "door", "duration": "1h", "reason": "x"},
                      timeout=10).ok
    assert admin.post(d.url("/hooks/garage"), json={}, timeout=10).ok


def test_keys_made_before_scopes_existed_are_admin(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:8], start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version={number}")
    conn.execute("INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES ('old', 'ak_live_abcd', 'h', 1)")
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        assert sync(store.keys.find("h"))["scopes"] == "admin"
        assert [r["scopes"] for r in sync(store.keys.list())] == ["admin"]
    finally:
        store.close()


@pytest.mark.parametrize("given, error", [
    (["bogus"], "scope: unknown 'bogus': use admin, notify, read or hooks:NAME"),
    (["hooks:"], "scope: unknown 'hooks:': use admin, notify, read or hooks:NAME"),
    (["hooks:a/b"], "scope: unknown 'hooks:a/b': use admin, notify, read or hooks:NAME"),
    (["notify, bogus"], "scope: unknown 'bogus': use admin, notify, read or hooks:NAME"),
])
def test_parse_refuses_unknown_scopes_naming_them(given, error):
    with pytest.raises(ValueError) as exc:
        scopes.parse(given)
    assert str(exc.value) == error


def alertd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True, text=True, timeout=60)


@both_backends
def test_cli_creates_a_scoped_key_lists_its_scopes_and_refuses_an_unknown_one(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "door.yaml").write_text(DOOR_RULE)
    d = make_daemon()
    cfg = str(d.config_path)
    made = alertd("keys", "create", "--name", "door", "--scope", "hooks:door", "-c", cfg)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    both = alertd("keys", "create", "--name", "ops", "--scope", "notify", "--scope", "read", "-c", cfg)
    assert both.returncode == 0, both.stderr
    listed = alertd("keys", "list", "-c", cfg).stdout.splitlines()
    assert listed[0].split() == ["ID", "NAME", "PREFIX", "CREATED", "LAST", "USED", "SCOPES", "STATE"]
    by_name = {line.split()[1]: line.split() for line in listed[1:]}
    assert by_name["test"][-2] == "admin"  # made without --scope: admin, as before scopes
    assert by_name["door"][-2] == "hooks:door" and by_name["ops"][-2] == "notify,read"
    headers = {"Authorization": f"Bearer {key}"}
    assert requests.post(d.url("/hooks/door"), json={"state": "open"}, headers=headers, timeout=10).ok
    assert requests.get(d.url("/api/v1/calls/logs"), headers=headers, timeout=10).status_code == 403
    bad = alertd("keys", "create", "--name", "x", "--scope", "everything", "-c", cfg)
    assert bad.returncode == 2 and "scope: unknown 'everything'" in bad.stderr and bad.stdout == ""


@both_backends
def test_the_dashboard_shows_each_keys_scopes_and_creates_a_scoped_key(make_daemon):
    d = make_daemon()
    add_user(d)
    s, _ = login(d)
    page = s.get(d.url("/ui/keys"), timeout=5)
    r = s.post(d.url("/ui/keys"), data={"name": "door", "scopes": "hooks:door", "csrf": csrf_of(page.text)},
               timeout=5)
    assert r.status_code == 200 and "ak_live_" in r.text
    rows = re.findall(r'<td data-label="Scopes">(.*?)</td>', r.text)
    assert rows == ["admin", "hooks:door"], rows
    bad = s.post(d.url("/ui/keys"), data={"name": "x", "scopes": "root", "csrf": csrf_of(page.text)}, timeout=5)
    assert bad.status_code == 400 and "scope: unknown &#39;root&#39;" in bad.text
