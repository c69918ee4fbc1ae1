"""On-call rotations: who is on call at the shift boundaries and on the DST days,
overrides and their expiry, the resolver the rules engine uses, and the CLI. The tests
of the overrides' store and of a daemon run on SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from alertd import cli, oncall
from alertd.clock import FakeClock, SystemClock
from alertd.config import Config, Rotation
from conftest import both_backends, sync

NY = ZoneInfo("America/New_York")
UTC = timezone.utc
CONTACTS = {"manager": "+15551230001", "oncall_primary": "+15551230002", "oncall_secondary": "+15551230003"}
WEEKLY = Rotation(members=["oncall_primary", "oncall_secondary"], shift="1w", start="2026-01-05T09:00")
DAILY = Rotation(members=["a", "b", "c"], shift="1d", start="2026-01-05T09:00")
HALF_DAY = Rotation(members=["day", "night"], shift="12h", start="2026-01-05T09:00")


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def who(rot: Rotation, at: datetime, overrides=()) -> str:
    return oncall.on_call(rot, NY, at, overrides).contact


# --- the schedule ---------------------------------------------------------------------
def test_the_shift_changes_at_0900_not_at_0859():
    assert who(WEEKLY, ny(2026, 1, 5, 8, 59)) == "oncall_secondary"  # the cycle runs backwards before start
    assert who(WEEKLY, ny(2026, 1, 5, 9, 0)) == "oncall_primary"
    assert who(WEEKLY, ny(2026, 1, 12, 8, 59, 59)) == "oncall_primary"
    assert who(WEEKLY, ny(2026, 1, 12, 9, 0)) == "oncall_secondary"
    assert who(WEEKLY, ny(2026, 1, 19, 9, 0)) == "oncall_primary"


def test_members_cycle_in_order():
    assert [who(DAILY, ny(2026, 1, d, 12)) for d in range(5, 12)] == ["a", "b", "c", "a", "b", "c", "a"]


@pytest.mark.parametrize("day, before, after", [
    (8, "b", "c"),    # 2026-03-08: clocks go forward at 02:00
    (9, "c", "a"),
])
def test_a_daily_rotation_hands_over_at_0900_local_on_the_spring_dst_day(day, before, after):
    assert who(DAILY, ny(2026, 3, day, 8, 59)) == before
    assert who(DAILY, ny(2026, 3, day, 9, 0)) == after


def test_the_shift_that_contains_spring_forward_is_23_hours():
    current = oncall.on_call(DAILY, NY, ny(2026, 3, 8, 8, 0))
    assert current.since == datetime(2026, 3, 7, 14, 0, tzinfo=UTC)   # 09:00 EST
    assert current.until == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)   # 09:00 EDT
    assert current.until - current.since == timedelta(hours=23)


def test_a_daily_rotation_hands_over_at_0900_local_on_the_autumn_dst_day():
    # 2026-11-01: clocks go back at 02:00; 09:00 EST is 14:00 UTC
    assert who(DAILY, datetime(2026, 11, 1, 13, 59, tzinfo=UTC)) == who(DAILY, ny(2026, 10, 31, 12))
    assert who(DAILY, ny(2026, 11, 1, 8, 59)) != who(DAILY, ny(2026, 11, 1, 9, 0))
    current = oncall.on_call(DAILY, NY, ny(2026, 11, 1, 8, 0))
    assert current.until == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    assert current.until - current.since == timedelta(hours=25)


def test_a_weekly_rotation_keeps_its_local_handoff_across_both_dst_changes():
    assert oncall.on_call(WEEKLY, NY, ny(2026, 3, 8, 12)).until == ny(2026, 3, 9, 9, 0)
    assert who(WEEKLY, ny(2026, 3, 9, 8, 59)) != who(WEEKLY, ny(2026, 3, 9, 9, 0))
    assert oncall.on_call(WEEKLY, NY, ny(2026, 11, 1, 12)).until == ny(2026, 11, 2, 9, 0)
    assert who(WEEKLY, ny(2026, 11, 2, 8, 59)) != who(WEEKLY, ny(2026, 11, 2, 9, 0))


def test_a_12h_rotation_hands_over_at_0900_and_2100_local_through_the_dst_days():
    for day in (datetime(2026, 3, 8), datetime(2026, 11, 1)):
        y, m, d = day.year, day.month, day.day
        assert who(HALF_DAY, ny(y, m, d, 8, 59)) == "night"
        assert who(HALF_DAY, ny(y, m, d, 9, 0)) == "day"
        assert who(HALF_DAY, ny(y, m, d, 20, 59)) == "day"
        assert who(HALF_DAY, ny(y, m, d, 21, 0)) == "night"


def test_frozen_at_the_spring_boundary_the_system_clock_gives_the_right_member():
    with freeze_time("2026-03-08 12:59:59"):   # 08:59:59 EDT
        assert who(DAILY, SystemClock().now()) == "b"
    with freeze_time("2026-03-08 13:00:00"):   # 09:00 EDT
        assert who(DAILY, SystemClock().now()) == "c"


def test_start_with_an_offset_is_the_same_instant():
    rot = Rotation(members=["a", "b"], shift="1d", start="2026-01-05T14:00:00+00:00")
    assert who(rot, ny(2026, 1, 5, 8, 59)) == "b"
    assert who(rot, ny(2026, 1, 5, 9, 0)) == "a"


def test_next_handoffs_list_the_dst_change_at_local_0900():
    handoffs = oncall.next_handoffs(DAILY, NY, ny(2026, 3, 7, 12), 3)
    assert [(h.at.astimezone(NY).strftime("%m-%d %H:%M %Z"), h.contact) for h in handoffs] == [
        ("03-08 09:00 EDT", "c"), ("03-09 09:00 EDT", "a"), ("03-10 09:00 EDT", "b")]


def test_at_a_handoff_the_next_one_is_the_following_shift():
    assert oncall.next_handoffs(WEEKLY, NY, ny(2026, 1, 12, 9, 0), 1)[0].at == ny(2026, 1, 19, 9, 0)


def test_an_hourly_handoff_in_the_spring_gap_gives_no_zero_length_shift():
    rot = Rotation(members=["a", "b"], shift="1h", start="2026-03-08T00:00")
    handoffs = oncall.next_handoffs(rot, NY, ny(2026, 3, 8, 1, 30), 3)
    assert [h.at.astimezone(NY).strftime("%H:%M %Z") for h in handoffs] == ["03:00 EDT", "04:00 EDT", "05:00 EDT"]
    for h in handoffs:  # the list agrees with who is on call at each moment
        assert who(rot, h.at) == h.contact


# --- overrides ------------------------------------------------------------------------
OVERRIDE = oncall.Override("manager", ny(2026, 1, 5, 10, 0), ny(2026, 1, 5, 18, 0))


def test_an_override_is_on_call_while_it_lasts_and_not_after():
    assert who(WEEKLY, ny(2026, 1, 5, 9, 59), [OVERRIDE]) == "oncall_primary"
    current = oncall.on_call(WEEKLY, NY, ny(2026, 1, 5, 10, 0), [OVERRIDE])
    assert (current.contact, current.scheduled, current.until) == ("manager", "oncall_primary", ny(2026, 1, 5, 18))
    assert who(WEEKLY, ny(2026, 1, 5, 17, 59), [OVERRIDE]) == "manager"
    assert who(WEEKLY, ny(2026, 1, 5, 18, 0), [OVERRIDE]) == "oncall_primary"


def test_the_newest_override_wins():
    newer = oncall.Override("oncall_secondary", ny(2026, 1, 5, 12), ny(2026, 1, 5, 14))
    overrides = [newer, OVERRIDE]  # newest first, as load_overrides returns them
    assert who(WEEKLY, ny(2026, 1, 5, 13), overrides) == "oncall_secondary"
    assert who(WEEKLY, ny(2026, 1, 5, 15), overrides) == "manager"


def test_next_handoffs_show_the_end_of_an_override_and_skip_the_handoffs_under_it():
    long = oncall.Override("manager", ny(2026, 1, 5, 10), ny(2026, 1, 13, 10))
    handoffs = oncall.next_handoffs(WEEKLY, NY, ny(2026, 1, 5, 12), 2, [long])
    assert [(h.at, h.contact, h.note) for h in handoffs] == [
        (ny(2026, 1, 13, 10), "oncall_secondary", "override ends"),
        (ny(2026, 1, 19, 9), "oncall_primary", None)]


@pytest.fixture
def config() -> Config:
    return Config(timezone="America/New_York", contacts=CONTACTS, rotations={"ops": WEEKLY.model_dump()})


@pytest.fixture
def store(backend_store):
    """The overrides' store, on each backend."""
    return backend_store


