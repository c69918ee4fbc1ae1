"""Silences: the API, the CLI, and what a silenced notification leaves in the trigger log.
The tests of a daemon or a store run on SQLite and on PostgreSQL (the ``backend`` fixture)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from alertd.dispatch import silences
from alertd.clock import FakeClock
from alertd.dispatch.notification import failed, notification
from conftest import both_backends, sync

START = datetime(2026, 1, 5, 14, 0, tzinfo=timezone.utc)  # 09:00 in the tests' America/New_York
NUMBER = "+15551234567"
OTHER = "+15557654300"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def d(make_daemon, clock, backend):
    return make_daemon({"provider": {"simulate_press": False}}, clock=clock)


def silence(d, body: dict):
    return d.api.post(d.url("/api/v1/silences"), json=body, timeout=10)


def active(d) -> list[dict]:
    r = d.api.get(d.url("/api/v1/silences"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    return r.json()["silences"]


def log_of(d, log_id: int) -> dict:
    r = d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["log"]


def sent_to(d) -> list[str]:
    return [o.to for o in d.daemon.provider.sent]


# --- the API --------------------------------------------------------------------------
@pytest.mark.parametrize("matcher, value, stored", [
    ("rule_id", "door-open", "door-open"),
    ("source", "backups", "backups"),
    ("to", "(555) 123-4567", NUMBER),   # E.164-normalised
    ("to", 5551234567, NUMBER),
])
def test_create_answers_the_id_and_the_silence_is_listed(d, matcher, value, stored):
    r = silence(d, {matcher: value, "duration": "2h", "reason": "maintenance"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["silence_id"].startswith("sil_")
    (listed,) = active(d)
    assert listed == {
        "silence_id": body["silence_id"],
        "rule_id": None, "source": None, "to": None, matcher: stored,
        "starts_at": "2026-01-05T14:00:00.000Z", "ends_at": "2026-01-05T16:00:00.000Z",
        "reason": "maintenance", "created_at": "2026-01-05T14:00:00.000Z", "created_by": "api key 1",
    }


def test_until_without_an_offset_is_in_the_config_timezone(d):
    r = silence(d, {"source": "x", "until": "2026-01-05T12:00", "reason": "lunch"})
    assert r.status_code == 200, r.text
    assert active(d)[0]["ends_at"] == "2026-01-05T17:00:00.000Z"
    r = silence(d, {"source": "y", "until": "2026-01-05T18:30:00Z", "reason": "utc"})
    assert r.json()["silence"]["ends_at"] == "2026-01-05T18:30:00.000Z"


def test_delete_ends_a_silence_and_an_unknown_one_is_404(d):
    silence_id = silence(d, {"source": "x", "duration": "1h", "reason": "r"}).json()["silence_id"]
    r = silence(d, {"action": "delete", "silence_id": silence_id})
    assert r.status_code == 200
    assert r.json() == {"ok": True, "silence_id": silence_id, "deleted": True}
    assert active(d) == []
    again = silence(d, {"action": "delete", "silence_id": silence_id})
    assert again.status_code == 404
    assert again.json() == {"ok": False, "error": f"Silence not found or already ended: {silence_id}", "code": 404}
    assert silence(d, {"action": "delete", "silence_id": "sil_nope"}).status_code == 404


VALID = {"rule_id": "door-open", "duration": "2h", "reason": "maintenance"}


def without(*keys: str, **extra) -> dict:
    return {**{k: v for k, v in VALID.items() if k not in keys}, **extra}


@pytest.mark.parametrize("body, error", [
    ({"duration": "2h", "reason": "r"}, "rule_id, source or to: one is required (what to silence)"),
    (without(to=NUMBER), "rule_id, to: give exactly one of rule_id, source or to"),
    (without(source="a", to=NUMBER), "rule_id, source, to: give exactly one of rule_id, source or to"),
    (without("duration"), "duration or until: one is required (how long to silence)"),
    (without(until="2026-01-05T18:00:00Z"), "duration, until: give either duration or until, not both"),
    (without(duration="soon"), "duration: invalid duration 'soon': write it like 30s, 5m, 2h, 1d or 1w"),
    (without(duration="0m"), "duration: must be more than 0"),
    (without(duration=-5), "duration: invalid duration -5: must not be negative"),
    (without("duration", until="tomorrow"), "until: not an ISO 8601 time: 'tomorrow'"),
    (without("duration", until="2026-01-05T13:59:59Z"),
     "until: must be in the future (it is now 2026-01-05T14:00:00.000Z)"),
    (without("duration", until="2026-01-05T14:00:00Z"),
     "until: must be in the future (it is now 2026-01-05T14:00:00.000Z)"),
    (without("rule_id", to="12"), "to: Invalid phone number format: '12'"),
    (without(rule_id=""), "rule_id: must not be empty"),
    (without(rule_id=5), "rule_id: Input should be a valid string"),
    (without("reason"), "reason: is required (say why, for whoever finds the silence later)"),
    (without(reason="   "), "reason: is required (say why, for whoever finds the silence later)"),
    (without(starts_at="2026-01-06T00:00:00Z"), "starts_at: Extra inputs are not permitted"),
    ({"action": "delete"}, "silence_id: is required"),
    ({"action": "remove", "silence_id": "sil_1"}, "action: Input should be 'delete'"),
])
def test_a_bad_body_is_400_naming_the_field(d, body, error):
    r = silence(d, body)
    assert r.status_code == 400
    assert r.json() == {"ok": False, "error": error, "code": 400}
    assert active(d) == []


def test_a_body_that_is_not_an_object_is_400(d):
    r = silence(d, ["rule_id"])
    assert (r.status_code, r.json()["error"]) == (400, "Request body must be a JSON object.")


def test_silences_need_a_key(d):
    assert d.api.get(d.url("/api/v1/silences"), headers={"Authorization": ""}, timeout=10).status_code == 401
    r = d.api.post(d.url("/api/v1/silences"), json=VALID, headers={"Authorization": ""}, timeout=10)
    assert r.status_code == 401
    assert active(d) == []


# --- what a silence holds back ------------------------------------------------------------
def test_a_silenced_recipient_is_logged_silenced_with_the_silence_id_and_not_called(d):
    silence_id = silence(d, {"to": NUMBER, "duration": "2h", "reason": "on leave"}).json()["silence_id"]
    r = d.notify({"to": [NUMBER, OTHER], "message": "Disk full", "source": "nagios"})
    assert r.status_code == 200, r.text
    calls = {c["to"]: c for c in r.json()["calls"]}
    assert r.json()["ok"] is True
    assert calls[NUMBER]["status"] == "silenced" and calls[NUMBER]["call_sid"] is None
    assert calls[OTHER]["status"] == "initiated"
    row = log_of(d, calls[NUMBER]["log_id"])
    assert (row["status"], row["silence_id"], row["source"], row["message"]) == (
        "silenced", silence_id, "nagios", "Disk full")
    assert log_of(d, calls[OTHER]["log_id"])["silence_id"] is None
    assert sent_to(d) == [OTHER]
    assert d.query("SELECT COUNT(*) FROM outbox WHERE log_id = ?", calls[NUMBER]["log_id"]) == [(0,)]


def test_a_trigger_whose_every_recipient_is_silenced_still_answers_ok(d):
    silence(d, {"source": "backups", "duration": "30m", "reason": "nightly job is noisy"})
    r = d.notify({"to": NUMBER, "message": "Backup late", "source": "backups"})
    assert r.status_code == 200, r.text
    assert [c["status"] for c in r.json()["calls"]] == ["silenced"]
    other = d.notify({"to": NUMBER, "message": "Disk full", "source": "nagios"})
    assert [c["status"] for c in other.json()["calls"]] == ["initiated"]
    assert sent_to(d) == [NUMBER]
    logs = d.api.get(d.url("/api/v1/calls/logs"), params={"source": "backups"}, timeout=10).json()["logs"]
    assert [(row["status"], row["source"]) for row in logs] == [("silenced", "backups")]


def test_an_expired_silence_no_longer_applies(d, clock):
    silence(d, {"to": NUMBER, "duration": "30m", "reason": "r"})
    clock.advance(timedelta(minutes=29, seconds=59))
    assert d.notify({"to": NUMBER, "message": "a"}).json()["calls"][0]["status"] == "silenced"
    clock.advance(1)
    assert active(d) == []
    assert d.notify({"to": NUMBER, "message": "b"}).json()["calls"][0]["status"] == "initiated"


def test_a_removed_silence_no_longer_applies(d):
    silence_id = silence(d, {"to": NUMBER, "duration": "1h", "reason": "r"}).json()["silence_id"]
    silence(d, {"action": "delete", "silence_id": silence_id})
    assert d.notify({"to": NUMBER, "message": "b"}).json()["calls"][0]["status"] == "initiated"


DOOR = """\
rules:
  - id: door-open
    source: {webhook: door}
    notify:
      to: [manager, oncall_primary]
      message: Door opened
  - id: door-log
    source: {webhook: door}
    notify:
      to: [manager]
      action_type: sms
      message: Door event
