"""API keys: both ways of presenting one, the 401s, hashed storage, no key in any log line.
A key looked up in the database (found, unknown, revoked) runs on SQLite and on PostgreSQL; the rest
(no key in the SQLite file or its WAL, refusals before any lookup, log lines) runs once."""
from __future__ import annotations

import json
import time

import pytest
import requests

from alertd import cli
from alertd.api.auth import hash_key
from conftest import both_backends, sync

NOTIFY = "/api/v1/calls/notify"
BODY = {"to": "+15551234567", "message": "hi"}
PROTECTED = [("POST", NOTIFY), ("GET", "/api/v1/calls/templates"), ("POST", "/api/v1/calls/templates"),
             ("GET", "/api/v1/calls/logs"), ("GET", "/api/v1/calls/logs/1")]


def assert_401(response, error: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"ok": False, "error": error, "code": 401}


@both_backends
def test_a_bearer_key_is_accepted(daemon):
    r = requests.post(daemon.url(NOTIFY), json=BODY, timeout=10, headers={"Authorization": f"Bearer {daemon.key}"})
    assert r.status_code == 200, r.text


@both_backends
def test_a_key_in_the_query_string_is_accepted(daemon):
    r = requests.post(daemon.url(NOTIFY), params={"key": daemon.key}, json=BODY, timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method, path", PROTECTED)
def test_every_api_endpoint_needs_a_key(daemon, method, path):
    r = requests.request(method, daemon.url(path), json=BODY, timeout=10)
    assert_401(r, "Missing API key: send 'Authorization: Bearer ak_live_...' or ?key=.")


@both_backends
@pytest.mark.parametrize("present", [
    lambda key: {"headers": {"Authorization": f"Bearer {key}"}},
    lambda key: {"params": {"key": key}},
], ids=["bearer", "query"])
def test_an_unknown_key_is_refused(daemon, present):
    r = requests.post(daemon.url(NOTIFY), json=BODY, timeout=10, **present("ak_live_" + "x" * 43))
    assert_401(r, "Invalid API key.")


def test_a_key_that_is_not_bearer_is_not_taken_from_the_header(daemon):
    r = requests.post(daemon.url(NOTIFY), json=BODY, timeout=10, headers={"Authorization": f"Basic {daemon.key}"})
    assert_401(r, "Missing API key: send 'Authorization: Bearer ak_live_...' or ?key=.")


@both_backends
def test_a_revoked_key_is_refused_with_the_same_answer_as_an_unknown_one(daemon):
    # whoever holds a leaked key learns nothing from it, not even that it once worked
    (row,) = daemon.run(daemon.daemon.store.keys.list())
    assert daemon.run(daemon.daemon.store.keys.revoke(row["id"], time.time()))
    assert_401(daemon.notify(BODY), "Invalid API key.")
    r = requests.post(daemon.url(NOTIFY), params={"key": daemon.key}, json=BODY, timeout=10)
    assert_401(r, "Invalid API key.")


@pytest.mark.parametrize("path", ["/api/v1/calls/logs/", "/api/v1/rules/", "/hooks/door/", "/healthz/"])
def test_a_trailing_slash_is_404_never_a_redirect_that_carries_the_key(daemon, path):
    # the redirect's Location came from the Host header, with ?key= copied into it
    r = requests.get(daemon.url(path), params={"key": daemon.key}, headers={"Host": "attacker.example"},
                     timeout=10, allow_redirects=False)
    assert r.status_code == 404, (r.status_code, r.headers)
    assert "location" not in r.headers and daemon.key not in r.text
    assert r.json() == {"ok": False, "error": "Not found.", "code": 404}


@both_backends
def test_healthz_needs_no_key(daemon):
    health = requests.get(daemon.url("/healthz"), timeout=10)
    assert health.status_code == 200 and health.json()["ok"] is True


# FastAPI warns about the GET+POST route of /hooks/{name} (one operation id for
# two methods); filterwarnings=error turns that into a 500 inside the daemon.
def test_the_openapi_document_needs_no_key(daemon):
    spec = requests.get(daemon.url("/openapi.json"), timeout=10).json()
    assert "/api/v1/calls/notify" in spec["paths"]


def test_keys_are_stored_only_as_hashes(daemon, capsys):
    assert cli.main(["keys", "create", "--name", "ops", "-c", str(daemon.config_path)]) == 0
    key = capsys.readouterr().out.strip()
    assert daemon.notify(BODY, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # the database and its WAL, as bytes: the hash is there, the key is not
    files = sorted(daemon.folder.glob("alertd.db*"))
    stored = b"".join(f.read_bytes() for f in files)
    for k in (key, daemon.key):
        assert hash_key(k).encode() in stored
        assert k.encode() not in stored and k[len("ak_live_"):].encode() not in stored


def test_the_query_key_never_reaches_a_log_line(daemon, structlog_output, capfd):
    r = requests.post(daemon.url(NOTIFY), params={"key": daemon.key}, json=BODY, timeout=10)
    assert r.status_code == 200
    requests.post(daemon.url(NOTIFY), params={"key": daemon.key + "x"}, json=BODY, timeout=10)
    requests.get(daemon.url("/api/v1/calls/logs"), params={"key": daemon.key, "limit": "x"}, timeout=10)
    daemon.stop()  # flush the shutdown lines too
    logged = structlog_output.getvalue()
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    requests_seen = {(e.get("path"), e.get("status")) for e in lines if e.get("event") == "request"}
    assert ("/api/v1/calls/notify", 401) in requests_seen  # the request lines are there
    out, err = capfd.readouterr()
    for text in (logged, out, err):
        assert daemon.key not in text and daemon.key[len("ak_live_"):] not in text
