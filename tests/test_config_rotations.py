"""rotations: in config.yaml: accepted forms of start, and errors naming file:line."""
from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from alertd import cli, config as config_mod
from alertd.config import Config

HEAD = """\
timezone: America/New_York
contacts:
  alice: "+15551230001"
  bob: "+15551230002"
groups:
  team: [alice, bob]
rotations:
"""


def load(tmp_path, rotations: str):
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(rotations), "  "))
    return config_mod.load(path)[0]


def problems(tmp_path, rotations: str) -> list[str]:
    with pytest.raises(config_mod.ConfigError) as exc:
        load(tmp_path, rotations)
    return [p.replace(str(tmp_path) + "/", "") for p in exc.value.problems]


@pytest.mark.parametrize("start, expected", [
    ("2026-01-05T09:00", datetime(2026, 1, 5, 9, 0)),            # YAML: a string (no seconds)
    ('"2026-01-05T09:00"', datetime(2026, 1, 5, 9, 0)),          # quoted
    ("2026-01-05T09:00:00", datetime(2026, 1, 5, 9, 0)),         # YAML: a datetime object
    ("2026-01-05 09:00:00", datetime(2026, 1, 5, 9, 0)),         # YAML: a datetime object, space form
    ("2026-01-05", datetime(2026, 1, 5, 0, 0)),                  # YAML: a date: midnight
    ('"2026-01-05T14:00Z"', datetime(2026, 1, 5, 14, 0, tzinfo=timezone.utc)),  # an explicit offset is kept
])
def test_start_is_read_from_a_string_a_datetime_or_a_date(tmp_path, start, expected):
    cfg = load(tmp_path, f"""\
        ops:
          members: [alice, bob]
          shift: 1w
          start: {start}
        """)
    rot = cfg.rotations["ops"]
    assert rot.start == expected
    assert rot.shift == timedelta(weeks=1)
    assert rot.members == ["alice", "bob"]


@pytest.mark.parametrize("shift, expected", [("1w", timedelta(weeks=1)), ("1d", timedelta(days=1)),
                                             ("12h", timedelta(hours=12)), ("8h", timedelta(hours=8))])
def test_shift_is_a_duration(tmp_path, shift, expected):
    cfg = load(tmp_path, f"""\
        ops: {{members: [alice], shift: {shift}, start: 2026-01-05T09:00}}
        """)
    assert cfg.rotations["ops"].shift == expected


def test_no_rotations_is_an_empty_mapping(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("contacts: {alice: '+15551230001'}\n")
    assert config_mod.load(path)[0].rotations == {}


BROKEN = [
    pytest.param("""\
        alice:
          members: [bob]
          shift: 1d
          start: 2026-01-05T09:00
        """,
        ["config.yaml:8: rotations.alice: 'alice' is already a contact;"
         " contact, group and rotation names share one namespace"], id="clash-with-contact"),
    pytest.param("""\
        ops:
          members: [alice]
          shift: 1d
          start: 2026-01-05T09:00
        team:
          members: [bob]
          shift: 1d
          start: 2026-01-05T09:00
        """,
        ["config.yaml:12: rotations.team: 'team' is already a group;"
         " contact, group and rotation names share one namespace"], id="clash-with-group"),
    pytest.param("""\
        ops:
          members:
            - alice
            - carol
          shift: 1d
          start: 2026-01-05T09:00
        """,
        ["config.yaml:11: rotations.ops.members[1]: unknown contact 'carol'"], id="unknown-member"),
    pytest.param("""\
        ops:
          members: []
          shift: 1d
          start: 2026-01-05T09:00
        """,
        ["config.yaml:9: rotations.ops.members: List should have at least 1 item after validation, not 0"],
        id="no-members"),
    pytest.param("""\
        ops:
          members: [alice]
          shift: weekly
          start: 2026-01-05T09:00
        """,
        ["config.yaml:10: rotations.ops.shift: invalid duration 'weekly': write it like 30s, 5m, 2h, 1d or 1w"],
        id="shift-not-a-duration"),
    pytest.param("""\
        ops:
          members: [alice]
          shift: 0s
          start: 2026-01-05T09:00
        """,
        ["config.yaml:10: rotations.ops.shift: must be at least 1m (write it like 12h, 1d or 1w)"],
        id="shift-zero"),
    pytest.param("""\
        ops:
          members: [alice]
          shift: 1d
          start: next monday
        """,
        ["config.yaml:11: rotations.ops.start: 'next monday' is not a date-time like 2026-01-05T09:00"],
        id="start-not-a-time"),
    pytest.param("""\
        ops:
          members: [alice]
          shift: 1d
        """,
        ["config.yaml:8: rotations.ops.start: Field required"], id="start-missing"),
    pytest.param("""\
        ops:
          members: [alice]
          shift: 1d
          start: 2026-01-05T09:00
          handoff: 09:00
        """,
        ["config.yaml:12: unknown key 'handoff' in rotations.ops"], id="unknown-key"),
]


@pytest.mark.parametrize("rotations, expected", BROKEN)
def test_a_broken_rotation_is_an_error_naming_file_and_line(tmp_path, rotations, expected):
    assert problems(tmp_path, rotations) == expected


def test_every_name_problem_is_reported_at_once(tmp_path):
    assert problems(tmp_path, """\
        alice: {members: [nobody], shift: 1d, start: 2026-01-05T09:00}
        team: {members: [alice], shift: 1d, start: 2026-01-05T09:00}
        """) == [
        "config.yaml:8: rotations.alice: 'alice' is already a contact; contact, group and rotation names share one namespace",
        "config.yaml:8: rotations.alice.members[0]: unknown contact 'nobody'",
        "config.yaml:9: rotations.team: 'team' is already a group; contact, group and rotation names share one namespace",
    ]


def test_a_config_built_in_code_refuses_a_clash_too():
    with pytest.raises(ValueError, match="'alice' is already a contact"):
        Config(contacts={"alice": "+15551230001"},
               rotations={"alice": {"members": ["alice"], "shift": "1d", "start": "2026-01-05T09:00"}})


def test_alertd_check_accepts_a_rule_that_names_a_rotation(tmp_path):
    cfg = load(tmp_path, """\
        ops: {members: [alice, bob], shift: 1w, start: 2026-01-05T09:00}
        """)
    cfg.rules = tmp_path / "rules"
    cfg.rules.mkdir()
    (cfg.rules / "door.yaml").write_text(textwrap.dedent("""\
        rules:
          - id: door-open
            source: {webhook: door}
            notify:
              to: [ops]
              message: Door opened
        """))
    assert cli.check_rules(cfg) == []
    (cfg.rules / "door.yaml").write_text((cfg.rules / "door.yaml").read_text().replace("[ops]", "[opz]"))
    assert len(cli.check_rules(cfg)) == 1
