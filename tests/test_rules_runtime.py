"""The rules engine inside a running daemon: webhooks over real HTTP, polls
against a real local HTTP server, schedule ticks, state and cooldowns under a
FakeClock, deferred sends across a restart, hot reload by writing files, and
the `check` / `test-rule` commands.

Ticks are driven directly (``sources.run_rule``) and the outbox worker with
``dispatcher.run_once()``: nothing waits for a schedule.

The tests of rules firing (events, rule state, cooldowns, the rows they write,
deferred sends) run on SQLite and on PostgreSQL; loading and reloading rule
files, the API's refusals and the commands never reach the database and run once.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from alertd.clock import FakeClock
from local_http import LocalServer, SilentServer, refused_url
from conftest import both_backends, sync

UTC = timezone.utc
MANAGER, PRIMARY, SECONDARY = "+15551230001", "+15551230002", "+15551230003"
T0 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / "rules" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def sent(d, start: int = 0) -> list[tuple]:
    """(channel, to, message) of what the simulator sent, in order."""
    return [(o.channel, o.to, o.message) for o in d.daemon.provider.sent[start:]]


def post(d, name: str, payload=None, **kwargs) -> requests.Response:
    return d.api.post(d.url(f"/hooks/{name}"), json=payload, timeout=10, **kwargs)


def fire(d, name: str, payload) -> dict:
    resp = post(d, name, payload)
    assert resp.status_code == 200, resp.text
    return resp.json()


def rule_logs(d, rule_id: str) -> list[dict]:
    resp = d.api.get(d.url("/api/v1/calls/logs"), params={"limit": 1000}, timeout=10)
    return sorted((r for r in resp.json()["logs"] if r["rule_id"] == rule_id), key=lambda r: r["log_id"])


def tick(d, rule_id: str) -> None:
    d.run(d.daemon.sources.run_rule(rule_id))


def rules_api(d) -> dict:
    resp = d.api.get(d.url("/api/v1/rules"), timeout=10)
    assert resp.status_code == 200
    return resp.json()


def rule_ids(d) -> set[str]:
    return {r["id"] for r in rules_api(d)["rules"]}


def sighup(d) -> bool:
    """What SIGHUP does: RuleManager.reload() on the daemon's loop."""
    async def reload() -> bool:
        return d.daemon.rules.reload()
    return d.run(reload())


# --- webhooks: the generic format ------------------------------------------------------------

ECHO = """\
rules:
  - id: echo
    source: {webhook: echo}
    notify:
      to: manager
      message: "{{ event | tojson }}"
      action_type: sms
"""


@both_backends
def test_webhook_answers_ok_with_event_id_fired_rules_and_log_ids(make_daemon, tmp_path):
    write(tmp_path, "echo.yaml", ECHO)
    d = make_daemon()
    resp = post(d, "echo", {"door": "back"})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"ok", "event_id", "fired", "log_ids"}
    assert body["ok"] is True and body["fired"] == ["echo"] and isinstance(body["event_id"], int)
    (row,) = rule_logs(d, "echo")
    assert body["log_ids"] == [row["log_id"]]
    assert (row["to"], row["type"], row["message"]) == (MANAGER, "sms", '{"door": "back"}')
    assert d.run(d.daemon.store.events.get(body["event_id"]))["fired"] == ["echo"]


