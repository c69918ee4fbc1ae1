"""Templates: create, list, delete, and notify with template_id (inline parameters win)."""
from __future__ import annotations

import re

import pytest

from conftest import CALLER_ID

TEMPLATES = "/api/v1/calls/templates"
NUMBER = "+15551234567"
NO_STAFF = {"name": "No Staff Clocked In",
            "message": "Alert: No staff have clocked in. Please call your manager immediately.",
            "action_type": "both", "voice": "man", "repeat": 2, "gather": True,
            "language": "en-GB", "source": "timeclock"}


@pytest.fixture
def d(make_daemon):
    # no simulated press: the tests below look at what was sent, not at acknowledgements
    return make_daemon({"provider": {"simulate_press": False}})


def create(d, body: dict) -> dict:
    r = d.api.post(d.url(TEMPLATES), json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def log_row(d, log_id: int) -> dict:
    return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]


def test_create_answers_a_tpl_id_and_echoes_the_name(d):
    body = create(d, NO_STAFF)
    assert set(body) == {"ok", "template_id", "name"}
    assert body["ok"] is True and body["name"] == "No Staff Clocked In"
    assert re.fullmatch(r"tpl_[0-9a-f]{12}", body["template_id"])


def test_list_shows_every_template_with_its_fields(d):
    assert d.api.get(d.url(TEMPLATES), timeout=10).json() == {"ok": True, "templates": []}
    first = create(d, NO_STAFF)["template_id"]
    second = create(d, {"name": "Test Alert", "message": "This is a test.", "gather": True})["template_id"]
    templates = d.api.get(d.url(TEMPLATES), timeout=10).json()["templates"]
    assert [t["template_id"] for t in templates] == [first, second]
    assert {k: templates[0][k] for k in NO_STAFF} == NO_STAFF
    # defaults are filled in for what the second one left out
    assert (templates[1]["action_type"], templates[1]["voice"], templates[1]["repeat"]) == ("call", "alice", 1)


def test_delete_removes_a_template(d):
    tid = create(d, NO_STAFF)["template_id"]
    r = d.api.post(d.url(TEMPLATES), json={"action": "delete", "template_id": tid}, timeout=10)
    assert r.status_code == 200 and r.json()["ok"] is True
    assert d.api.get(d.url(TEMPLATES), timeout=10).json()["templates"] == []


def test_deleting_an_unknown_template_is_404(d):
    r = d.api.post(d.url(TEMPLATES), json={"action": "delete", "template_id": "tpl_000000000000"}, timeout=10)
    assert r.status_code == 404
    assert r.json() == {"ok": False, "error": "Template not found: tpl_000000000000", "code": 404}


@pytest.mark.parametrize("body, code, error", [
    ({"message": "x"}, 400, "name: is required"),
    ({"name": "n"}, 400, "message: is required"),
    ({"name": "n", "message": "x", "repeat": 9}, 400, "repeat: Input should be less than or equal to 5"),
    ({"name": "n", "message": "x", "action_type": "fax"}, 400, "action_type: Input should be 'call', 'sms' or 'both'"),
    ({"name": "n", "message": "x", "from": "+15550000000"}, 403,
     "from: caller ID +15550000000 is not one of this account's numbers."),
    ({"action": "delete"}, 400, "template_id: is required"),
    ({"action": "archive", "template_id": "tpl_000000000000"}, 400, "action: Input should be 'delete'"),
], ids=["no-name", "no-message", "repeat-9", "action-type-bad", "from-not-owned", "delete-without-id",
        "unknown-action"])
def test_a_bad_template_body_is_refused_naming_the_field(d, body, code, error):
    r = d.api.post(d.url(TEMPLATES), json=body, timeout=10)
    assert r.status_code == code
    assert r.json() == {"ok": False, "error": error, "code": code}


def test_notify_with_template_id_uses_the_template(d):
    tid = create(d, NO_STAFF)["template_id"]
    r = d.notify({"template_id": tid, "to": NUMBER})
    assert r.status_code == 200, r.text
    (call,) = r.json()["calls"]
    assert call["type"] == "both" and call["call_sid"] and call["sms_sid"]
    sent = {o.channel: o for o in d.daemon.provider.sent}
    assert set(sent) == {"call", "sms"}
    out = sent["call"]
    assert (out.message, out.voice, out.repeat, out.gather, out.language, out.from_) == (
        NO_STAFF["message"], "man", 2, True, "en-GB", CALLER_ID)
    row = log_row(d, call["log_id"])
    assert (row["template_id"], row["source"], row["message"]) == (tid, "timeclock", NO_STAFF["message"])


def test_inline_parameters_override_the_template(d):
    tid = create(d, NO_STAFF)["template_id"]
    r = d.notify({"template_id": tid, "to": NUMBER, "message": "Overridden.", "action_type": "call",
                  "repeat": 1, "gather": False, "voice": "woman", "source": "inline"})
    assert r.status_code == 200, r.text
    (call,) = r.json()["calls"]
    assert call["type"] == "call" and "sms_sid" not in call
    (out,) = d.daemon.provider.sent
    assert (out.message, out.voice, out.repeat, out.gather, out.language) == (
        "Overridden.", "woman", 1, False, "en-GB")  # language was not overridden
    row = log_row(d, call["log_id"])
    assert (row["template_id"], row["source"]) == (tid, "inline")


def test_send_sms_on_top_of_a_call_template_sends_both(d):
    tid = create(d, {"name": "call only", "message": "m"})["template_id"]
    (call,) = d.notify({"template_id": tid, "to": NUMBER, "send_sms": True}).json()["calls"]
    assert call["type"] == "both"


def test_notify_with_an_unknown_template_id_is_404(d):
    r = d.notify({"template_id": "tpl_ffffffffffff", "to": NUMBER})
    assert r.status_code == 404
    assert r.json() == {"ok": False, "error": "Template not found: tpl_ffffffffffff", "code": 404}
    assert d.daemon.provider.sent == []


def test_a_deleted_template_can_no_longer_be_used(d):
    tid = create(d, NO_STAFF)["template_id"]
    d.api.post(d.url(TEMPLATES), json={"action": "delete", "template_id": tid}, timeout=10)
    assert d.notify({"template_id": tid, "to": NUMBER}).status_code == 404
