"""GET /api/v1/calls/logs and /logs/{log_id}: order, filters, and the row's fields.
The order, filters and rows run on SQLite and on PostgreSQL; the tables of bad filters and unknown ids,
refused mostly before the store is asked, run once."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alertd.clock import FakeClock
from conftest import both_backends, twilio_overrides

NUMBER = "+15551234567"
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
# the fields of a row in the hosted API's reference (alertd adds more: rule_id, trigger_id, ...)
ROW_FIELDS = {"log_id", "created_at", "source", "to", "type", "template_id", "message", "call_sid", "sms_sid",
              "status", "call_status", "sms_status", "acknowledged", "acknowledged_at", "error"}
# storage details that must not leak into the API
INTERNAL_COLUMNS = {"to_number", "params", "api_key_id"}


@pytest.fixture
def d(make_daemon):
    """Three triggers a minute apart: sources a, b, a."""
    clock = FakeClock(START)
    d = make_daemon({"provider": {"simulate_press": False}}, clock=clock)
    for source in ("a", "b", "a"):
        assert d.notify({"to": NUMBER, "message": f"from {source}", "source": source}).status_code == 200
        clock.advance(60)
    return d


def logs(d, **params) -> list[dict]:
    r = d.api.get(d.url("/api/v1/calls/logs"), params=params, timeout=10)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"ok", "logs"} and r.json()["ok"] is True
    return r.json()["logs"]


@both_backends
def test_the_log_is_newest_first(d):
    rows = logs(d)
    assert [r["log_id"] for r in rows] == [3, 2, 1]
    assert [r["created_at"] for r in rows] == ["2026-01-05T09:02:00.000Z", "2026-01-05T09:01:00.000Z",
                                               "2026-01-05T09:00:00.000Z"]


@both_backends
def test_limit_keeps_the_newest(d):
    assert [r["log_id"] for r in logs(d, limit="2")] == [3, 2]
    assert [r["log_id"] for r in logs(d, limit="1000")] == [3, 2, 1]


@both_backends
def test_source_filters_by_label(d):
    assert [r["log_id"] for r in logs(d, source="a")] == [3, 1]
    assert logs(d, source="nobody") == []


@both_backends
@pytest.mark.parametrize("since, expected", [
    ("2026-01-05T09:01:00Z", [3, 2]),
    ("2026-01-05T09:01:00.001Z", [3]),
    ("2026-01-05T10:01:00+01:00", [3, 2]),
    ("2026-01-05T09:01:00", [3, 2]),  # no offset: UTC
    ("2026-01-05", [3, 2, 1]),
    ("2026-01-06T00:00:00Z", []),
])
def test_since_keeps_rows_created_at_or_after_it(d, since, expected):
    assert [r["log_id"] for r in logs(d, since=since)] == expected


@both_backends
def test_filters_combine(d):
    assert [r["log_id"] for r in logs(d, source="a", since="2026-01-05T09:01:00Z", limit="5")] == [3]


@pytest.mark.parametrize("params, error", [
    ({"limit": "0"}, "limit: must be a whole number from 1 to 1000"),
    ({"limit": "1001"}, "limit: must be a whole number from 1 to 1000"),
    ({"limit": "-1"}, "limit: must be a whole number from 1 to 1000"),
    ({"limit": "ten"}, "limit: must be a whole number from 1 to 1000"),
    ({"limit": "²"}, "limit: must be a whole number from 1 to 1000"),
    ({"since": "yesterday"}, "since: not an ISO 8601 time: 'yesterday'"),
    ({"since": "2026-13-01"}, "since: not an ISO 8601 time: '2026-13-01'"),
])
def test_a_bad_filter_is_400_naming_it(d, params, error):
    r = d.api.get(d.url("/api/v1/calls/logs"), params=params, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"ok": False, "error": error, "code": 400}


@both_backends
def test_one_row_by_id(d):
    r = d.api.get(d.url("/api/v1/calls/logs/2"), timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"ok", "log"} and body["ok"] is True
    assert body["log"] == logs(d)[1]


# "²" passes str.isdigit() but not int(); 2**63 is past SQLite's integers: both answered 500
@pytest.mark.parametrize("log_id", ["999", "abc", "0", "²", str(2 ** 63), "9" * 40])
@pytest.mark.parametrize("method, suffix", [("GET", ""), ("POST", "/ack")])
def test_an_unknown_row_is_404(d, log_id, method, suffix):
    r = d.api.request(method, d.url(f"/api/v1/calls/logs/{log_id}{suffix}"), timeout=10)
    assert r.status_code == 404
    assert r.json() == {"ok": False, "error": f"Log row not found: {log_id}", "code": 404}


@both_backends
def test_a_row_has_every_field_of_the_issue_with_its_value_and_type(make_daemon, fake_twilio):
    clock = FakeClock(START)
    d = make_daemon(twilio_overrides(fake_twilio), clock=clock)
    r = d.notify({"to": "5551234567", "message": "Server room hot.", "action_type": "both", "gather": True,
                  "source": "server_monitor"})
    (call,) = r.json()["calls"]
    clock.advance(30.25)
    fake_twilio.press(call["call_sid"])
    fake_twilio.complete_call(call["call_sid"], "completed")
    fake_twilio.sms_status(call["sms_sid"], "delivered")

    raw = d.api.get(d.url(f"/api/v1/calls/logs/{call['log_id']}"), timeout=10)
    assert '"acknowledged":true' in raw.text.replace(" ", "")  # a JSON boolean, not 1
    row = raw.json()["log"]
    assert ROW_FIELDS <= set(row) and not INTERNAL_COLUMNS & set(row)
    assert {k: row[k] for k in ROW_FIELDS} == {
        "log_id": call["log_id"], "created_at": "2026-01-05T09:00:00.000Z", "source": "server_monitor",
        "to": "+15551234567", "type": "both", "template_id": None, "message": "Server room hot.",
        "call_sid": fake_twilio.calls[0].sid, "sms_sid": fake_twilio.messages[0].sid, "status": "initiated",
        "call_status": "completed", "sms_status": "delivered", "acknowledged": True,
        "acknowledged_at": "2026-01-05T09:00:30.250Z", "error": None}
    assert datetime.fromisoformat(row["acknowledged_at"]) == datetime(2026, 1, 5, 9, 0, 30, 250000, timezone.utc)


@both_backends
def test_a_refused_row_carries_the_providers_code_and_message(make_daemon, fake_twilio):
    d = make_daemon(twilio_overrides(fake_twilio))
    fake_twilio.permanent(NUMBER, 21610)
    (entry,) = d.notify({"to": NUMBER, "message": "x", "action_type": "sms"}).json()["calls"]
    row = d.api.get(d.url(f"/api/v1/calls/logs/{entry['log_id']}"), timeout=10).json()["log"]
    assert row["status"] == "failed" and row["sms_sid"] is None
    assert row["error"] == {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
    assert row["acknowledged"] is False and row["acknowledged_at"] is None