@both_backends
def test_webhook_by_get_takes_the_query_and_never_the_key(make_daemon, tmp_path):
    write(tmp_path, "echo.yaml", ECHO)
    d = make_daemon()
    resp = requests.get(d.url("/hooks/echo"), params={"key": d.key, "sensor": "door-2", "state": "open"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["fired"] == ["echo"]
    assert sent(d) == [("sms", MANAGER, '{"sensor": "door-2", "state": "open"}')]
    stored = d.run(d.daemon.store.events.get(resp.json()["event_id"]))
    assert stored["payload"] == {"body": None, "query": {"sensor": "door-2", "state": "open"}}
    assert d.key not in str(stored)


@both_backends
def test_webhook_body_wins_over_the_query_on_a_clash(make_daemon, tmp_path):
    write(tmp_path, "echo.yaml", ECHO)
    d = make_daemon()
    resp = d.api.post(d.url("/hooks/echo"), params={"state": "from-query", "site": "hq"},
                      json={"state": "from-body"}, timeout=10)
    assert resp.status_code == 200
    assert sent(d) == [("sms", MANAGER, '{"site": "hq", "state": "from-body"}')]


@both_backends
def test_webhook_takes_a_form_encoded_body(make_daemon, tmp_path):
    write(tmp_path, "echo.yaml", ECHO)
    d = make_daemon()
    resp = d.api.post(d.url("/hooks/echo?zone=3"), data={"sensor": "motion-1", "state": "motion"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert sent(d) == [("sms", MANAGER, '{"sensor": "motion-1", "state": "motion", "zone": "3"}')]


def test_webhook_errors_use_the_api_envelope(make_daemon, tmp_path):
    write(tmp_path, "echo.yaml", ECHO)
    d = make_daemon()
    unknown = post(d, "nope", {"a": 1})
    assert (unknown.status_code, unknown.json()) == (404, {"ok": False, "code": 404,
                                                           "error": "No rule listens on webhook 'nope'."})
    bad_key = requests.post(d.url("/hooks/echo"), json={"a": 1}, headers={"Authorization": "Bearer ak_live_wrong"},
                            timeout=10)
    assert bad_key.status_code == 401
    assert bad_key.json()["ok"] is False and bad_key.json()["code"] == 401 and bad_key.json()["error"]
    no_key = requests.get(d.url("/hooks/echo"), timeout=10)
    assert no_key.status_code == 401 and no_key.json()["code"] == 401
    huge = post(d, "echo", {"blob": "x" * (1024 * 1024)})
    assert huge.status_code == 413
    assert huge.json() == {"ok": False, "code": 413, "error": "Request body too large (limit 1048576 bytes)."}
    assert d.daemon.provider.sent == []


@both_backends
def test_every_received_event_is_recorded_even_when_no_rule_fires(make_daemon, tmp_path):
    write(tmp_path, "quiet.yaml", """\
        rules:
          - id: quiet
            source: {webhook: sensor}
            when: event.temp > 30
            notify: {to: manager, message: "Hot: {{ event.temp }}"}
        """)
    d = make_daemon(clock=FakeClock(T0))
    body = fire(d, "sensor", {"temp": 21})
    assert body["fired"] == [] and body["log_ids"] == []
    event = d.run(d.daemon.store.events.get(body["event_id"]))
    assert (event["kind"], event["name"], event["payload"]["body"], event["fired"]) == ("webhook", "sensor",
                                                                                        {"temp": 21}, [])
    assert event["received_at"] == T0.timestamp()
    assert d.daemon.provider.sent == []


@both_backends
def test_several_rules_on_one_webhook_each_decide_with_when(make_daemon, tmp_path):
    write(tmp_path, "temps.yaml", """\
        rules:
          - id: too-hot
            source: {webhook: fridge}
            when: event.temp > 8
            notify: {to: manager, message: "Fridge too warm: {{ event.temp }} C", action_type: sms}
          - id: too-cold
            source: {webhook: fridge}
            when: event.temp < 0
            notify: {to: manager, message: "Fridge freezing: {{ event.temp }} C", action_type: sms}
          - id: every-reading
            source: {webhook: fridge}
            notify: {to: oncall_primary, message: "Reading {{ event.temp }}", action_type: sms}
        """)
    d = make_daemon()
    assert fire(d, "fridge", {"temp": 11})["fired"] == ["too-hot", "every-reading"]
    assert fire(d, "fridge", {"temp": -3})["fired"] == ["too-cold", "every-reading"]
    assert fire(d, "fridge", {"temp": 4})["fired"] == ["every-reading"]
    assert sent(d) == [("sms", MANAGER, "Fridge too warm: 11 C"), ("sms", PRIMARY, "Reading 11"),
                       ("sms", MANAGER, "Fridge freezing: -3 C"), ("sms", PRIMARY, "Reading -3"),
                       ("sms", PRIMARY, "Reading 4")]


# --- webhooks: Alertmanager and Grafana ------------------------------------------------------------

ALERT_RULES = """\
rules:
  - id: am-critical
    source: {webhook: am, format: alertmanager}
    when: event.labels.severity == "critical"
    notify:
      to: oncall
      message: "{{ 'RESOLVED' if resolved else 'FIRING' }} {{ event.labels.alertname }} {{ event.labels.instance }}"
      action_type: sms
    notify_resolved: true
  - id: am-everything
    source: {webhook: am, format: alertmanager}
    notify:
      to: manager
      message: "{{ event.status }} {{ event.labels.alertname }}"
      action_type: sms
"""


def am_alert(name: str, instance: str, severity: str, fingerprint: str, status: str = "firing") -> dict:
    return {"status": status,
            "labels": {"alertname": name, "instance": instance, "job": "node", "severity": severity},
            "annotations": {"summary": f"{name} on {instance}"},
            "startsAt": "2026-03-10T13:51:02.104Z",
            "endsAt": "2026-03-10T14:20:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
            "fingerprint": fingerprint}


def am_payload(*alerts: dict) -> dict:
    """Alertmanager's webhook body, version 4."""
    return {"version": "4", "groupKey": '{}:{job="node"}', "truncatedAlerts": 0,
            "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "receiver": "alertd", "groupLabels": {"job": "node"}, "commonLabels": {"job": "node"},
            "commonAnnotations": {}, "externalURL": "http://alertmanager.local:9093", "alerts": list(alerts)}


@both_backends
def test_alertmanager_firing_notifies_once_per_fingerprint_and_resolved_once(make_daemon, tmp_path):
    write(tmp_path, "am.yaml", ALERT_RULES)
    clock = FakeClock(T0)
    d = make_daemon(clock=clock)
    down = am_alert("InstanceDown", "db-1:9100", "critical", "a1b2c3d4e5f60001")
    disk = am_alert("DiskSpaceLow", "web-2:9100", "warning", "a1b2c3d4e5f60002")

    body = fire(d, "am", am_payload(down, disk))
    assert body["fired"] == ["am-critical", "am-everything"] and len(body["log_ids"]) == 4
    assert sent(d) == [("sms", PRIMARY, "FIRING InstanceDown db-1:9100"),
                       ("sms", SECONDARY, "FIRING InstanceDown db-1:9100"),
                       ("sms", MANAGER, "firing InstanceDown"), ("sms", MANAGER, "firing DiskSpaceLow")]

    for _ in range(3):  # Alertmanager re-sends the group every group_interval / repeat_interval
        clock.advance(timedelta(minutes=5))
        assert fire(d, "am", am_payload(down, disk))["fired"] == []
    assert len(d.daemon.provider.sent) == 4

    # db-1 recovers while the disk stays full: the critical rule says so once,
    # the rule without notify_resolved says nothing
    resolved = {**down, "status": "resolved", "endsAt": "2026-03-10T14:20:00Z"}
    assert fire(d, "am", am_payload(resolved, disk))["fired"] == ["am-critical"]
    assert sent(d, 4) == [("sms", PRIMARY, "RESOLVED InstanceDown db-1:9100"),
                          ("sms", SECONDARY, "RESOLVED InstanceDown db-1:9100")]
    assert fire(d, "am", am_payload(resolved, disk))["fired"] == []

    # resolved for a fingerprint never notified firing: nothing to resolve
    stranger = am_alert("InstanceDown", "db-9:9100", "critical", "a1b2c3d4e5f60009", status="resolved")
    assert fire(d, "am", am_payload(stranger))["fired"] == []

    # firing again after resolved is a new episode
    clock.advance(timedelta(minutes=30))
    assert fire(d, "am", am_payload(down, disk))["fired"] == ["am-critical", "am-everything"]
    assert sent(d, 6) == [("sms", PRIMARY, "FIRING InstanceDown db-1:9100"),
                          ("sms", SECONDARY, "FIRING InstanceDown db-1:9100"),
                          ("sms", MANAGER, "firing InstanceDown")]
    assert rules_api(d)["rules"][0]["firing"] is True


@both_backends
def test_alertmanager_critical_warning_that_never_fired_is_not_resolved(make_daemon, tmp_path):
    # `when` is evaluated on the resolved alert too: a warning resolving is not the critical rule's business
    write(tmp_path, "am.yaml", ALERT_RULES)
    d = make_daemon(clock=FakeClock(T0))
    disk = am_alert("DiskSpaceLow", "web-2:9100", "warning", "a1b2c3d4e5f60002")
    fire(d, "am", am_payload(disk))
    assert fire(d, "am", am_payload({**disk, "status": "resolved"}))["fired"] == []
    assert sent(d) == [("sms", MANAGER, "firing DiskSpaceLow")]


def grafana_payload(status: str) -> dict:
    """Grafana Alerting's webhook contact point body."""
    alert = {
        "status": status,
        "labels": {"alertname": "HighCPU", "grafana_folder": "Servers", "instance": "web-1", "severity": "critical"},
        "annotations": {"summary": "CPU above 90% for 10 minutes"},
        "startsAt": "2026-03-10T13:50:00Z",
        "endsAt": "2026-03-10T14:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana.local:3000/alerting/grafana/cdx8k2/view",
        "fingerprint": "7c1ea3b2d4f5a6b7",
        "silenceURL": "http://grafana.local:3000/alerting/silence/new?matcher=alertname%3DHighCPU",
        "dashboardURL": "http://grafana.local:3000/d/node01",
        "panelURL": "http://grafana.local:3000/d/node01?viewPanel=3",
        "values": {"B": 93.2, "C": 1},
        "valueString": "[ var='B' labels={instance=web-1} value=93.2 ]",
    }
    return {"receiver": "alertd", "status": status, "orgId": 1, "alerts": [alert],
            "groupLabels": {"alertname": "HighCPU"}, "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"], "externalURL": "http://grafana.local:3000/",
            "version": "1", "groupKey": '{}:{alertname="HighCPU"}', "truncatedAlerts": 0,
            "title": f"[{status.upper()}:1] HighCPU (Servers)", "state": "alerting" if status == "firing" else "ok",
            "message": f"**{status.capitalize()}**\n\nValue: B=93.2\nLabels:\n - alertname = HighCPU\n"}


@both_backends
def test_grafana_firing_notifies_once_and_resolved_once(make_daemon, tmp_path):
    write(tmp_path, "grafana.yaml", """\
        rules:
          - id: grafana-critical
            source: {webhook: grafana, format: grafana}
            when: event.labels.severity == "critical"
            notify:
              to: oncall_primary
              message: >-
                {{ 'Resolved' if resolved else 'Firing' }}: {{ event.annotations.summary }}
                on {{ event.labels.instance }}
              action_type: sms
            notify_resolved: true
        """)
    d = make_daemon(clock=FakeClock(T0))
    assert fire(d, "grafana", grafana_payload("firing"))["fired"] == ["grafana-critical"]
    assert fire(d, "grafana", grafana_payload("firing"))["fired"] == []
    assert fire(d, "grafana", grafana_payload("resolved"))["fired"] == ["grafana-critical"]
    assert fire(d, "grafana", grafana_payload("resolved"))["fired"] == []
    assert sent(d) == [("sms", PRIMARY, "Firing: CPU above 90% for 10 minutes on web-1"),
                       ("sms", PRIMARY, "Resolved: CPU above 90% for 10 minutes on web-1")]


# --- polls -------------------------------------------------------------------------------------------

def poll_rule(url: str, *, when: str = "event.error", timeout: str = "10s",
              message: str = "status={{ event.status }} error={{ event.error }}") -> str:
    return textwrap.dedent("""\
        rules:
          - id: check
            source:
              poll:
                url: %s
                every: 1h
                timeout: %s
            when: %s
            notify:
              to: manager
              message: "%s"
              action_type: sms
        """) % (url, timeout, when, message)


@both_backends
def test_poll_of_a_refused_connection_is_an_event_with_error_set(make_daemon, tmp_path):
    url = refused_url("/health")
    write(tmp_path, "poll.yaml", poll_rule(url))
    d = make_daemon()
    tick(d, "check")
    ((channel, to, message),) = sent(d)
    port = url.split(":")[2].split("/")[0]
    assert message.startswith("status= error=ClientConnectorError: Cannot connect to host 127.0.0.1:" + port)


@both_backends
def test_poll_that_times_out_is_an_event_with_error_set(make_daemon, tmp_path):
    with SilentServer() as silent:
        write(tmp_path, "poll.yaml", poll_rule(silent.url("/health"), timeout="0.3s"))
        d = make_daemon()
        started = time.monotonic()
        tick(d, "check")
        assert time.monotonic() - started < 3
    assert sent(d) == [("sms", MANAGER, "status= error=timeout after 0.3s")]


@both_backends
def test_poll_of_a_body_in_an_unknown_charset_is_read_as_utf8(make_daemon, tmp_path):
    with LocalServer(body="Caf\u00e9 closed", content_type="text/plain; charset=klingon") as server:
        write(tmp_path, "poll.yaml", poll_rule(server.url("/"), when="event.status == 200",
                                               message="{{ event.body }}"))
        d = make_daemon()
        tick(d, "check")
    assert sent(d) == [("sms", MANAGER, "Caf\u00e9 closed")]


@both_backends
def test_poll_sends_headers_with_env_vars_and_reads_the_json_body(make_daemon, tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUE_TOKEN", "s3cret")
    with LocalServer(body={"depth": 250}) as server:
        write(tmp_path, "poll.yaml", f"""\
            rules:
              - id: queue
                source:
                  poll:
                    url: {server.url("/stats")}
                    every: 1h
                    method: post
                    headers: {{Authorization: "Bearer ${{QUEUE_TOKEN}}"}}
                    body: {{queue: jobs}}
                when: event.status == 200 and event.body.depth > 100
                notify: {{to: manager, message: "Queue at {{{{ event.body.depth }}}}", action_type: sms}}
            """)
        d = make_daemon()
        tick(d, "queue")
        ((method, path, headers),) = server.requests
    assert (method, path, headers["Authorization"]) == ("POST", "/stats", "Bearer s3cret")
    assert sent(d) == [("sms", MANAGER, "Queue at 250")]


@both_backends
def test_poll_notifies_on_the_flip_repeats_after_repeat_every_and_once_when_cleared(make_daemon, tmp_path):
    clock = FakeClock(T0)
    with LocalServer(body={"depth": 10}) as server:
        write(tmp_path, "poll.yaml", f"""\
            rules:
              - id: queue
                source: {{poll: {{url: "{server.url('/stats')}", every: 1h}}}}
                when: event.body.depth > 100
                notify:
                  to: manager
                  message: "{{{{ 'Queue back to ' if resolved else 'Queue at ' }}}}{{{{ event.body.depth }}}}"
                  action_type: sms
                repeat_every: 10m
                notify_resolved: true
            """)
        d = make_daemon(clock=clock)

        def step(depth: int, minutes: float) -> list:
            server.body = {"depth": depth}
            clock.advance(timedelta(minutes=minutes))
            before = len(d.daemon.provider.sent)
            tick(d, "queue")
            return [m for _, _, m in sent(d, before)]

        assert step(10, 0) == []
        assert step(150, 1) == ["Queue at 150"]      # turns true
        assert step(180, 1) == []                    # stays true
        assert step(190, 8) == []                    # 9 minutes after the notification
        assert step(200, 1) == ["Queue at 200"]      # 10 minutes: repeat_every
        assert step(200, 5) == []
        assert step(20, 1) == ["Queue back to 20"]   # cleared: once
        assert step(20, 60) == []
        assert step(120, 1) == ["Queue at 120"]      # a new episode
    assert [r["message"] for r in rule_logs(d, "queue")] == ["Queue at 150", "Queue at 200", "Queue back to 20",
                                                             "Queue at 120"]


# --- schedules and cooldowns -------------------------------------------------------------------------

@both_backends
def test_schedule_tick_is_an_event_with_scheduled_at_and_notifies_when_when_holds(make_daemon, tmp_path):
    write(tmp_path, "daily.yaml", """\
        rules:
          - id: daily-test
            source: {schedule: {cron: "0 8 * * *"}}
            when: now.weekday() < 5
            notify: {to: manager, message: "Test of the alert path, tick {{ event.scheduled_at }}", action_type: sms}
        """)
    clock = FakeClock(datetime(2026, 3, 13, 12, 0, tzinfo=UTC))  # Friday 08:00 in New York
    d = make_daemon(clock=clock)
    tick(d, "daily-test")
    clock.advance(timedelta(days=1))  # Saturday: `when` does not hold
    tick(d, "daily-test")
    clock.advance(timedelta(days=2))  # Monday
    tick(d, "daily-test")
    assert sent(d) == [("sms", MANAGER, "Test of the alert path, tick 2026-03-13T12:00:00+00:00"),
                       ("sms", MANAGER, "Test of the alert path, tick 2026-03-16T12:00:00+00:00")]


@both_backends
def test_cooldown_holds_back_per_dedup_key(make_daemon, tmp_path):
    write(tmp_path, "disk.yaml", """\
        rules:
          - id: disk
            source: {webhook: disk}
            notify: {to: manager, message: "Disk full on {{ event.host }}", action_type: sms}
            dedup_key: "{{ event.host }}"
            cooldown: 15m
        """)
    clock = FakeClock(T0)
    d = make_daemon(clock=clock)
    assert fire(d, "disk", {"host": "web-1"})["fired"] == ["disk"]
    clock.advance(timedelta(minutes=14, seconds=59))
    assert fire(d, "disk", {"host": "web-1"})["fired"] == []
    assert fire(d, "disk", {"host": "web-2"})["fired"] == ["disk"]
    clock.advance(timedelta(seconds=1))  # 15 minutes after web-1's
    assert fire(d, "disk", {"host": "web-1"})["fired"] == ["disk"]
    assert fire(d, "disk", {"host": "web-2"})["fired"] == []
    assert sent(d) == [("sms", MANAGER, "Disk full on web-1"), ("sms", MANAGER, "Disk full on web-2"),
                       ("sms", MANAGER, "Disk full on web-1")]


# --- failures on the trigger log -----------------------------------------------------------------------

@both_backends
def test_a_template_that_fails_to_render_is_a_failed_row_and_the_webhook_still_answers_200(make_daemon, tmp_path):
    write(tmp_path, "bad.yaml", """\
        rules:
          - id: bad-message
            source: {webhook: orders}
            notify: {to: manager, message: "Order total {{ event.total + 1 }}", action_type: sms}
        """)
    d = make_daemon()
    resp = post(d, "orders", {"total": "twelve"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["fired"] == ["bad-message"] and len(body["log_ids"]) == 1
    (row,) = rule_logs(d, "bad-message")
    assert (row["log_id"], row["status"], row["to"]) == (body["log_ids"][0], "failed", MANAGER)
    assert row["error"] == {"code": None, "message": "notify.message failed to render: "
                                                     'TypeError: can only concatenate str (not "int") to str'}
    assert d.daemon.provider.sent == []


@both_backends
def test_a_to_that_renders_to_no_valid_number_is_a_failed_row_and_the_webhook_still_answers_200(make_daemon,
                                                                                                  tmp_path):
    write(tmp_path, "bad.yaml", """\
        rules:
          - id: bad-to
            source: {webhook: shop}
            notify: {to: "{{ event.customer.phone }}", message: "Your order shipped", action_type: sms}
        """)
    d = make_daemon()
    resp = post(d, "shop", {"customer": {"phone": "call me maybe"}})
    assert resp.status_code == 200 and resp.json()["fired"] == ["bad-to"]
    (row,) = rule_logs(d, "bad-to")
    assert (row["status"], row["to"], row["message"]) == ("failed", "", "Your order shipped")
    assert row["error"]["message"] == ("notify.to: 'call me maybe' (from '{{ event.customer.phone }}') is not a phone"
                                       " number; a name is looked up only when the rule writes it"
                                       " (to_names_from_event: true lifts this); notify.to: no valid recipient")
    assert d.daemon.provider.sent == []


@both_backends
def test_a_when_that_cannot_be_evaluated_is_a_failed_row_not_a_silent_drop(make_daemon, tmp_path):
    write(tmp_path, "hot.yaml", """\
        rules:
          - id: hot
            source: {webhook: temps}
            when: event.temp > 30
            notify: {to: manager, message: "Hot: {{ event.temp }}", action_type: sms}
        """)
    d = make_daemon()
    body = fire(d, "temps", {"temp": "very"})
    assert body["fired"] == ["hot"] and len(body["log_ids"]) == 1
    (row,) = rule_logs(d, "hot")
    assert (row["status"], row["to"], row["type"]) == ("failed", "", "sms")
    assert row["error"]["message"] == ("when failed to evaluate: TypeError: '>' not supported between "
                                       "instances of 'str' and 'int'")
    assert fire(d, "temps", {"temp": "still very"})["fired"] == ["hot"]  # each bad event is its own row
    assert fire(d, "temps", {"temp": 35})["fired"] == ["hot"]
    assert sent(d) == [("sms", MANAGER, "Hot: 35")]


@both_backends
def test_a_poll_whose_when_fails_the_same_way_every_tick_is_one_failed_row(make_daemon, tmp_path):
    with LocalServer(body={"depth": "n/a"}) as server:
        write(tmp_path, "poll.yaml", poll_rule(server.url("/stats"), when="event.body.depth > 100"))
        d = make_daemon()
        for _ in range(3):
            tick(d, "check")
        server.body = {"depth": 5}
        tick(d, "check")  # evaluates again: the next failure is news
        server.body = {"depth": "n/a"}
        tick(d, "check")
    assert [r["status"] for r in rule_logs(d, "check")] == ["failed", "failed"]
    assert d.daemon.provider.sent == []


@both_backends
def test_rules_api_shows_source_state_and_last_evaluated_and_fired(make_daemon, tmp_path):
    write(tmp_path, "am.yaml", ALERT_RULES)
    clock = FakeClock(T0)
    d = make_daemon(clock=clock)
    fire(d, "am", am_payload(am_alert("InstanceDown", "db-1:9100", "critical", "a1b2c3d4e5f60001")))
    clock.advance(timedelta(minutes=5))
    fire(d, "am", am_payload(am_alert("DiskSpaceLow", "web-2:9100", "warning", "a1b2c3d4e5f60002")))
    critical, everything = rules_api(d)["rules"]
    assert critical == {"id": "am-critical", "description": "", "file": "rules/am.yaml",
                        "source": {"webhook": "am", "format": "alertmanager"}, "firing": True,
                        "last_evaluated": "2026-03-10T14:05:00.000Z", "last_fired": "2026-03-10T14:00:00.000Z",
                        "next_run": None}
    assert (everything["id"], everything["last_fired"]) == ("am-everything", "2026-03-10T14:05:00.000Z")


@both_backends
def test_an_at_that_is_not_a_time_fails_the_notification_instead_of_sending_it_at_once(make_daemon, tmp_path):
    write(tmp_path, "remind.yaml", """\
        rules:
          - id: remind
            source: {webhook: bookings}
            notify: {to: manager, message: "See you {{ event.when }}", action_type: sms, at: "{{ event.when }}"}
        """)
    d = make_daemon()
    resp = post(d, "bookings", {"when": "next tuesday"})
    assert resp.status_code == 200 and resp.json()["fired"] == ["remind"]
    (row,) = rule_logs(d, "remind")
    assert (row["status"], row["to"], row["message"]) == ("failed", MANAGER, "See you next tuesday")
    assert row["error"]["message"] == ("notify.at rendered 'next tuesday', which is not an ISO-8601 time such as "
                                       "2026-03-08T09:00")
    assert d.run(d.daemon.dispatcher.run_once()) == 0
    assert d.daemon.provider.sent == []


# --- deferred sends ------------------------------------------------------------------------------------

@both_backends
def test_a_delayed_notification_survives_a_restart_and_is_sent_once_when_due(make_daemon, tmp_path):
    write(tmp_path, "later.yaml", """\
        rules:
          - id: later
            source: {webhook: later}
            notify: {to: manager, message: "Reminder: {{ event.what }}", action_type: sms, delay: 1h}
        """)
    first = make_daemon(clock=FakeClock(T0))
    body = fire(first, "later", {"what": "lock the back door"})
    (row,) = rule_logs(first, "later")
    assert (row["log_id"], row["status"]) == (body["log_ids"][0], "scheduled")
    first.run(first.daemon.dispatcher.run_once())
    assert first.daemon.provider.sent == []
    first.stop()

    # down while it fell due; back up 2 hours after the webhook
    second = make_daemon(clock=FakeClock(T0 + timedelta(hours=2)), folder=tmp_path)
    second.run(second.daemon.dispatcher.run_once())
    # the send's outcome is stored after the provider took it (awaited on PostgreSQL): wait for the row
    second.wait_until(lambda: rule_logs(second, "later")[0]["status"] == "initiated", what="the deferred send")
    assert second.run(second.daemon.dispatcher.run_once()) == 0
    assert sent(second) == [("sms", MANAGER, "Reminder: lock the back door")]


# --- reload ---------------------------------------------------------------------------------------------

HOOK_RULE = """\
rules:
  - id: {id}
    source: {{webhook: {id}}}
    notify: {{to: manager, message: "{id} fired", action_type: sms}}
"""


def test_writing_a_new_rule_file_makes_it_live_within_2_seconds(make_daemon, tmp_path):
    write(tmp_path, "a.yaml", HOOK_RULE.format(id="first"))
    d = make_daemon()
    assert rule_ids(d) == {"first"}
    started = time.monotonic()
    write(tmp_path, "sub/b.yaml", HOOK_RULE.format(id="second"))
    d.wait_until(lambda: rule_ids(d) == {"first", "second"}, timeout=2.0, what="the new rule")
    assert time.monotonic() - started < 2.0
    assert fire(d, "second", {})["fired"] == ["second"]


def test_an_invalid_file_keeps_the_previous_rules_live_and_reports_its_error(make_daemon, tmp_path):
    write(tmp_path, "a.yaml", HOOK_RULE.format(id="first"))
    d = make_daemon()
    write(tmp_path, "a.yaml", HOOK_RULE.format(id="first") + HOOK_RULE.format(id="second").replace("rules:\n", ""))
    d.wait_until(lambda: rule_ids(d) == {"first", "second"}, timeout=2.0, what="the first reload")

    # a new file with a typo: the whole reload is refused
    write(tmp_path, "door.yaml", """\
        rules:
          - id: door-open
            source: {webhook: door}
            notify:
              to: [manager, ownr]
              message: "Door {{ event.door }} open"
        """)
    error = "rules/door.yaml:5: rule 'door-open': unknown contact 'ownr' in notify.to"
    d.wait_until(lambda: rules_api(d)["errors"] == [error], timeout=2.0, what="the reload error")
    assert rule_ids(d) == {"first", "second"}
    assert requests.get(d.url("/healthz"), timeout=10).json()["rules"] == {"loaded": 2, "errors": [error]}
    assert fire(d, "second", {})["fired"] == ["second"]
    assert post(d, "door", {}).status_code == 404

    # even a change to a valid file is held back while another is broken
    write(tmp_path, "a.yaml", HOOK_RULE.format(id="first"))
    assert sighup(d) is False
    assert rule_ids(d) == {"first", "second"}

    # fixed: everything goes live together, and the error is gone
    write(tmp_path, "door.yaml", HOOK_RULE.format(id="door"))
    d.wait_until(lambda: rule_ids(d) == {"first", "door"}, timeout=2.0, what="the fixed reload")
    assert rules_api(d)["errors"] == []
    assert requests.get(d.url("/healthz"), timeout=10).json()["rules"] == {"loaded": 2, "errors": []}


def test_sighup_reload_swaps_the_rules(make_daemon, tmp_path):
    write(tmp_path, "a.yaml", HOOK_RULE.format(id="first"))
    d = make_daemon()
    d.daemon.rules.stop()  # no watchdog: only the SIGHUP path reloads
    write(tmp_path, "a.yaml", HOOK_RULE.format(id="renamed"))
    assert rule_ids(d) == {"first"}
    assert sighup(d) is True
    assert rule_ids(d) == {"renamed"}
    assert post(d, "first", {}).status_code == 404
    assert fire(d, "renamed", {})["fired"] == ["renamed"]


def test_at_start_a_broken_file_is_skipped_while_the_others_load(make_daemon, tmp_path):
    write(tmp_path, "good.yaml", HOOK_RULE.format(id="good"))
    write(tmp_path, "broken.yaml", """\
        rules:
          - id: nightly
            source: {schedule: {cron: "61 * * * *"}}
            notify: {to: manager, message: x}
        """)
    d = make_daemon()
    error = ("rules/broken.yaml:3: rule 'nightly': invalid cron '61 * * * *' in source.schedule.cron: Error "
             "validating expression '61': the last value (61) is higher than the maximum value (59)")
    api = rules_api(d)
    assert [r["id"] for r in api["rules"]] == ["good"] and api["errors"] == [error]
    health = requests.get(d.url("/healthz"), timeout=10).json()
    assert health["ok"] is True and health["rules"] == {"loaded": 1, "errors": [error]}
    assert fire(d, "good", {})["fired"] == ["good"]
    assert d.daemon.scheduler.jobs() == {}


def test_scheduler_has_one_job_per_poll_and_schedule_rule_and_reload_removes_jobs_of_deleted_rules(make_daemon,
                                                                                                  tmp_path):
    write(tmp_path, "jobs.yaml", """\
        rules:
          - id: poll-a
            source: {poll: {url: "http://127.0.0.1:9/health", every: 1h}}
            when: event.error
            notify: {to: manager, message: down}
          - id: hook-c
            source: {webhook: c}
            notify: {to: manager, message: c}
        """)
    write(tmp_path, "nightly.yaml", """\
        rules:
          - id: sched-b
            source: {schedule: {cron: "30 2 * * *"}}
            notify: {to: manager, message: nightly}
        """)
    d = make_daemon()
    jobs = d.daemon.scheduler.jobs()
    assert set(jobs) == {"poll-a", "sched-b"}
    for job in (j for j in d.daemon.scheduler.scheduler.get_jobs() if j.id in d.daemon.scheduler.jobs()):
        # missed ticks are not replayed as a burst; a slow poll does not pile up; a late tick still runs
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 30)
    nightly = jobs["sched-b"].astimezone(ZoneInfo("America/New_York"))
    assert (nightly.hour, nightly.minute) == (2, 30)
    by_id = {r["id"]: r for r in rules_api(d)["rules"]}
    assert by_id["sched-b"]["next_run"] is not None and by_id["hook-c"]["next_run"] is None

    (tmp_path / "rules" / "nightly.yaml").unlink()  # the watchdog sees it go
    d.wait_until(lambda: rule_ids(d) == {"poll-a", "hook-c"}, timeout=2.0, what="the reload")
    assert set(d.daemon.scheduler.jobs()) == {"poll-a"}
    assert list(d.daemon.scheduler.jobs()) == ["poll-a"]


# --- the command line --------------------------------------------------------------------------------------

CLI_CONFIG = """\
database: alertd.db
rules: rules
timezone: America/New_York
contacts:
  manager: "+15551230001"
  oncall_primary: "+15551230002"
  oncall_secondary: "+15551230003"
groups:
  oncall: [oncall_primary, oncall_secondary]
"""


def alertd(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertd", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_check_exits_non_zero_and_names_file_and_line_of_each_broken_rule(tmp_path):
    (tmp_path / "config.yaml").write_text(CLI_CONFIG)
    write(tmp_path, "good.yaml", HOOK_RULE.format(id="good"))
    write(tmp_path, "broken.yaml", """\
        rules:
          - id: door-open
            source:
              webhook: door
            notify:
              to: [manager, ownr]
              message: "Door {{ event.door }}"
          - id: bad-cron
            source:
              schedule:
                cron: "61 * * * *"
            notify:
              to: manager
              message: x
        """)
    out = alertd("check", "-c", "config.yaml", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "rules/broken.yaml:6: rule 'door-open': unknown contact 'ownr' in notify.to",
        "rules/broken.yaml:11: rule 'bad-cron': invalid cron '61 * * * *' in source.schedule.cron: Error validating "
        "expression '61': the last value (61) is higher than the maximum value (59)",
        "FAILED: 2 problem(s)",
    ]
    (tmp_path / "rules" / "broken.yaml").unlink()
    out = alertd("check", "-c", "config.yaml", cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, "SUCCESS: config.yaml\n")


TEST_RULE = """\
rules:
  - id: server-hot
    source: {webhook: temps}
    when: event.temp > 30
    notify:
      to: [oncall, "{{ event.owner_phone }}"]
      message: "Server room at {{ event.temp }} C"
      action_type: both
      gather: true
      at: "{{ event.check_at }}"
"""


def test_test_rule_prints_what_would_be_sent_for_an_event_from_a_file(tmp_path):
    (tmp_path / "config.yaml").write_text(CLI_CONFIG)
    write(tmp_path, "temps.yaml", TEST_RULE)
    (tmp_path / "event.json").write_text('{"temp": 34, "owner_phone": "555-201-9999", "check_at": "2026-03-12T08:00"}')
    out = alertd("test-rule", "server-hot", "--event", "event.json", "-c", "config.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "when:        holds  (event.temp > 30)" in lines
    assert "would send:  yes" in lines
    assert "to:          +15551230002, +15551230003, +15552019999" in lines
    assert "action type: both" in lines
    assert "voice:       alice, repeat 1, gather yes" in lines
    assert "message:     Server room at 34 C" in lines
    assert "send at:     2026-03-12T12:00:00+00:00" in lines  # 08:00 in New York
    # test-rule sends nothing and stores nothing
    assert not (tmp_path / "alertd.db").exists()


def test_test_rule_reads_the_event_from_stdin(tmp_path):
    (tmp_path / "config.yaml").write_text(CLI_CONFIG)
    write(tmp_path, "temps.yaml", TEST_RULE)
    out = alertd("test-rule", "server-hot", "--event", "-", "-c", "config.yaml", cwd=tmp_path,
                 stdin='{"temp": 21, "owner_phone": "+15552019999", "check_at": "2026-03-12T08:00:00-04:00"}')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "when:        does not hold  (event.temp > 30)" in lines
    assert "would send:  no" in lines
    assert "message:     Server room at 21 C" in lines
    assert "send at:     2026-03-12T12:00:00+00:00" in lines


def test_the_rules_api_never_shows_a_substituted_secret_a_header_value_or_url_credentials(make_daemon, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setenv("PING_UUID", "0f1e2d3c-uuid-in-the-path")
    monkeypatch.setenv("QUEUE_TOKEN", "s3cret-in-a-header")
    write(tmp_path, "poll.yaml", """\
        rules:
          - id: queue
            source:
              poll:
                url: "http://ops:hunter2@127.0.0.1:9/ping/${PING_UUID}?token=${QUEUE_TOKEN}"
                every: 1h
                headers: {Authorization: "Bearer ${QUEUE_TOKEN}", X-Literal: literal-secret}
                body: {token: "${QUEUE_TOKEN}"}
            when: event.error
            notify: {to: manager, message: "Queue down", action_type: sms}
        """)
    d = make_daemon()
    resp = d.api.get(d.url("/api/v1/rules"), timeout=10)
    assert resp.status_code == 200, resp.text
    for secret in ("0f1e2d3c-uuid-in-the-path", "s3cret-in-a-header", "hunter2", "literal-secret"):
        assert secret not in resp.text, resp.text
    (rule,) = resp.json()["rules"]
    poll = rule["source"]["poll"]
    # as written in the file, ${VAR} unexpanded; the password of the URL and every header value hidden
    assert poll["url"] == "http://ops:***@127.0.0.1:9/ping/${PING_UUID}?token=${QUEUE_TOKEN}"
    assert poll["headers"] == {"Authorization": "***", "X-Literal": "***"}
    assert poll["body"] == "***"
    assert poll["every"] == "PT1H" and poll["method"] == "GET"


# --- who a rendered `to` may reach ---------------------------------------------------------------
SHOP_RULE = """\
    rules:
      - id: order-shipped
        source: {webhook: shop}
        notify:
          to: "{{ event.customer.phone }}"
          message: "Hi {{ event.customer.first_name }}, your order has shipped."
          action_type: sms
      - id: by-severity
        source: {webhook: sev}
        notify:
          to: "{{ 'oncall' if event.severity == 'critical' else 'manager' }}"
          message: "Severity {{ event.severity }}"
          action_type: sms
    """


@both_backends
def test_a_name_in_event_data_never_reaches_a_contact_group_or_rotation(make_daemon, tmp_path):
    write(tmp_path, "shop.yaml", SHOP_RULE)
    d = make_daemon()
    for name in ("oncall", "manager", "oncall_primary"):
        fire(d, "shop", {"customer": {"phone": name, "first_name": "URGENT: call +1-555-000-1111 re payroll"}})
    assert sent(d) == []  # nobody on the team got the shop customer's text
    (failed, *_) = rule_logs(d, "order-shipped")
    assert failed["status"] == "failed"
    assert "is not a phone number" in failed["error"]["message"], failed["error"]
    # a real customer number still works
    fire(d, "shop", {"customer": {"phone": "+1 555 123 4567", "first_name": "Ann"}})
    assert sent(d) == [("sms", "+15551234567", "Hi Ann, your order has shipped.")]


@both_backends
def test_names_written_in_the_rules_own_template_still_resolve(make_daemon, tmp_path):
    write(tmp_path, "shop.yaml", SHOP_RULE)
    d = make_daemon()
    fire(d, "sev", {"severity": "critical"})
    fire(d, "sev", {"severity": "low"})
    assert sent(d) == [("sms", PRIMARY, "Severity critical"), ("sms", SECONDARY, "Severity critical"),
                       ("sms", MANAGER, "Severity low")]


@both_backends
def test_a_rule_may_opt_in_to_names_from_event_data(make_daemon, tmp_path):
    write(tmp_path, "team.yaml", """\
        rules:
          - id: team-page
            source: {webhook: team}
            notify:
              to: "{{ event.team }}"
              to_names_from_event: true
              message: "Page for {{ event.team }}"
              action_type: sms
        """)
    d = make_daemon()
    fire(d, "team", {"team": "manager"})
    assert sent(d) == [("sms", MANAGER, "Page for manager")]


@both_backends
def test_a_file_field_in_a_multipart_webhook_is_refused_naming_it(make_daemon, tmp_path):
    write(tmp_path, "door.yaml", """\
        rules:
          - id: door
            source: {webhook: door}
            notify: {to: manager, message: "Door {{ event.state }}", action_type: sms}
        """)
    d = make_daemon()
    r = d.api.post(d.url("/hooks/door"), files={"state": ("photo.jpg", b"\xff\xd8 jpeg bytes", "image/jpeg")},
                   timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "state: a file upload; send text fields only"
    assert sent(d) == []
    ok = d.api.post(d.url("/hooks/door"), files={"state": (None, "open")}, timeout=10)  # a plain multipart field
    assert ok.status_code == 200 and sent(d) == [("sms", MANAGER, "Door open")], ok.text
