"""The heartbeat examples in rules/, run as shipped: a cron job, a backup script, Prometheus' Watchdog."""
from __future__ import annotations

import sqlite3
from datetime import timedelta

import requests

from alertd.api.auth import hash_key
from alertd.clock import FakeClock
from alertd.store import Store
from conftest import sync
from test_heartbeats import tick
from test_rule_examples import ONCALL, PRIMARY, examples, local, sent  # noqa: F401 (examples: a fixture)


def ticked_by_the_test(d):
    """Stop the daemon's heartbeat timer: the test ticks deadlines itself. Woken by a ping, the
    timer could still be in its turn when the test moves the clock, and tick first."""
    d.run(d.daemon.heartbeats.stop())
    return d


def uuid_of(d, rule_id: str) -> str:
    with sqlite3.connect(str(d.config.database)) as conn:
        return conn.execute("SELECT uuid FROM heartbeats WHERE rule_id = ?", (rule_id,)).fetchone()[0]


def test_cron_job_texts_when_an_hours_run_does_not_report_and_when_it_does(examples):
    clock = FakeClock(local(2026, 3, 10, 9, 0, 4))
    d = ticked_by_the_test(examples(clock))
    url = d.url("/ping/" + uuid_of(d, "hourly-log-rotation"))
    assert requests.get(url, timeout=10).text == "OK"       # the 09:00 run
    clock.set(local(2026, 3, 10, 10, 14, 59))
    assert tick(d) == 0                                     # the 10:00 run is late, within its 15 minutes
    clock.set(local(2026, 3, 10, 10, 15))
    assert tick(d) == 1
    assert sent(d) == [("sms", PRIMARY, "Log rotation on web1: no ping in time (last ping 1h 14m ago).",
                        False, 1, None)]
    requests.get(url, timeout=10)
    d.wait_until(lambda: len(sent(d)) == 2, what="the resolved text")
    assert sent(d, 1) == [("sms", PRIMARY, "Log rotation on web1 reported again.", False, 1, None)]


def test_backup_script_failure_calls_with_the_output_and_escalates(examples):
    clock = FakeClock(local(2026, 3, 10, 2, 0))
    d = examples(clock)
    other = Store(d.config.database)  # a ping key, as `alertd keys create --ping` stores one
    sync(other.ping_keys.create("backup-box", "pk_bac", hash_key("pk_backup-box-secret"), 0))
    other.close()
    url = d.url("/ping/pk_backup-box-secret/nightly-backup")
    rid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert requests.get(f"{url}/start?rid={rid}", timeout=10).text == "OK"
    clock.advance(timedelta(minutes=12))
    output = "dumping db1...\npg_dump: error: could not write to file: No space left on device"
    assert requests.post(f"{url}/1?rid={rid}", data=output.encode(), timeout=10).text == "OK"
    d.wait_until(lambda: sent(d), what="the call")
    [(channel, to, message, gather, _, _)] = sent(d)
    assert (channel, to, gather) == ("call", PRIMARY, True)
    assert message == "The nightly backup failed: exit status 1. Last ping 0s ago. " + output
    [log] = d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"]
    with sqlite3.connect(str(d.config.database)) as conn:
        steps = conn.execute("SELECT kind, step, state, due_at - created_at FROM followups WHERE trigger_id = ?",
                             (log["trigger_id"],)).fetchall()
    assert steps == [("escalate", 1, "pending", 600.0)]  # the secondary, 10 minutes on


def test_a_hung_backup_is_down_after_its_grace(examples):
    clock = FakeClock(local(2026, 3, 10, 2, 0))
    d = ticked_by_the_test(examples(clock))
    url = d.url("/ping/" + uuid_of(d, "nightly-backup"))
    requests.get(f"{url}/start", timeout=10)
    clock.advance(timedelta(minutes=45))
    assert tick(d) == 1
    assert sent(d)[0][2] == "The nightly backup failed: a run took longer than its grace of 45m. Last ping 45m ago."


def test_watchdog_calls_the_oncall_group_when_alertmanager_stops_sending_it(examples):
    clock = FakeClock(local(2026, 3, 10, 12, 0))
    d = ticked_by_the_test(examples(clock))
    url = d.url("/ping/" + uuid_of(d, "prometheus-watchdog"))
    watchdog = {"version": "4", "status": "firing", "receiver": "alertd-watchdog",
                "alerts": [{"status": "firing", "labels": {"alertname": "Watchdog", "severity": "none"}}]}
    for _ in range(3):  # Alertmanager re-sends it every minute
        assert requests.post(url, json=watchdog, timeout=10).text == "OK"
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(minutes=3, seconds=59))
    assert tick(d) == 0
    clock.advance(1)
    assert tick(d) == 1
    message = ("Prometheus monitoring is down: no Watchdog alert from Alertmanager for 5m. Alerts are not"
               " being sent.")
    assert sent(d) == sorted([(ch, to, message, False, 1, None) for to in ONCALL for ch in ("call", "sms")])
