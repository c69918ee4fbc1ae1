"""Heartbeats in a running daemon: pings over real HTTP (GET, HEAD, POST), deadlines under
a FakeClock (the timer is ticked on the daemon's loop, nothing sleeps on a deadline),
notifications through the rules' path, the restart case, pause, ping keys and slugs.
Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from alertd.clock import FakeClock
from alertd.store.sqlite.heartbeats import KEEP_PINGS
from conftest import both_backends

pytestmark = both_backends

UUID = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"
PRIMARY, SECONDARY = "+15551230002", "+15551230003"
T0 = datetime(2026, 3, 10, 14, 0, tzinfo=timezone.utc)
RULE = f"""
rules:
  - id: nightly-backup
    source:
      heartbeat:
        uuid: {UUID}
        slug: nightly-backup
        every: 1h
        grace: 10m
    notify:
      to: oncall_primary
      action_type: sms
      message: >-
        {{% if resolved %}}Backup is back.{{% else %}}Backup did not report: {{{{ event.reason }}}}.
        Last ping {{{{ event.last_ping_ago }}}} ago. {{{{ event.body }}}}{{% endif %}}
    notify_resolved: true
"""


def write_rules(folder: Path, text: str = RULE, name: str = "backup.yaml") -> None:
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / name).write_text(textwrap.dedent(text))


def start(make_daemon, folder: Path, clock: FakeClock, text: str = RULE, timer: bool = True):
    """A daemon with the rules of ``text``. ``timer=False``: its heartbeat timer stopped, for a
    test that ticks deadlines itself; the timer, woken by a ping, could still be in its turn
    when the test moves the clock and tick first (on PostgreSQL a turn awaits the database)."""
    write_rules(folder, text)
    d = make_daemon(clock=clock, folder=folder)
    if not timer:
        d.run(d.daemon.heartbeats.stop())
    return d


def ping(d, path: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, d.url("/ping/" + path), timeout=10, **kwargs)


def tick(d) -> int:
    """The timer's work, on the daemon's loop: apply passed deadlines, send what is owed."""
    async def run():
        flips = await d.daemon.heartbeats.tick()
        await d.daemon.heartbeats.send_owed()
        return flips
    return d.run(run())


def texts(d) -> list[str]:
    return [o.message for o in d.daemon.provider.sent if o.channel == "sms"]


def hb_table(d, method: str, *args):
    """A read of the running daemon's heartbeat tables, on its loop: its connection is the loop's."""
    return d.run(getattr(d.daemon.store.heartbeats, method)(*args))


def check(d, name: str = "nightly-backup"):
    return hb_table(d, "get", name)


def pings(d, name: str = "nightly-backup"):
    return list(reversed(hb_table(d, "recent_pings", name, 1000)))


def flips_of(d, name: str = "nightly-backup"):
    return hb_table(d, "flips", name, 0)[1]


# --- the ping API ------------------------------------------------------------------
def test_get_head_and_post_answer_ok_as_healthchecks_does(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    for method in ("GET", "HEAD", "POST"):
        resp = ping(d, UUID, method, data=b"done" if method == "POST" else None)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        assert resp.text == ("" if method == "HEAD" else "OK")
    assert [(p["method"], p["kind"], p["body"]) for p in pings(d)] == [
        ("GET", "success", None), ("HEAD", "success", None), ("POST", "success", "done")]
    assert check(d)["status"] == "up" and check(d)["n_pings"] == 3


def test_uppercase_uuid_reaches_the_same_check(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    assert ping(d, UUID.upper()).text == "OK"


def test_unknown_uuid_and_malformed_paths_are_404_not_found(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    for path in ("11111111-2222-3333-4444-555555555555", f"{UUID}/sart", f"{UUID}/256", f"{UUID}/-1",
                 f"{UUID}/start/extra", "not-a-uuid", "", "a/b/c/d"):
        resp = ping(d, path)
        assert (resp.status_code, resp.text) == (404, "not found"), path
    assert ping(d, f"{UUID}?rid=nope").status_code == 400
    assert check(d)["n_pings"] == 0


def test_no_api_key_is_needed_and_the_uuid_never_reaches_the_log(make_daemon, tmp_path, structlog_output):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    assert requests.get(d.url(f"/ping/{UUID}/start"), timeout=10).text == "OK"  # no Authorization header
    # the request line is written after the answer is sent
    d.wait_until(lambda: '"/ping/…"' in structlog_output.getvalue(), what="the request line")
    assert UUID not in structlog_output.getvalue()


def test_post_body_is_kept_up_to_100_kb(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    resp = ping(d, f"{UUID}/log", "POST", data=b"x" * 300_000)
    assert resp.status_code == 200 and resp.headers["ping-body-limit"] == "100000"
    assert len(pings(d)[-1]["body"]) == 100_000 and check(d)["status"] == "new"  # a log changes no state
    big = ping(d, UUID, "POST", data=b"y" * (d.config.server.max_body_bytes + 1))  # over the server's limit
    assert big.status_code == 200 and pings(d)[-1]["body"] is None and check(d)["status"] == "up"


def test_pings_of_a_busy_check_are_bounded_and_counted(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    with requests.Session() as s:
        for i in range(KEEP_PINGS + 30):
            assert s.get(d.url(f"/ping/{UUID}" + ("/log" if i % 3 == 0 else "")), timeout=10).status_code == 200
    kept = pings(d)
    assert len(kept) == KEEP_PINGS and kept[-1]["n"] == KEEP_PINGS + 30
    row = check(d)
    assert (row["n_pings"], row["n_log"], row["n_success"]) == (130, 44, 86)


# --- states, flips and notifications -------------------------------------------------
def test_no_ping_in_time_notifies_once_and_back_up_notifies_resolved(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock, timer=False)
    assert ping(d, UUID).text == "OK"
    assert check(d)["down_at"] == (T0 + timedelta(minutes=70)).timestamp()
    clock.advance(timedelta(minutes=69, seconds=59))
    assert tick(d) == 0 and texts(d) == []
    clock.advance(1)
    assert tick(d) == 1
    assert texts(d) == ["Backup did not report: no ping in time. Last ping 1h 10m ago."]
    assert check(d)["status"] == "down"
    clock.advance(timedelta(hours=5))
    assert tick(d) == 0 and len(texts(d)) == 1  # down stays down: one notification, not one per period
    ping(d, UUID)
    d.wait_until(lambda: len(texts(d)) == 2, what="the resolved notice")
    assert texts(d)[-1] == "Backup is back."
    flips = [(f["old"], f["new"], f["reason"]) for f in flips_of(d)]
    assert flips == [("new", "up", "pinged"), ("up", "down", "no ping in time"), ("down", "up", "pinged")]
    logs = d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"]
    assert {r["rule_id"] for r in logs} == {"nightly-backup"} and len(logs) == 2


def test_the_running_timer_notices_a_passed_deadline_by_itself(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock)
    ping(d, UUID)
    clock.advance(timedelta(minutes=71))
    d.daemon.loop.call_soon_threadsafe(d.daemon.heartbeats.poke)  # the timer slept on the real clock
    d.wait_until(lambda: texts(d), what="the timer's notification")


def test_fail_with_a_body_puts_the_output_in_the_message(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    ping(d, UUID)
    out = "pg_dump: error: connection to server failed\n"
    assert ping(d, f"{UUID}/fail", "POST", data=out.encode()).text == "OK"
    d.wait_until(lambda: texts(d), what="the failure notice")
    assert texts(d) == [f"Backup did not report: it signalled failure. Last ping 0s ago. {out.strip()}"]


def test_non_zero_exit_status_is_a_failure_and_zero_a_success(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    ping(d, f"{UUID}/0")
    assert check(d)["status"] == "up"
    ping(d, f"{UUID}/3", "POST", data=b"tar: disk full")
    d.wait_until(lambda: texts(d), what="the failure notice")
    assert texts(d)[0].startswith("Backup did not report: exit status 3.") and texts(d)[0].endswith("tar: disk full")
    assert [(p["kind"], p["exit_status"]) for p in pings(d)] == [("success", 0), ("fail", 3)]


def test_rid_times_two_overlapping_runs_apart(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock)
    a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    ping(d, f"{UUID}/start?rid={a}")
    clock.advance(30)
    ping(d, f"{UUID}/start?rid={b}")
    clock.advance(60)
    ping(d, f"{UUID}?rid={a}")      # a ends after 90 s
    clock.advance(200)
    ping(d, f"{UUID}/0?rid={b}")    # b ends after 260 s
    assert [(p["kind"], p["rid"], p["duration"]) for p in pings(d)] == [
        ("start", a, None), ("start", b, None), ("success", a, 90.0), ("success", b, 260.0)]
    assert check(d)["runs"] == "[]"


def test_a_run_longer_than_grace_goes_down(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock, timer=False)
    ping(d, UUID)
    clock.advance(60)
    ping(d, f"{UUID}/start")
    assert check(d)["down_at"] == (T0 + timedelta(minutes=11)).timestamp()
    clock.advance(timedelta(minutes=10))
    assert tick(d) == 1
    assert texts(d)[0].startswith("Backup did not report: a run took longer than its grace of 10m.")


def test_a_deadline_missed_while_stopped_is_noticed_once_at_start(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock)
    ping(d, UUID)
    d.stop()
    clock.advance(timedelta(days=3))  # 72 periods missed while alertd was stopped
    d2 = make_daemon(clock=clock, folder=tmp_path)
    d2.wait_until(lambda: texts(d2), what="the notice at start")  # the timer ticks once as it starts
    assert tick(d2) == 0
    assert texts(d2) == ["Backup did not report: no ping in time. Last ping 3d 0h ago."]
    flips = flips_of(d2)
    assert [f["new"] for f in flips] == ["up", "down"]
    assert flips[-1]["at"] == (T0 + timedelta(minutes=70)).timestamp()  # dated when it went down


def test_a_notification_owed_at_a_stop_is_sent_at_the_next_start(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock)
    ping(d, UUID)
    d.run(d.daemon.heartbeats.stop())  # the test's tick is the one (start's timer=False says why)
    clock.advance(timedelta(hours=2))
    d.run(_tick_only(d))  # the flip is stored, then alertd stops before notifying
    d.stop()
    d2 = make_daemon(clock=clock, folder=tmp_path)
    d2.wait_until(lambda: texts(d2) and not hb_table(d2, "owed_flips"), what="the owed notice")
    assert len(texts(d2)) == 1


def test_a_poke_while_the_timer_awaits_the_database_is_not_lost(make_daemon, tmp_path):
    """A ping with a sooner deadline (or a pause) pokes the timer. A poke that comes while
    its turn awaits the database (every query does, on PostgreSQL) starts the next turn at
    once, not after MAX_WAIT."""
    d = start(make_daemon, tmp_path, FakeClock(T0))
    table = d.daemon.heartbeats.store.heartbeats
    original = table.next_due
    turns = []

    async def next_due_with_a_poke_meanwhile():
        turns.append(time.monotonic())
        if len(turns) == 1:
            d.daemon.heartbeats.poke()
            await asyncio.sleep(0)
        return await original()

    async def patch():
        table.next_due = next_due_with_a_poke_meanwhile
        d.daemon.heartbeats.poke()
    d.run(patch())
    d.wait_until(lambda: len(turns) >= 2, timeout=3, what="the turn the poke asked for")
    assert turns[1] - turns[0] < 1


@pytest.mark.parametrize("attempt", range(4))
def test_stop_ends_the_timer_right_after_a_ping(make_daemon, tmp_path, attempt):
    """The ping pokes the timer into a turn; a stop at that moment ends it all the same
    (a cancellation the timer's wait or the database driver swallowed left it running)."""
    d = start(make_daemon, tmp_path, FakeClock(T0))
    assert ping(d, UUID).text == "OK"
    d.run(d.daemon.heartbeats.stop(), timeout=3)


async def _tick_only(d):
    return await d.daemon.heartbeats.tick()


def test_the_generated_uuid_survives_a_restart_and_a_reload(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock, RULE.replace(f"uuid: {UUID}", ""))
    made = check(d)["uuid"]
    assert len(made) == 36 and made != UUID and ping(d, made).text == "OK"
    write_rules(tmp_path, RULE.replace(f"uuid: {UUID}", "").replace("every: 1h", "every: 2h"))
    assert d.run(_reload(d)) is True
    assert check(d)["uuid"] == made and check(d)["down_at"] == (T0 + timedelta(hours=2, minutes=10)).timestamp()
    d.stop()
    d2 = make_daemon(clock=clock, folder=tmp_path)
    assert check(d2)["uuid"] == made and ping(d2, made).text == "OK"


async def _reload(d) -> bool:
    done = d.daemon.rules.reload()
    await d.daemon.heartbeats.syncing  # the rows follow the new rules on the loop
    return done


def test_silences_hold_a_heartbeat_back_as_any_rule(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock)
    resp = d.api.post(d.url("/api/v1/silences"), json={"rule_id": "nightly-backup", "duration": "1d",
                                                         "reason": "moving the backup disk"}, timeout=10)
    assert resp.status_code == 200, resp.text
    ping(d, f"{UUID}/fail")
    d.wait_until(lambda: d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"], what="the log row")
    assert texts(d) == []
    assert d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"][0]["status"] == "silenced"


def test_escalation_applies_to_a_heartbeat(make_daemon, tmp_path):
    text = RULE.replace("    notify_resolved: true",
                        "      escalate:\n        - after: 5m\n          to: oncall_secondary\n    notify_resolved: true")
    d = start(make_daemon, tmp_path, FakeClock(T0), text)
    ping(d, f"{UUID}/fail")
    d.wait_until(lambda: texts(d), what="the failure notice")
    log = d.api.get(d.url("/api/v1/calls/logs"), timeout=10).json()["logs"][0]
    steps = d.run(d.daemon.store.followups.of_trigger(log["trigger_id"]))
    assert [(s["kind"], s["step"], s["state"]) for s in steps] == [("escalate", 1, "pending")]


# --- pause and resume ----------------------------------------------------------------------
def cli(d, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertd", *args, "-c", str(d.config_path)],
                          capture_output=True, text=True, timeout=60)


def test_pause_holds_notifications_and_the_next_success_resumes(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock, timer=False)
    ping(d, UUID)
    done = cli(d, "heartbeats", "pause", "nightly-backup")
    assert done.returncode == 0, done.stderr
    assert check(d)["status"] == "paused" and check(d)["down_at"] is None
    ping(d, f"{UUID}/fail")
    clock.advance(timedelta(days=1))
    assert tick(d) == 0 and texts(d) == []
    assert [p["kind"] for p in pings(d)] == ["success", "fail"]  # recorded all the same
    ping(d, UUID)
    assert check(d)["status"] == "up"


def test_resume_restarts_the_period_from_now(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock)
    ping(d, UUID)
    assert cli(d, "heartbeats", "pause", "nightly-backup").returncode == 0
    assert cli(d, "heartbeats", "resume", "nightly-backup").returncode == 0
    row = check(d)
    assert row["status"] == "up" and row["down_at"] > (T0 + timedelta(minutes=70)).timestamp()
    done = cli(d, "heartbeats", "pause", "no-such-check")
    assert done.returncode == 1 and "no heartbeat 'no-such-check'" in done.stderr


# --- ping keys and slugs -------------------------------------------------------------------
def test_ping_key_and_slug_reach_the_check_and_a_revoked_key_does_not(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    made = cli(d, "keys", "create", "--ping", "--name", "cron-box")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    # stored as its hash only (read through the daemon's own connection: another one to the
    # SQLite file would drop the daemon's POSIX locks on it when it closes)
    stored = d.query("SELECT * FROM ping_keys")
    assert key.startswith("pk_") and key not in repr(stored)
    assert hashlib.sha256(key.encode()).hexdigest() in repr(stored)
    assert ping(d, f"{key}/nightly-backup").text == "OK"
    assert ping(d, f"{key}/nightly-backup/start").text == "OK"
    assert ping(d, f"{key}/nightly-backup/1").text == "OK"
    assert (ping(d, f"{key}/no-such-slug").status_code, ping(d, "pk_wrong/nightly-backup").status_code) == (404, 404)
    assert [p["kind"] for p in pings(d)] == ["success", "start", "fail"]
    listed = cli(d, "keys", "list")
    assert "cron-box" in listed.stdout and "ping" in listed.stdout and key not in listed.stdout
    key_id = next(r["id"] for r in d.run(d.daemon.store.ping_keys.list()))
    assert cli(d, "keys", "revoke", "--ping", str(key_id)).returncode == 0
    assert ping(d, f"{key}/nightly-backup").status_code == 404


def test_a_healthchecks_ping_key_can_be_brought_along(make_daemon, tmp_path):
    d = start(make_daemon, tmp_path, FakeClock(T0))
    hc_key = "aBcDeFgHiJkLmNoPqRsTuV"
    done = subprocess.run([sys.executable, "-m", "alertd", "keys", "create", "--ping", "--name", "from-hc",
                           "--stdin", "-c", str(d.config_path)], input=hc_key + "\n", capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert hc_key not in done.stdout + done.stderr
    assert ping(d, f"{hc_key}/nightly-backup").text == "OK"


# --- listing ---------------------------------------------------------------------------------
def test_api_lists_heartbeats_with_state_deadline_and_ping_url(make_daemon, tmp_path):
    clock = FakeClock(T0)
    d = start(make_daemon, tmp_path, clock)
    ping(d, UUID)
    clock.advance(timedelta(minutes=61))
    assert requests.get(d.url("/api/v1/heartbeats"), timeout=10).status_code == 401
    body = d.api.get(d.url("/api/v1/heartbeats"), timeout=10).json()
    [hb] = body["heartbeats"]
    assert hb["name"] == "nightly-backup" and hb["state"] == "late" and hb["status"] == "up"
    assert hb["ping_url"] == d.url(f"/ping/{UUID}") and hb["slug"] == "nightly-backup"
    assert hb["last_ping_at"] == "2026-03-10T14:00:00.000Z" and hb["next_deadline"] == "2026-03-10T15:10:00.000Z"
    assert hb["pings"]["total"] == 1 and (hb["every"], hb["grace"], hb["cron"]) == ("1h", "10m", None)


def test_cli_lists_each_check(make_daemon, tmp_path):
    now = datetime.now(timezone.utc)  # the command reads the system clock
    d = start(make_daemon, tmp_path, FakeClock(now))
    ping(d, UUID)
    done = cli(d, "heartbeats")
    assert done.returncode == 0, done.stderr
    line = next(row for row in done.stdout.splitlines() if row.startswith("nightly-backup"))
    assert line.split()[1] == "up" and f"/ping/{UUID}" in line and now.strftime("%Y-%m-%dT%H:%M") in line


def test_many_deadlines_missed_while_stopped_are_each_noticed_once_in_batches(make_daemon, tmp_path, monkeypatch):
    from alertd.dispatch import heartbeats as notices
    from alertd.sources import heartbeat as source
    monkeypatch.setattr(source, "BATCH", 2)  # 5 due at start: three turns of the timer
    monkeypatch.setattr(notices, "OWED_BATCH", 1)  # and the notifications owed read one at a time
    clock = FakeClock(T0)
    text = "rules:\n" + "".join(
        f"  - id: job-{i}\n    source: {{heartbeat: {{every: 1m, grace: 1m}}}}\n"
        f"    notify: {{to: oncall_primary, action_type: sms, message: 'job-{i} {{{{ event.reason }}}}'}}\n"
        for i in range(5))
    d = start(make_daemon, tmp_path, clock, text)
    uuids = [u for (u,) in d.query("SELECT uuid FROM heartbeats ORDER BY rule_id")]
    for u in uuids:
        ping(d, u)
    d.stop()
    clock.advance(timedelta(hours=1))
    d2 = make_daemon(clock=clock, folder=tmp_path)
    d2.wait_until(lambda: len(texts(d2)) == 5, what="five notices")
    assert sorted(texts(d2)) == [f"job-{i} no ping in time" for i in range(5)]
    assert tick(d2) == 0
