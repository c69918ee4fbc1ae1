"""Dashboard templates page over HTTP: the API's templates, created, edited, deleted, and sent as a test.
What reaches the database runs on SQLite and on PostgreSQL; the refusals of a form, once."""
from __future__ import annotations

import pytest

from conftest import both_backends
from test_ui_pages import logged_in

FIELDS = {"name": "door", "message": "The back door is open.", "action_type": "call", "voice": "woman",
          "repeat": "2", "language": "en-GB", "from": "", "source": "doors", "gather": "on"}


def create(d, s, csrf, **changes):
    return s.post(d.url("/ui/templates"), data={"csrf": csrf, **FIELDS, **changes}, timeout=5)


def api_templates(d) -> list[dict]:
    return d.api.get(d.url("/api/v1/calls/templates"), timeout=5).json()["templates"]


@both_backends
def test_a_template_made_in_the_dashboard_is_the_apis_and_back(make_daemon):
    d, s, csrf = logged_in(make_daemon)
    r = create(d, s, csrf)
    assert r.status_code == 200 and "The back door is open." in r.text
    (t,) = api_templates(d)
    assert t == {"template_id": t["template_id"], "name": "door", "message": "The back door is open.",
                 "action_type": "call", "from": None, "voice": "woman", "repeat": 2, "gather": True,
                 "language": "en-GB", "source": "doors"}
    made = d.api.post(d.url("/api/v1/calls/templates"), json={"name": "from-api", "message": "Hi"}, timeout=5)
    page = s.get(d.url("/ui/templates"), timeout=5).text
    assert made.json()["template_id"] in page and "from-api" in page


@both_backends
def test_edit_keeps_the_id_and_an_unticked_box_turns_gather_off(make_daemon):
    d, s, csrf = logged_in(make_daemon)
    create(d, s, csrf)
    (t,) = api_templates(d)
    edit = s.get(d.url(f"/ui/templates/{t['template_id']}"), timeout=5).text
    assert 'value="door"' in edit and "checked" in edit
    changed = {k: v for k, v in FIELDS.items() if k != "gather"} | {"message": "Door still open", "repeat": "1"}
    s.post(d.url(f"/ui/templates/{t['template_id']}"), data={"csrf": csrf, **changed}, timeout=5)
    (after,) = api_templates(d)
    assert (after["template_id"], after["message"], after["gather"], after["repeat"]) == \
        (t["template_id"], "Door still open", False, 1)


@pytest.mark.parametrize("changes, status, error", [
    ({"repeat": "9"}, 400, "repeat: Input should be less than or equal to 5"),
    ({"message": ""}, 400, "message: is required"),
    ({"voice": "robot"}, 400, "voice must be alice, man or woman"),
    ({"language": "english!"}, 400, "language must be a language tag like en-US or es-MX"),
    ({"from": "+15550009999"}, 403, "from: caller ID +15550009999 is not one of this account&#39;s numbers."),
])
def test_a_bad_field_is_refused_naming_it_and_the_form_keeps_what_was_typed(make_daemon, changes, status, error):
    d, s, csrf = logged_in(make_daemon)
    r = create(d, s, csrf, **changes)
    assert r.status_code == status and f"✗ {error}" in r.text
    assert 'value="door"' in r.text and api_templates(d) == []


@both_backends
def test_delete_removes_it_from_the_api_too(make_daemon):
    d, s, csrf = logged_in(make_daemon)
    create(d, s, csrf)
    (t,) = api_templates(d)
    s.post(d.url(f"/ui/templates/{t['template_id']}/delete"), data={"csrf": csrf}, timeout=5)
    assert api_templates(d) == [] and t["template_id"] not in s.get(d.url("/ui/templates"), timeout=5).text
    assert s.get(d.url(f"/ui/templates/{t['template_id']}"), timeout=5).status_code == 404


def test_forms_need_the_csrf_token(make_daemon):
    d, s, _ = logged_in(make_daemon)
    assert create(d, s, "forged").status_code == 403 and api_templates(d) == []


@both_backends
def test_send_a_test_goes_through_the_outbox_like_the_api(make_daemon):
    d, s, csrf = logged_in(make_daemon, {"provider": {"simulate_press": False}})
    create(d, s, csrf)
    (t,) = api_templates(d)
    r = s.post(d.url(f"/ui/templates/{t['template_id']}/test"), data={"csrf": csrf, "to": "(555) 123-4567"},
               timeout=5)
    assert r.status_code == 200 and "/ui/templates?test=1" in r.url and "✓ Test sent to +15551234567" in r.text
    (row,) = d.api.get(d.url("/api/v1/calls/logs"), timeout=5).json()["logs"]
    assert (row["to"], row["message"], row["source"], row["type"]) == \
        ("+15551234567", "The back door is open.", "dashboard-test", "call")
    (sent,) = d.daemon.provider.sent
    assert (sent.to, sent.gather, sent.voice, sent.repeat, sent.language) == ("+15551234567", True, "woman", 2,
                                                                              "en-GB")
    assert d.query("SELECT state FROM outbox WHERE log_id = ?", row["log_id"]) == [("sent",)]


def test_send_a_test_to_a_bad_number_names_the_field(make_daemon):
    d, s, csrf = logged_in(make_daemon)
    create(d, s, csrf)
    (t,) = api_templates(d)
    r = s.post(d.url(f"/ui/templates/{t['template_id']}/test"), data={"csrf": csrf, "to": "12"}, timeout=5)
    assert r.status_code == 400 and "✗ to: Invalid phone number format: &#39;12&#39;" in r.text
    assert 'value="12"' in r.text and d.daemon.provider.sent == []