def test_resolve_rotation_gives_the_on_call_number_and_honours_a_stored_override(config, store):
    now = ny(2026, 1, 5, 9, 0)
    assert sync(oncall.resolve_rotation(config, store, "ops", now)) == "+15551230002"
    sync(oncall.add_override(config, store, "ops", "manager", timedelta(hours=8), now))
    assert sync(oncall.resolve_rotation(config, store, "ops", now)) == "+15551230001"
    assert sync(oncall.resolve_rotation(config, store, "ops", now + timedelta(hours=7, minutes=59))) == "+15551230001"
    # expired: the schedule applies again
    assert sync(oncall.resolve_rotation(config, store, "ops", now + timedelta(hours=8))) == "+15551230002"


def test_an_override_of_one_rotation_leaves_the_others_alone(config, store):
    config.rotations["nights"] = Rotation(members=["oncall_secondary"], shift="1d", start="2026-01-05T21:00")
    now = ny(2026, 1, 5, 9, 0)
    sync(oncall.add_override(config, store, "ops", "manager", timedelta(hours=8), now))
    assert sync(oncall.resolve_rotation(config, store, "nights", now)) == "+15551230003"


def test_resolve_rotation_raises_key_error_for_an_unknown_rotation(config, store):
    with pytest.raises(KeyError):
        sync(oncall.resolve_rotation(config, store, "nope", ny(2026, 1, 5)))


