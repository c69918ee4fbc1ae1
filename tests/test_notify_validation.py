"""POST /calls/notify: every field's validation, the error envelope, and the
lenient inputs integrations written for the hosted API send.

Most tests share one SQLite daemon and check the route's answer. Those with a
daemon of their own check what is stored and sent (nothing, for a refusal) and
run on SQLite and on PostgreSQL, but for closing SQLite's connection under the
daemon, a failure of SQLite's own."""
from __future__ import annotations

import json

import pytest
import requests

from conftest import CALLER_ID, RunningDaemon, both_backends

NUMBER = "+15551234567"
TEN = [f"+1555123{i:04}" for i in range(10)]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One simulator daemon for the read-only table below (a daemon per case costs 0.25 s)."""
    d = RunningDaemon(tmp_path_factory.mktemp("validation"))
    yield d
    d.stop()


def assert_envelope(response, code: int, error: str | None = None) -> dict:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["ok"] is False and body["code"] == code and isinstance(body["error"], str)
    if error is not None:
        assert body["error"] == error
    return body


BAD_BODIES = [
    pytest.param({"message": "x"}, 400, "to: is required", id="missing-to"),
    pytest.param({"to": None, "message": "x"}, 400,
                 "to must be a phone number or an array of 1 to 10 phone numbers", id="to-null"),
    pytest.param({"to": {"n": NUMBER}, "message": "x"}, 400,
                 "to must be a phone number or an array of 1 to 10 phone numbers", id="to-object"),
    pytest.param({"to": [NUMBER, None], "message": "x"}, 400,
                 "to must be a phone number or an array of 1 to 10 phone numbers", id="to-array-with-null"),
    pytest.param({"to": [], "message": "x"}, 400, "to must hold 1 to 10 numbers", id="to-empty-array"),
    pytest.param({"to": TEN + ["+15559999999"], "message": "x"}, 400, "to must hold 1 to 10 numbers",
                 id="to-11-numbers"),
    pytest.param({"to": "12", "message": "x"}, 400, "to: Invalid phone number format: '12'", id="to-too-short"),
    pytest.param({"to": "call me", "message": "x"}, 400, "to: Invalid phone number format: 'call me'",
                 id="to-not-a-number"),
    pytest.param({"to": [NUMBER, "555"], "message": "x"}, 400, "to: Invalid phone number format: '555'",
                 id="to-one-bad-in-array"),
    pytest.param({"to": NUMBER, "message": "x" * 4001}, 400, "message: String should have at most 4000 characters",
                 id="message-4001"),
    pytest.param({"to": NUMBER}, 400, "message: is required unless template_id is given.", id="message-missing"),
    pytest.param({"to": NUMBER, "message": ""}, 400, "message: is required unless template_id is given.",
                 id="message-empty"),
    pytest.param({"to": NUMBER, "message": 5}, 400, "message: Input should be a valid string", id="message-number"),
    pytest.param({"to": NUMBER, "message": "x", "action_type": "fax"}, 400,
                 "action_type: Input should be 'call', 'sms' or 'both'", id="action-type-bad"),
    pytest.param({"to": NUMBER, "message": "x", "voice": "robot"}, 400, "voice must be alice, man or woman",
                 id="voice-bad"),
    pytest.param({"to": NUMBER, "message": "x", "repeat": 0}, 400,
                 "repeat: Input should be greater than or equal to 1", id="repeat-0"),
    pytest.param({"to": NUMBER, "message": "x", "repeat": 6}, 400,
                 "repeat: Input should be less than or equal to 5", id="repeat-6"),
    pytest.param({"to": NUMBER, "message": "x", "repeat": "twice"}, 400,
                 "repeat: Input should be a valid integer, unable to parse string as an integer", id="repeat-word"),
    pytest.param({"to": NUMBER, "message": "x", "gather": "maybe"}, 400,
                 "gather: Input should be a valid boolean, unable to interpret input", id="gather-bad"),
    pytest.param({"to": NUMBER, "message": "x", "send_sms": "maybe"}, 400,
                 "send_sms: Input should be a valid boolean, unable to interpret input", id="send-sms-bad"),
    pytest.param({"to": NUMBER, "message": "x", "source": "s" * 101}, 400,
                 "source: String should have at most 100 characters", id="source-101"),
    pytest.param({"to": NUMBER, "message": "x", "language": "english!"}, 400,
                 "language must be a language tag like en-US or es-MX", id="language-bad"),
    pytest.param({"to": NUMBER, "message": "x", "from": "nope"}, 400, "from: Invalid phone number format: 'nope'",
                 id="from-not-a-number"),
    pytest.param({"to": NUMBER, "message": "x", "from": "+15550000000"}, 403,
                 "from: caller ID +15550000000 is not one of this account's numbers.", id="from-not-owned"),
    pytest.param({"to": NUMBER, "template_id": "tpl_000000000000"}, 404, "Template not found: tpl_000000000000",
                 id="template-unknown"),
    # found by schemathesis (tests/reliability): past timedelta's range these answered 500
    pytest.param({"to": NUMBER, "message": "x", "escalate": [{"after": 1e14, "to": [NUMBER]}]}, 400,
                 "escalate.0.after: invalid duration 100000000000000.0: out of range", id="escalate-after-huge"),
    pytest.param({"to": NUMBER, "message": "x", "retry": {"times": 1, "every": "99999999999d"}}, 400,
                 "retry.every: invalid duration '99999999999d': out of range", id="retry-every-huge"),
]


@pytest.mark.parametrize("body, code, error", BAD_BODIES)
def test_a_bad_field_is_refused_with_an_envelope_naming_it(shared, body, code, error):
    assert_envelope(shared.notify(body), code, error)


BAD_RAW = [
    pytest.param(b'{"to": "+15551234567", "message": ', 400,
                 "Malformed JSON body: Expecting value: line 1 column 35 (char 34)", id="malformed-json"),
    pytest.param(b"", 400, "Request body is empty: send a JSON object.", id="empty-body"),
    pytest.param(b"   \n", 400, "Request body is empty: send a JSON object.", id="blank-body"),
    pytest.param(b'["+15551234567"]', 400, "Request body must be a JSON object.", id="json-array"),
    pytest.param(b'"+15551234567"', 400, "Request body must be a JSON object.", id="json-string"),
    pytest.param(b"null", 400, "Request body must be a JSON object.", id="json-null"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, "Malformed JSON body: nested too deeply.", id="deep-json"),
]


def test_the_openapi_request_bodies_resolve_without_dangling_references(shared):
    """A nested model's "#/$defs/..." would point at the root of /openapi.json, which has no $defs:
    clients and fuzzers then saw no usable body at all."""
    spec = requests.get(shared.url("/openapi.json"), timeout=10).json()
    bodies = {f"{m.upper()} {p}": op["requestBody"] for p, ops in spec["paths"].items() for m, op in ops.items()
              if "requestBody" in op}
    assert {"POST /api/v1/calls/notify", "POST /api/v1/calls/templates", "POST /api/v1/silences"} <= set(bodies)
    text = json.dumps(bodies)
    assert "$defs" not in text and "#/$defs/" not in text
    notify = bodies["POST /api/v1/calls/notify"]["content"]["application/json"]["schema"]
    assert notify["properties"]["retry"]["anyOf"][0]["properties"]["times"]["maximum"] == 10


@pytest.mark.parametrize("raw, code, error", BAD_RAW)
def test_a_body_that_is_not_a_json_object_is_refused(shared, raw, code, error):
    r = shared.api.post(shared.url("/api/v1/calls/notify"), data=raw,
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert_envelope(r, code, error)


def test_a_body_over_one_mebibyte_is_refused_with_413(shared):
    body = json.dumps({"to": NUMBER, "message": "x" * (1024 * 1024)}).encode()
    r = shared.api.post(shared.url("/api/v1/calls/notify"), data=body,
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert_envelope(r, 413, "Request body too large (limit 1048576 bytes).")


def test_a_chunked_body_over_one_mebibyte_is_refused_with_413(shared):
    """No Content-Length to go by: the limit holds on what actually arrives."""
    def chunks():
        yield b'{"to": "+15551234567", "message": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    r = shared.api.post(shared.url("/api/v1/calls/notify"), data=chunks(),
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert_envelope(r, 413, "Request body too large (limit 1048576 bytes).")


@both_backends
def test_refused_requests_leave_nothing_in_the_log(make_daemon):
    d = make_daemon()
    for param in BAD_BODIES[:6]:
        assert d.notify(param.values[0]).status_code != 200
    assert d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"] == []


def test_unknown_paths_and_methods_answer_in_the_envelope_not_html(shared):
    assert_envelope(shared.api.get(shared.url("/api/v1/calls/notify"), timeout=10), 405, "Method not allowed.")
    assert_envelope(shared.api.get(shared.url("/api/v1/nothing-here"), timeout=10), 404, "Not found.")


def test_an_unexpected_failure_is_a_500_envelope_logged_with_its_reference(make_daemon, structlog_output):
    d = make_daemon()
    d.daemon.store.conn.close()  # every statement now raises sqlite3.ProgrammingError
    body = assert_envelope(d.notify({"to": NUMBER, "message": "x"}), 500)
    assert "Traceback" not in body["error"]
    ref = body["error"].split("reference ")[1].split(")")[0]
    lines = [json.loads(line) for line in structlog_output.getvalue().splitlines()]
    (logged,) = [line for line in lines if line.get("event") == "unexpected error"]
    assert logged["ref"] == ref and logged["level"] == "error" and "ProgrammingError" in logged["exception"]
    # uvicorn closes the connection after an app exception: ask on a new one
    health = requests.get(d.url("/healthz"), timeout=10)
    assert health.status_code == 503 and health.json()["ok"] is False


def test_notify_answers_503_when_twilio_has_no_credentials(make_daemon):
    d = make_daemon({"provider": {"kind": "twilio", "account_sid": "", "auth_token": ""}})
    r = d.notify({"to": NUMBER, "message": "x"})
    assert_envelope(r, 503, "Twilio credentials not configured (provider.account_sid / provider.auth_token).")


# --- what is accepted --------------------------------------------------------

def test_the_response_has_exactly_the_reference_shape(shared):
    r = shared.notify({"to": NUMBER, "message": "hi"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"ok", "calls"} and body["ok"] is True
    (call,) = body["calls"]
    assert set(call) == {"to", "type", "call_sid", "status", "log_id"}
    assert call["type"] == "call" and call["status"] == "initiated" and isinstance(call["log_id"], int)


@pytest.mark.parametrize("to", ["5551234567", "(555) 123-4567", "555-123-4567", "+1 555 123 4567", 5551234567],
                         ids=["10-digit", "parenthesised", "dashed", "spaced-e164", "json-number"])
def test_us_ten_digit_and_e164_numbers_are_normalised(shared, to):
    r = shared.notify({"to": to, "message": "hi"})
    assert r.status_code == 200, r.text
    assert [c["to"] for c in r.json()["calls"]] == [NUMBER]


def test_duplicates_in_the_array_are_called_once(shared):
    r = shared.notify({"to": [NUMBER, "5551234567", "+15559876543", "555-123-4567"], "message": "hi"})
    assert r.status_code == 200, r.text
    assert [c["to"] for c in r.json()["calls"]] == [NUMBER, "+15559876543"]


def test_ten_numbers_a_4000_char_message_and_a_100_char_source_are_accepted(shared):
    r = shared.notify({"to": TEN, "message": "m" * 4000, "source": "s" * 100})
    assert r.status_code == 200, r.text
    assert len(r.json()["calls"]) == 10


def test_send_sms_true_sends_a_call_and_an_sms(shared):
    (call,) = shared.notify({"to": NUMBER, "message": "hi", "send_sms": True}).json()["calls"]
    assert call["type"] == "both" and call["call_sid"].startswith("CA") and call["sms_sid"].startswith("SM")


def test_action_type_sms_sends_only_an_sms(shared):
    (call,) = shared.notify({"to": NUMBER, "message": "hi", "action_type": "sms"}).json()["calls"]
    assert call["type"] == "sms" and call["sms_sid"].startswith("SM") and "call_sid" not in call


@both_backends
def test_zapier_style_string_values_are_read_as_numbers_and_booleans(make_daemon):
    d = make_daemon({"provider": {"simulate_press": False}})
    r = d.notify({"to": NUMBER, "message": "hi", "repeat": "2", "gather": "true", "send_sms": "true",
                  "voice": "man", "language": "es-MX"})
    assert r.status_code == 200, r.text
    assert r.json()["calls"][0]["type"] == "both"
    call = next(o for o in d.daemon.provider.sent if o.channel == "call")
    assert (call.repeat, call.gather, call.voice, call.language) == (2, True, "man", "es-MX")


def test_unknown_fields_are_ignored(shared):
    r = shared.notify({"to": NUMBER, "message": "hi", "priority": "high", "tags": ["x"], "webhook_id": 7})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"ok", "calls"} and set(r.json()["calls"][0]) == {"to", "type", "call_sid", "status",
                                                                            "log_id"}
    logged = shared.api.get(shared.url(f"/api/v1/calls/logs/{r.json()['calls'][0]['log_id']}"), timeout=10).json()
    assert logged["log"]["message"] == "hi" and "high" not in json.dumps(logged)


@both_backends
def test_an_owned_from_number_is_used(make_daemon):
    d = make_daemon()
    assert d.notify({"to": NUMBER, "message": "hi", "from": "5557654321"}).status_code == 200
    assert d.daemon.provider.sent[0].from_ == CALLER_ID


@both_backends
def test_a_form_encoded_body_is_accepted(make_daemon):
    d = make_daemon()
    r = d.api.post(d.url("/api/v1/calls/notify"), timeout=10,
                   data={"to": [NUMBER, "+15559876543"], "message": "from a form", "repeat": "3"})
    assert r.status_code == 200, r.text
    assert [c["to"] for c in r.json()["calls"]] == [NUMBER, "+15559876543"]
    assert [o.repeat for o in d.daemon.provider.sent] == [3, 3]


def test_json_sent_without_a_json_content_type_is_read_as_json(shared):
    """curl -d without -H 'Content-Type' labels the JSON as a form."""
    r = shared.api.post(shared.url("/api/v1/calls/notify"), timeout=10,
                        data=json.dumps({"to": NUMBER, "message": "hi from curl"}),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    (call,) = r.json()["calls"]
    logged = shared.api.get(shared.url(f"/api/v1/calls/logs/{call['log_id']}"), timeout=10).json()["log"]
    assert (call["to"], logged["message"]) == (NUMBER, "hi from curl")
