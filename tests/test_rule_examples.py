"""The example rule files in rules/, run as shipped.

Each test loads the repository's own rules/ folder with the contacts, groups
and timezone of config.example.yaml (copied into tmp_path, database there
too, simulator provider), drives one example with a realistic payload (over
real HTTP for webhooks; polls against a real local HTTP server named by the
rule's ${VAR}) and asserts exactly what goes out: recipients, message,
channel, press 1, language and when.
"""
from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml

from alertd.clock import FakeClock
from local_http import LocalServer, refused_url

ROOT = Path(__file__).resolve().parent.parent
NY = ZoneInfo("America/New_York")
UTC = timezone.utc

MANAGER, PRIMARY, SECONDARY = "+15551230001", "+15551230002", "+15551230003"
OWNER, BILLING = "+15551230004", "+15551230005"
ONCALL = [PRIMARY, SECONDARY]

EXAMPLE_RULES = {
    "no-staff-clocked-in", "door-after-hours", "prometheus-critical", "website-down", "order-shipped-sms",
    "shift-reminder", "payment-failed", "system-down", "appointment-reminder-es",
    "hourly-log-rotation", "nightly-backup", "prometheus-watchdog",  # tests/test_heartbeat_examples.py
}


def local(*args) -> datetime:
    """A wall-clock time in New York (config.example.yaml's timezone), as an aware datetime."""
    return datetime(*args, tzinfo=NY)


@pytest.fixture
def examples(make_daemon, tmp_path):
    """start(clock=None) -> a daemon running rules/ with config.example.yaml's people."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules", dirs_exist_ok=True)
    example = tmp_path / "config.example.yaml"
    shutil.copy(ROOT / "config.example.yaml", example)
    cfg = yaml.safe_load(example.read_text())

    def start(clock: FakeClock | None = None):
        d = make_daemon({key: cfg[key] for key in ("timezone", "contacts", "groups")}, clock=clock)
        assert d.daemon.rules.errors == []
        assert set(d.daemon.runner.ruleset.rules) == EXAMPLE_RULES
        return d

    return start


def sent(d, start: int = 0) -> list[tuple]:
    """What the simulator sent: (channel, to, message, gather, repeat, language), sorted."""
    return sorted((o.channel, o.to, o.message, o.gather, o.repeat, o.language)
                  for o in d.daemon.provider.sent[start:])


def logs(d, rule_id: str) -> list[dict]:
    """The rule's rows of the trigger log (GET /api/v1/calls/logs), oldest first."""
    resp = d.api.get(d.url("/api/v1/calls/logs"), params={"limit": 1000}, timeout=10)
    assert resp.status_code == 200
    return sorted((r for r in resp.json()["logs"] if r["rule_id"] == rule_id), key=lambda r: r["log_id"])


def due_at(d, log_id: int) -> datetime:
    """When the outbox sends (sent) a log row: its items' due time."""
    with contextlib.closing(sqlite3.connect(d.folder / "alertd.db")) as conn:
        (due,) = {r[0] for r in conn.execute("SELECT next_attempt_at FROM outbox WHERE log_id = ?", (log_id,))}
    return datetime.fromtimestamp(due, UTC)