@pytest.mark.parametrize("rotation, contact, length, error", [
    ("nope", "manager", timedelta(hours=1), "unknown rotation 'nope' (rotations: ops)"),
    ("ops", "bob", timedelta(hours=1),
     "unknown contact 'bob' (contacts: manager, oncall_primary, oncall_secondary)"),
    ("ops", "manager", timedelta(0), "--for: must be more than 0"),
])
def test_add_override_refuses_what_it_cannot_do(config, store, rotation, contact, length, error):
    with pytest.raises(oncall.OnCallError) as exc:
        sync(oncall.add_override(config, store, rotation, contact, length, ny(2026, 1, 5)))
    assert str(exc.value) == error


# --- the CLI ----------------------------------------------------------------------------
CONFIG = """\
database: alertd.db
rules: rules
timezone: America/New_York
contacts:
  manager: "+15551230001"
  oncall_primary: "+15551230002"
  oncall_secondary: "+15551230003"
rotations:
  ops:
    members: [oncall_primary, oncall_secondary]
    shift: 1w
    start: 2026-01-05T09:00
  nights:
    members: [oncall_secondary, manager]
    shift: 12h
    start: 2026-01-05T09:00:00
"""


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def alertd(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ALERTD_CONFIG"}
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_cli_prints_who_is_on_call_first_then_the_next_handoffs(config_path):
    done = alertd("oncall", "-c", str(config_path), "--at", "2026-03-08T08:59")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ops  (every 1w: oncall_primary, oncall_secondary)",
        "  on call now  oncall_primary  +15551230002  until 2026-03-09 09:00 EDT",
        "  2026-03-09 09:00 EDT  oncall_secondary  +15551230003",
        "  2026-03-16 09:00 EDT  oncall_primary  +15551230002",
        "  2026-03-23 09:00 EDT  oncall_secondary  +15551230003",
        "nights  (every 12h: oncall_secondary, manager)",
        "  on call now  manager  +15551230001  until 2026-03-08 09:00 EDT",
        "  2026-03-08 09:00 EDT  oncall_secondary  +15551230003",
        "  2026-03-08 21:00 EDT  manager  +15551230001",
        "  2026-03-09 09:00 EDT  oncall_secondary  +15551230003",
    ]


