"""The daemon on PostgreSQL, over real sockets: notify, health, the database going away
and coming back, several nodes on one database."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time

import asyncpg
import requests

from conftest import twilio_overrides
from test_rules_runtime import am_alert, am_payload, write
from test_ui_auth import add_user, login

AM_RULE = """\
rules:
  - id: disk
    source: {webhook: am, format: alertmanager}
    notify:
      to: manager
      message: "{{ event.status }} {{ event.labels.alertname }}"
      action_type: call
"""


def on_pg(pg_url: str, fake, **more) -> dict:
    return {"database": pg_url, **twilio_overrides(fake), **more}


def test_notify_on_postgresql_is_stored_and_reaches_the_provider(pg_url, make_daemon, fake_twilio):
    d = make_daemon(on_pg(pg_url, fake_twilio))
    r = d.notify({"to": "+15551230001", "message": "Disk full"})
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    assert call["status"] == "initiated" and call["call_sid"].startswith("CA")
    row = d.run(d.daemon.store.logs.get(call["log_id"]))
    assert (row["to_number"], row["call_sid"], row["status"]) == ("+15551230001", call["call_sid"], "initiated")
    assert [c.form["To"] for c in fake_twilio.calls] == ["+15551230001"]


def test_healthz_and_metrics_name_the_node_and_whether_it_leads(pg_url, make_daemon, fake_twilio):
    d = make_daemon(on_pg(pg_url, fake_twilio, cluster={"node_id": "web1", "lease": "5s"}))
    health = requests.get(d.url("/healthz"), timeout=10).json()
    assert (health["ok"], health["node"], health["leader"]) == (True, "web1", True)
    metrics = requests.get(d.url("/metrics"), timeout=10).text
    assert "\nalertd_leader 1.0\n" in metrics


def test_while_postgresql_is_down_notify_answers_503_in_the_envelope_and_the_node_recovers(
        pg_server, pg_url, make_daemon, fake_twilio):
    d = make_daemon(on_pg(pg_url, fake_twilio))
    assert d.notify({"to": "+15551230001", "message": "before"}).status_code == 200
    pg_server.halt()
    try:
        r = d.notify({"to": "+15551230001", "message": "while down"})
        assert r.status_code == 503 and r.json()["ok"] is False and r.json()["code"] == 503
        health = requests.get(d.url("/healthz"), timeout=10)
        assert health.status_code == 503 and "the database does not answer" in health.json()["problems"]
    finally:
        pg_server.resume()
    # back without a restart: connections the server dropped are replaced as they fail
    ok = d.wait_until(lambda: d.notify({"to": "+15551230001", "message": "after"}).status_code == 200,
                      timeout=20, what="notify to succeed again")
    assert ok and [c.form["To"] for c in fake_twilio.calls].count("+15551230001") == 2
    assert requests.get(d.url("/healthz"), timeout=10).status_code == 200


def test_killing_every_connection_mid_burst_loses_nothing_answered_ok(pg_url, make_daemon, fake_twilio):
    d = make_daemon(on_pg(pg_url, fake_twilio))

    async def kill_connections():
        conn = await asyncpg.connect(pg_url)
        try:
            return await conn.fetchval("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                       " WHERE datname = current_database() AND pid != pg_backend_pid()")
        finally:
            await conn.close()

    def one(n: int) -> requests.Response:
        return d.notify({"to": f"+1555123{n:04d}", "message": f"burst {n}"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        first = list(pool.map(one, range(0, 40)))
        killed = asyncio.run(kill_connections())
        second = list(pool.map(one, range(40, 80)))
    answers = first + second
    assert killed > 0
    assert {r.status_code for r in answers} <= {200, 503}
    assert all(r.json()["code"] == 503 for r in answers if r.status_code == 503)
    ok_ids = [r.json()["calls"][0]["log_id"] for r in answers if r.status_code == 200]
    assert len(ok_ids) >= 60  # only requests caught by the kill fail
    stored = d.run(d.daemon.store.logs.list(limit=200))
    assert set(ok_ids) <= {r["log_id"] for r in stored}  # nothing answered ok is missing


def test_a_second_node_leads_once_the_first_stops(pg_url, make_daemon, fake_twilio, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_daemon(on_pg(pg_url, fake_twilio, cluster={"node_id": "a", "lease": "2s"}), folder=tmp_path / "a")
    second = make_daemon(on_pg(pg_url, fake_twilio, cluster={"node_id": "b", "lease": "2s"}), folder=tmp_path / "b")
    assert first.daemon.cluster.leader and not second.daemon.cluster.leader
    # either node takes the API's traffic: a key made on one works on the other
    assert second.notify({"to": "+15551230001", "message": "via b"}).status_code == 200
    first.stop()  # a clean stop hands the lease over
    second.wait_until(lambda: second.daemon.cluster.leader, timeout=10, what="b to lead")
    assert requests.get(second.url("/healthz"), timeout=10).json()["leader"] is True


def test_the_same_alertmanager_payload_posted_to_three_nodes_at_once_rings_once(
        pg_url, make_daemon, fake_twilio, tmp_path):
    nodes = []
    for name in "abc":
        folder = tmp_path / name
        folder.mkdir()
        (folder / "rules").mkdir()
        write(folder, "am.yaml", AM_RULE)
        nodes.append(make_daemon(on_pg(pg_url, fake_twilio, cluster={"node_id": name}), folder=folder))
    payload = am_payload(am_alert("DiskFull", "db-1:9100", "critical", "a1b2c3d4e5f60001"))
    key = nodes[0].key  # every node reads the one database: one key is good on all

    def post(d):
        return requests.post(d.url("/hooks/am"), json=payload, headers={"Authorization": f"Bearer {key}"},
                             timeout=10)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(post, nodes))
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert sorted(len(r.json()["fired"]) for r in answers) == [0, 0, 1]
    assert [c.form["To"] for c in fake_twilio.calls] == ["+15551230001"]


def test_the_dashboards_live_log_on_one_node_shows_a_row_another_node_wrote_within_2_s(
        pg_url, make_daemon, fake_twilio, tmp_path):
    nodes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        nodes.append(make_daemon(on_pg(pg_url, fake_twilio, cluster={"node_id": name}), folder=tmp_path / name))
    a, b = nodes
    add_user(a)  # a user of the shared database: it logs in on either node
    s, _ = login(a)
    with s.get(a.url("/ui/events?after=0"), stream=True, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        log_id = b.notify({"to": "+15551230001", "message": "written by b"}).json()["calls"][0]["log_id"]
        started = time.monotonic()
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                assert msg["id"] == log_id and "written by b" in msg["html"]
                break
        assert time.monotonic() - started < 2