def hook(d, name: str, payload: dict) -> dict:
    resp = d.api.post(d.url(f"/hooks/{name}"), json=payload, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ok"] is True
    return body


def tick(d, rule_id: str) -> None:
    d.run(d.daemon.sources.run_rule(rule_id))


def acknowledged(d, rule_id: str) -> bool:
    rows = logs(d, rule_id)
    return bool(rows) and all(r["acknowledged"] for r in rows)


# --- the files as a whole ----------------------------------------------------------

def test_alertd_check_passes_on_the_shipped_examples():
    out = subprocess.run([sys.executable, "-m", "alertd", "check", "-c", "config.example.yaml"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "SUCCESS: config.example.yaml"


def test_every_example_loads_and_the_two_polls_are_scheduled(examples):
    d = examples()
    jobs = d.daemon.scheduler.jobs()
    assert set(jobs) == {"no-staff-clocked-in", "website-down"}
    timeclock = jobs["no-staff-clocked-in"].astimezone(NY)
    assert (timeclock.hour, timeclock.minute) == (9, 15) and timeclock.weekday() < 5
    hooks = {name for name in d.daemon.runner.ruleset.webhooks}
    assert hooks == {"door", "alertmanager", "shop", "scheduling", "payments", "system-down", "appointments"}


# --- timeclock ------------------------------------------------------------------------

def test_timeclock_with_nobody_clocked_in_calls_and_texts_the_manager(examples, monkeypatch):
    clock = FakeClock(local(2026, 3, 9, 9, 15).astimezone(UTC))  # Monday 09:15, the cron's tick
    with LocalServer(body={"location": "Main Street", "count": 0, "clocked_in": []}) as timeclock:
        monkeypatch.setenv("TIMECLOCK_URL", timeclock.url("/api/clocked-in"))
        d = examples(clock)
        tick(d, "no-staff-clocked-in")

        assert [(m, p) for m, p, _ in timeclock.requests] == [("GET", "/api/clocked-in")]
        message = "Alert: No staff have clocked in at Main Street. Please call your manager immediately."
        assert sent(d) == [("call", MANAGER, message, True, 2, None), ("sms", MANAGER, message, True, 2, None)]
        (row,) = logs(d, "no-staff-clocked-in")
        assert (row["to"], row["type"], row["source"], row["message"]) == (MANAGER, "both", "timeclock", message)
        assert row["created_at"] == "2026-03-09T13:15:00.000Z"
        assert due_at(d, row["log_id"]) == clock.now()  # at once

        # the same morning again (a restart, a manual run): still the same alert
        clock.advance(timedelta(minutes=5))
        tick(d, "no-staff-clocked-in")
        assert len(d.daemon.provider.sent) == 2

        # Tuesday, nobody again: a new morning is a new alert
        clock.set(local(2026, 3, 10, 9, 15).astimezone(UTC))
        tick(d, "no-staff-clocked-in")
        assert sent(d, 2) == [("call", MANAGER, message, True, 2, None), ("sms", MANAGER, message, True, 2, None)]

        # Wednesday, three people in: nothing
        timeclock.body = {"location": "Main Street", "count": 3, "clocked_in": ["ana", "bo", "cy"]}
        clock.set(local(2026, 3, 11, 9, 15).astimezone(UTC))
        tick(d, "no-staff-clocked-in")
        assert len(d.daemon.provider.sent) == 4
        assert len(logs(d, "no-staff-clocked-in")) == 2
        rules = d.api.get(d.url("/api/v1/rules"), timeout=10).json()["rules"]
        (timeclock_rule,) = [r for r in rules if r["id"] == "no-staff-clocked-in"]
        assert timeclock_rule["firing"] is False and timeclock_rule["last_fired"] == "2026-03-10T13:15:00.000Z"


def test_timeclock_that_does_not_answer_is_not_reported_as_nobody_in(examples, monkeypatch):
    monkeypatch.setenv("TIMECLOCK_URL", refused_url("/api/clocked-in"))
    d = examples(FakeClock(local(2026, 3, 9, 9, 15).astimezone(UTC)))
    tick(d, "no-staff-clocked-in")
    assert d.daemon.provider.sent == []
    assert logs(d, "no-staff-clocked-in") == []


# --- door / motion sensor ---------------------------------------------------------------

def door(d, sensor: str, state: str) -> dict:
    # what a sensor that can only call a URL sends: GET with the key in the query
    resp = requests.get(d.url("/hooks/door"), params={"key": d.key, "sensor": sensor, "state": state}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_door_opened_at_night_calls_owner_and_manager_who_press_one(examples):
    clock = FakeClock(local(2026, 3, 10, 23, 30).astimezone(UTC))
    d = examples(clock)
    answer = door(d, "back-door", "open")

    assert answer["fired"] == ["door-after-hours"] and len(answer["log_ids"]) == 2
    message = "Security alert: back-door reported open at 11:30 PM."
    assert sent(d) == [("call", MANAGER, message, True, 2, None), ("call", OWNER, message, True, 2, None)]
    assert [(r["to"], r["type"]) for r in logs(d, "door-after-hours")] == [(OWNER, "call"), (MANAGER, "call")]
    # the simulator answers each gather call with a press of 1
    d.wait_until(lambda: acknowledged(d, "door-after-hours"), what="press 1 acknowledged")

    # the same door 5 minutes later: within the 10-minute cooldown for that sensor
    clock.advance(timedelta(minutes=5))
    assert door(d, "back-door", "closed")["fired"] == []
    assert door(d, "back-door", "open")["fired"] == []
    # another sensor has its own cooldown
    assert door(d, "hallway-motion", "motion")["fired"] == ["door-after-hours"]
    assert sent(d, 2) == [("call", MANAGER, "Security alert: hallway-motion reported motion at 11:35 PM.",
                           True, 2, None),
                          ("call", OWNER, "Security alert: hallway-motion reported motion at 11:35 PM.",
                           True, 2, None)]


@pytest.mark.parametrize("when, fires", [
    (local(2026, 3, 10, 17, 59), False),
    (local(2026, 3, 10, 18, 0), True),
    (local(2026, 3, 11, 0, 30), True),     # the window crosses midnight
    (local(2026, 3, 11, 6, 59), True),
    (local(2026, 3, 11, 7, 0), False),
    (local(2026, 3, 11, 12, 0), False),
])
def test_door_sensor_only_calls_between_18_00_and_07_00(examples, when, fires):
    d = examples(FakeClock(when.astimezone(UTC)))
    answer = door(d, "front-door", "open")
    assert answer["fired"] == (["door-after-hours"] if fires else [])
    assert len(d.daemon.provider.sent) == (2 if fires else 0)
    # recorded either way
    assert d.daemon.store.events.get(answer["event_id"])["payload"]["query"] == {"sensor": "front-door",
                                                                                 "state": "open"}


# --- Prometheus Alertmanager ----------------------------------------------------------------

def alertmanager_payload(status: str) -> dict:
    """Alertmanager's webhook body (version 4): a critical and a warning alert."""
    ends = "2026-03-10T03:20:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    return {
        "version": "4",
        "groupKey": '{}:{alertname=~"InstanceDown|DiskSpaceLow"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "alertd",
        "groupLabels": {},
        "commonLabels": {"job": "node"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local:9093",
        "alerts": [
            {"status": status,
             "labels": {"alertname": "InstanceDown", "instance": "db-1:9100", "job": "node", "severity": "critical"},
             "annotations": {"summary": "db-1 has not answered scrapes for 5 minutes."},
             "startsAt": "2026-03-10T03:04:12.345Z", "endsAt": ends,
             "generatorURL": "http://prometheus.local:9090/graph?g0.expr=up+%3D%3D+0",
             "fingerprint": "6f6f7e8c2b1a9d04"},
            {"status": status,
             "labels": {"alertname": "DiskSpaceLow", "instance": "web-2:9100", "job": "node", "severity": "warning",
                        "mountpoint": "/var"},
             "annotations": {"summary": "/var on web-2 is 91% full."},
             "startsAt": "2026-03-10T02:58:00Z", "endsAt": ends,
             "generatorURL": "http://prometheus.local:9090/graph?g0.expr=node_filesystem_avail_bytes",
             "fingerprint": "0c3d5e7f9a1b2c4d"},
        ],
    }


def test_alertmanager_critical_alert_calls_and_texts_oncall_once_then_resolves(examples):
    clock = FakeClock(datetime(2026, 3, 10, 3, 9, tzinfo=UTC))
    d = examples(clock)
    firing = "Critical alert: InstanceDown on db-1:9100. db-1 has not answered scrapes for 5 minutes."
    resolved = "Resolved: InstanceDown on db-1:9100. db-1 has not answered scrapes for 5 minutes."

    answer = hook(d, "alertmanager", alertmanager_payload("firing"))
    assert answer["fired"] == ["prometheus-critical"] and len(answer["log_ids"]) == 2
    # the warning (DiskSpaceLow) is left out by `when`
    assert sent(d) == [(ch, to, firing, True, 1, None) for ch, to in
                       [("call", PRIMARY), ("call", SECONDARY), ("sms", PRIMARY), ("sms", SECONDARY)]]

    # Alertmanager re-sends the firing group every repeat_interval: nobody is called again
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        assert hook(d, "alertmanager", alertmanager_payload("firing"))["fired"] == []
    assert len(d.daemon.provider.sent) == 4

    clock.advance(timedelta(minutes=2))
    assert hook(d, "alertmanager", alertmanager_payload("resolved"))["fired"] == ["prometheus-critical"]
    assert sent(d, 4) == [(ch, to, resolved, True, 1, None) for ch, to in
                          [("call", PRIMARY), ("call", SECONDARY), ("sms", PRIMARY), ("sms", SECONDARY)]]
    assert hook(d, "alertmanager", alertmanager_payload("resolved"))["fired"] == []

    rows = logs(d, "prometheus-critical")
    assert [(r["to"], r["type"], r["message"]) for r in rows] == [
        (PRIMARY, "both", firing), (SECONDARY, "both", firing),
        (PRIMARY, "both", resolved), (SECONDARY, "both", resolved)]


# --- uptime check ------------------------------------------------------------------------------

def test_uptime_check_calls_oncall_when_down_repeats_every_30m_and_says_when_back(examples, monkeypatch):
    clock = FakeClock(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
    with LocalServer(body={"status": "ok"}) as health:
        monkeypatch.setenv("HEALTH_URL", health.url("/healthz"))
        d = examples(clock)
        tick(d, "website-down")
        assert d.daemon.provider.sent == []

        health.status, health.body = 503, "Service Unavailable"
        clock.advance(30)
        tick(d, "website-down")
        down = "Website down: the health check answered HTTP 503."
        both = [("call", PRIMARY), ("call", SECONDARY), ("sms", PRIMARY), ("sms", SECONDARY)]
        assert sent(d) == [(ch, to, down, False, 1, None) for ch, to in both]

        clock.advance(30)  # still down 30 s later: no second call
        tick(d, "website-down")
        assert len(d.daemon.provider.sent) == 4

        clock.advance(timedelta(minutes=29, seconds=30))  # 30 minutes after the first call
        tick(d, "website-down")
        assert sent(d, 4) == [(ch, to, down, False, 1, None) for ch, to in both]

        health.status, health.body = 200, {"status": "ok"}
        clock.advance(30)
        tick(d, "website-down")
        back = "Website back up: the health check answers 200 again."
        assert sent(d, 8) == [(ch, to, back, False, 1, None) for ch, to in both]
        clock.advance(30)
        tick(d, "website-down")
        assert len(d.daemon.provider.sent) == 12
        assert len(health.requests) == 6

    # the server is gone altogether: a refused connection is "no answer"
    clock.advance(30)
    tick(d, "website-down")
    no_answer = "Website down: the health check got no answer."
    assert sent(d, 12) == [(ch, to, no_answer, False, 1, None) for ch, to in both]
    assert [r["message"] for r in logs(d, "website-down")] == [down] * 4 + [back] * 2 + [no_answer] * 2


# --- order shipped ----------------------------------------------------------------------------

ORDER_SHIPPED = {
    "type": "order.shipped",
    "order": {"number": "1042", "total": "86.40", "currency": "USD"},
    "customer": {"first_name": "Maria", "last_name": "Lopez", "email": "maria@example.com",
                 "phone": "(555) 201-3344"},
    "shipment": {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
}


def test_order_shipped_texts_the_customer_at_the_number_the_shop_sent(examples):
    d = examples(FakeClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC)))
    answer = hook(d, "shop", ORDER_SHIPPED)
    assert answer["fired"] == ["order-shipped-sms"]
    message = "Hi Maria, your order #1042 has shipped with UPS. Tracking: 1Z999AA10123456784"
    assert sent(d) == [("sms", "+15552013344", message, False, 1, None)]
    (row,) = logs(d, "order-shipped-sms")
    assert (row["to"], row["type"], row["status"]) == ("+15552013344", "sms", "initiated")

    # other shop events on the same hook: recorded, nothing sent
    other = hook(d, "shop", {**ORDER_SHIPPED, "type": "order.created"})
    assert other["fired"] == [] and d.daemon.store.events.get(other["event_id"]) is not None
    assert len(d.daemon.provider.sent) == 1


def test_order_without_a_phone_number_is_a_failed_row_with_the_reason(examples):
    d = examples(FakeClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC)))
    payload = {**ORDER_SHIPPED, "customer": {"first_name": "Maria", "email": "maria@example.com"}}
    answer = hook(d, "shop", payload)
    assert answer["fired"] == ["order-shipped-sms"]
    (row,) = logs(d, "order-shipped-sms")
    assert row["status"] == "failed" and row["log_id"] == answer["log_ids"][0]
    assert "notify.to: '{{ event.customer.phone }}' rendered empty" in row["error"]["message"]
    assert d.daemon.provider.sent == []


# --- shift reminder ---------------------------------------------------------------------------

SHIFT = {
    "type": "shift.published",
    "shift": {"id": "sh_8812", "starts_at": "2026-03-09T14:00:00-04:00", "ends_at": "2026-03-09T22:00:00-04:00",
              "position": "Cashier"},
    "employee": {"id": "emp_77", "first_name": "Luis", "phone": "+15552013345"},
    "location": {"name": "Main Street"},
}


def test_shift_reminder_is_texted_one_hour_before_the_shift(examples):
    # published on Friday for Monday 14:00, across the spring-forward weekend
    clock = FakeClock(local(2026, 3, 6, 10, 0).astimezone(UTC))
    d = examples(clock)
    answer = hook(d, "scheduling", SHIFT)
    assert answer["fired"] == ["shift-reminder"]
    (row,) = logs(d, "shift-reminder")
    assert (row["to"], row["type"], row["status"]) == ("+15552013345", "sms", "scheduled")
    assert due_at(d, row["log_id"]) == local(2026, 3, 9, 13, 0)  # 17:00 UTC

    clock.set(local(2026, 3, 9, 12, 59, 59).astimezone(UTC))
    d.run(d.daemon.dispatcher.run_once())
    assert d.daemon.provider.sent == []
    clock.set(local(2026, 3, 9, 13, 0).astimezone(UTC))
    d.run(d.daemon.dispatcher.run_once())
    d.wait_until(lambda: d.daemon.provider.sent, what="the reminder")
    assert sent(d) == [("sms", "+15552013345", "Hi Luis, reminder: your shift at Main Street starts at 2:00 PM.",
                        False, 1, None)]
    assert logs(d, "shift-reminder")[0]["status"] == "initiated"


def test_shift_published_less_than_an_hour_ahead_is_texted_at_once(examples):
    clock = FakeClock(local(2026, 3, 9, 13, 30).astimezone(UTC))
    d = examples(clock)
    shift = {**SHIFT, "shift": {**SHIFT["shift"], "starts_at": "2026-03-09T14:00:00"}}  # no offset: local time
    hook(d, "scheduling", shift)
    assert sent(d) == [("sms", "+15552013345", "Hi Luis, reminder: your shift at Main Street starts at 2:00 PM.",
                        False, 1, None)]


# --- payment failed ------------------------------------------------------------------------------

PAYMENT_FAILED = {
    "id": "evt_1PqLk2Aa9xYz",
    "object": "event",
    "type": "invoice.payment_failed",
    "created": 1773151200,
    "data": {"object": {"id": "in_1PqLk1Aa9xYz", "object": "invoice", "customer": "cus_Q8x7",
                        "customer_name": "Acme Corp", "amount_due": 4900, "currency": "usd",
                        "attempt_count": 2, "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test"}},
}


def test_payment_failed_calls_billing_who_press_one_and_a_redelivery_does_not_call_again(examples):
    clock = FakeClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    d = examples(clock)
    assert hook(d, "payments", PAYMENT_FAILED)["fired"] == ["payment-failed"]
    message = "Payment failed: Acme Corp could not be charged 49.00 USD, attempt 2."
    assert sent(d) == [("call", BILLING, message, True, 2, None)]
    d.wait_until(lambda: acknowledged(d, "payment-failed"), what="press 1 acknowledged")

    clock.advance(timedelta(minutes=10))  # the processor delivers the same event again
    assert hook(d, "payments", PAYMENT_FAILED)["fired"] == []
    assert hook(d, "payments", {**PAYMENT_FAILED, "id": "evt_other", "type": "invoice.paid"})["fired"] == []
    assert len(d.daemon.provider.sent) == 1


# --- system down -----------------------------------------------------------------------------------

def test_system_down_calls_and_texts_the_whole_oncall_group(examples):
    d = examples(FakeClock(datetime(2026, 3, 10, 7, 42, tzinfo=UTC)))
    answer = hook(d, "system-down", {"system": "checkout", "details": "Database unreachable from all app servers."})
    assert answer["fired"] == ["system-down"] and len(answer["log_ids"]) == 2
    message = "System down: checkout. Database unreachable from all app servers."
    assert sent(d) == [(ch, to, message, True, 2, None) for ch, to in
                       [("call", PRIMARY), ("call", SECONDARY), ("sms", PRIMARY), ("sms", SECONDARY)]]
    rows = logs(d, "system-down")
    assert [(r["to"], r["type"]) for r in rows] == [(PRIMARY, "both"), (SECONDARY, "both")]
    assert len({r["trigger_id"] for r in rows}) == 1  # one trigger: a press of 1 by either acknowledges it


# --- appointment reminder ----------------------------------------------------------------------------

APPOINTMENT = {
    "type": "appointment.booked",
    "appointment": {"id": "apt_311", "starts_at": "2026-03-12T15:30:00-04:00", "service": "Limpieza dental"},
    "patient": {"first_name": "Ana", "last_name": "Ruiz", "phone": "555-201-3346"},
    "clinic": {"name": "Clinica Sonrisa", "phone": "555-201-0000"},
}


def test_appointment_reminder_is_texted_in_spanish_at_8_on_the_morning_of_the_appointment(examples):
    clock = FakeClock(local(2026, 3, 10, 16, 5).astimezone(UTC))
    d = examples(clock)
    assert hook(d, "appointments", APPOINTMENT)["fired"] == ["appointment-reminder-es"]
    (row,) = logs(d, "appointment-reminder-es")
    assert (row["to"], row["type"], row["status"]) == ("+15552013346", "sms", "scheduled")
    assert due_at(d, row["log_id"]) == local(2026, 3, 12, 8, 0)

    clock.set(local(2026, 3, 12, 8, 0).astimezone(UTC))
    d.run(d.daemon.dispatcher.run_once())
    d.wait_until(lambda: d.daemon.provider.sent, what="the reminder")
    message = ("Hola Ana, le recordamos su cita de hoy a las 15:30 en Clinica Sonrisa. "
               "Para cambiarla llame al 555-201-0000.")
    assert sent(d) == [("sms", "+15552013346", message, False, 1, "es-MX")]


def test_appointment_without_a_start_time_is_a_failed_row_not_a_text_at_the_wrong_time(examples):
    d = examples(FakeClock(local(2026, 3, 10, 16, 5).astimezone(UTC)))
    booking = {**APPOINTMENT, "appointment": {"id": "apt_312", "service": "Limpieza dental"}}
    assert hook(d, "appointments", booking)["fired"] == ["appointment-reminder-es"]
    (row,) = logs(d, "appointment-reminder-es")
    assert (row["to"], row["status"]) == ("+15552013346", "failed")
    assert row["error"]["message"] == ("notify.at rendered 'T08:00', which is not an ISO-8601 time such as "
                                       "2026-03-08T09:00")
    assert d.run(d.daemon.dispatcher.run_once()) == 0
    assert d.daemon.provider.sent == []