"""


@both_backends
def test_a_silence_by_rule_id_holds_back_that_rules_notifications_from_a_webhook(make_daemon, tmp_path, clock):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "door.yaml").write_text(DOOR)
    d = make_daemon({"provider": {"simulate_press": False}}, clock=clock)
    silence_id = silence(d, {"rule_id": "door-open", "duration": "1h", "reason": "door sensor repair"}
                         ).json()["silence_id"]
    r = d.api.post(d.url("/hooks/door"), json={}, timeout=10)
    assert r.status_code == 200, r.text
    rows = [log_of(d, log_id) for log_id in r.json()["log_ids"]]
    by_rule = {}
    for row in rows:
        by_rule.setdefault(row["rule_id"], []).append((row["to"], row["status"], row["silence_id"]))
    assert by_rule == {
        "door-open": [("+15551230001", "silenced", silence_id), ("+15551230002", "silenced", silence_id)],
        "door-log": [("+15551230001", "initiated", None)],
    }
    assert sent_to(d) == ["+15551230001"]


# --- match() and hold_back() on their own ----------------------------------------------------
@pytest.fixture
def store(backend_store):
    return backend_store


def make(store, **fields) -> str:
    from zoneinfo import ZoneInfo
    return sync(silences.create(store, now=START, tz=ZoneInfo("America/New_York"), reason="r", **fields)).silence_id


def test_each_matcher_is_compared_with_its_own_field(store):
    by_rule = make(store, rule_id="door-open", duration="1h")
    by_source = make(store, source="nagios", duration="1h")
    by_to = make(store, to=NUMBER, duration="1h")

    def m(*, source=None, rule_id=None, to=OTHER, now=START):
        """The silence that holds back a notification to ``to`` of such a trigger, or None."""
        row = notification(to, "call", "x")
        sync(silences.hold_back(store, {"source": source, "rule_id": rule_id}, [row], now.timestamp()))
        assert row.status == ("silenced" if row.silence_id else "queued")
        return row.silence_id

    assert m(rule_id="door-open") == by_rule
    assert m(source="door-open") is None          # a rule id is not a source
    assert m(source="nagios") == by_source
    assert m(to="(555) 123-4567") == by_to         # compared in E.164
    assert m(to=OTHER, source="other", rule_id="other") is None
    assert m(to=NUMBER, now=START + timedelta(hours=1)) is None   # over at ends_at


def test_a_deferred_row_is_matched_at_its_send_time(store):
    make(store, to=NUMBER, duration="1h")
    now = START.timestamp()
    rows = [notification(NUMBER, "call", "x", send_at=now + 1800), notification(NUMBER, "call", "x", send_at=now + 7200),
            failed("broken", to=NUMBER)]
    assert sync(silences.hold_back(store, {"source": None}, rows, now)) == 1
    assert [r.status for r in rows] == ["silenced", "queued", "failed"]


# --- the CLI --------------------------------------------------------------------------------------
def alertd(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ALERTD_CONFIG"}
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True, text=True, timeout=60,
                          env=env)


@both_backends
def test_cli_add_list_remove(make_daemon):
    d = make_daemon()  # the real clock: the CLI reads it too
    cfg = str(d.config_path)
    added = alertd("silence", "add", "--to", "555-123-4567", "--duration", "2h", "--reason", "on leave", "-c", cfg)
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    assert silence_id.startswith("sil_")
    listed = alertd("silence", "list", "-c", cfg)
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "MATCHES", "UNTIL", "BY", "REASON"]
    assert row.split()[:2] == [silence_id, f"to={NUMBER}"] and row.endswith("cli        on leave")
    # the running daemon honours it at once
    r = d.notify({"to": NUMBER, "message": "hi"})
    assert r.json()["calls"][0]["status"] == "silenced"
    assert log_of(d, r.json()["calls"][0]["log_id"])["silence_id"] == silence_id
    removed = alertd("silence", "remove", silence_id, "-c", cfg)
    assert (removed.returncode, removed.stdout.strip()) == (0, f"removed silence {silence_id}")
    assert alertd("silence", "list", "-c", cfg).stdout.splitlines()[1:] == []
    assert d.notify({"to": NUMBER, "message": "hi"}).json()["calls"][0]["status"] == "initiated"


@pytest.mark.parametrize("args, code, error", [
    (["add", "--rule-id", "r", "--duration", "soon", "--reason", "x"], 1,
     "duration: invalid duration 'soon': write it like 30s, 5m, 2h, 1d or 1w"),
    (["add", "--rule-id", "r", "--until", "2020-01-01T00:00", "--reason", "x"], 1, "until: must be in the future"),
    (["add", "--to", "12", "--duration", "1h", "--reason", "x"], 1, "to: Invalid phone number format: '12'"),
    (["add", "--rule-id", "r", "--source", "s", "--duration", "1h", "--reason", "x"], 2,
     "argument --source: not allowed with argument --rule-id"),
    (["add", "--rule-id", "r", "--reason", "x"], 2, "one of the arguments --duration --until is required"),
    (["add", "--rule-id", "r", "--duration", "1h"], 2, "the following arguments are required: --reason"),
    (["remove", "sil_nope"], 1, "no silence in force with id sil_nope"),
])
def test_cli_refusals(tmp_path, args, code, error):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("database: alertd.db\nrules: rules\n")
    done = alertd("silence", *args, "-c", str(cfg))
    assert done.returncode == code
    assert error in done.stderr
    assert done.stdout == ""


# --- the maximum: a silence ends within MAX_SILENCE --------------------------------------------
@pytest.mark.parametrize("body, error", [
    ({"until": "9999-12-31T23:59:59"}, "until: at most 365 days from now"),
    ({"duration": "3000000d"}, "duration: at most 365 days"),
    ({"duration": "366d"}, "duration: at most 365 days"),
    ({"duration": 10**12}, "duration: at most 365 days"),
    ({"until": "2027-01-06T09:00"}, "until: at most 365 days from now"),
])
def test_a_silence_past_the_maximum_is_refused_naming_the_field_and_nothing_is_stored(d, body, error):
    r = silence(d, {"rule_id": "door", "reason": "forever", **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(error), r.json()
    assert d.query("SELECT COUNT(*) FROM silences") == [(0,)]
    assert active(d) == []


def test_a_silence_of_exactly_the_maximum_is_made(d):
    r = silence(d, {"rule_id": "door", "reason": "a long one", "duration": "365d"})
    assert r.status_code == 200, r.text
    assert r.json()["silence"]["ends_at"] == "2027-01-05T14:00:00.000Z"


@both_backends
def test_listings_never_crash_on_a_stored_silence_past_year_9999(make_daemon):
    from test_ui_auth import add_user, csrf_of, login

    d = make_daemon()  # the real clock: the CLI reads it too
    now = datetime.now(timezone.utc).timestamp()
    # what an older alertd stored for until: 9999-12-31T23:59:59 in New York (past year 9999 in UTC)
    d.run(d.daemon.store.silences.add("sil_000000000001", "rule_id", "door", now, 253402318799.0, "old", now,
                                      "cli"))
    listed = active(d)
    assert [s["silence_id"] for s in listed] == ["sil_000000000001"]
    assert listed[0]["ends_at"].startswith("9999-12-30T23:59:59")  # the latest time shown
    add_user(d)
    s, r = login(d)
    page = s.get(d.url("/ui/silences"), timeout=5)
    assert page.status_code == 200 and "sil_000000000001" in page.text, page.text[:500]
    cli = alertd("silence", "list", "-c", str(d.config_path))
    assert cli.returncode == 0, cli.stderr
    assert "sil_000000000001" in cli.stdout