def test_cli_shows_one_rotation_by_name(config_path):
    done = alertd("oncall", "nights", "-c", str(config_path), "--at", "2026-11-01T09:00", "--next", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nights  (every 12h: oncall_secondary, manager)",
        "  on call now  oncall_secondary  +15551230003  until 2026-11-01 21:00 EST",
        "  2026-11-01 21:00 EST  manager  +15551230001",
    ]


def test_cli_uses_the_clock_when_no_time_is_given(config_path, capsys):
    with freeze_time("2026-01-12 13:59:00"):  # 08:59 EST
        assert cli.main(["oncall", "ops", "-c", str(config_path), "--next", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  on call now  oncall_primary  +15551230002  until 2026-01-12 09:00 EST"
    with freeze_time("2026-01-12 14:00:00"):  # 09:00 EST
        assert cli.main(["oncall", "ops", "-c", str(config_path), "--next", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  on call now  oncall_secondary  +15551230003  until 2026-01-19 09:00 EST"


def test_cli_override_hands_over_for_a_while(config_path):
    done = alertd("oncall", "override", "ops", "--to", "manager", "--for", "8h", "-c", str(config_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ops: manager (+15551230001) is on call until ")
    shown = alertd("oncall", "ops", "-c", str(config_path), "--next", "2")
    lines = shown.stdout.splitlines()
    assert lines[1].startswith("  on call now  manager  +15551230001  override until ")
    assert lines[1].endswith("(scheduled: " + who(WEEKLY, datetime.now(UTC)) + ")")
    assert lines[2].endswith("(override ends)")
    # eight hours later it is over
    later = (datetime.now(UTC) + timedelta(hours=8, minutes=1)).isoformat()
    after = alertd("oncall", "ops", "-c", str(config_path), "--at", later).stdout.splitlines()
    assert "manager" not in after[1]


@pytest.mark.parametrize("args, code, error", [
    (["oncall", "nope"], 1, "unknown rotation 'nope' (rotations: ops, nights)"),
    (["oncall", "override", "ops", "--to", "bob", "--for", "8h"], 1,
     "unknown contact 'bob' (contacts: manager, oncall_primary, oncall_secondary)"),
    (["oncall", "override", "ops", "--to", "manager", "--for", "soon"], 1,
     "--for: invalid duration 'soon': write it like 30s, 5m, 2h, 1d or 1w"),
    (["oncall", "override", "ops", "--to", "manager"], 2,
     "usage: alertd oncall override NAME --to CONTACT --for DURATION"),
    (["oncall", "ops", "--to", "manager"], 2,
     "--to and --for go with: alertd oncall override NAME --to CONTACT --for 8h"),
    (["oncall", "--at", "noon"], 2, "--at: not an ISO 8601 time: 'noon'"),
])
def test_cli_refusals(config_path, args, code, error):
    done = alertd(*args, "-c", str(config_path))
    assert (done.returncode, done.stderr.strip()) == (code, error)
    assert done.stdout == ""


# --- a rule whose `to` names a rotation ---------------------------------------------------------
RULE = """\
rules:
  - id: door-open
    source: {webhook: door}
    notify:
      to: [ops]
      message: Door opened
"""


@both_backends
def test_a_rule_sends_to_whoever_is_on_call_at_the_moment_of_sending(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "door.yaml").write_text(RULE)
    clock = FakeClock(ny(2026, 1, 12, 8, 59).astimezone(UTC))
    d = make_daemon({"rotations": {"ops": {"members": ["oncall_primary", "oncall_secondary"], "shift": "1w",
                                           "start": "2026-01-05T09:00"}}}, clock=clock)

    def fire() -> dict:
        r = d.api.post(d.url("/hooks/door"), json={}, timeout=10)
        assert r.status_code == 200, r.text
        (log_id,) = r.json()["log_ids"]
        return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]

    assert fire()["to"] == "+15551230002"
    clock.advance(60)  # 09:00: the handoff
    assert fire()["to"] == "+15551230003"
    d.run(oncall.add_override(d.config, d.daemon.store, "ops", "manager", timedelta(hours=8), clock.now()))
    assert fire()["to"] == "+15551230001"
    clock.advance(timedelta(hours=8))
    assert fire()["to"] == "+15551230003"
