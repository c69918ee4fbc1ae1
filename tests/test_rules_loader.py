"""Loading rule files: what loads, and the exact error line for what does not."""
from __future__ import annotations

import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest

from alertd.rules import load_rules

CONTACTS = {"manager": "+15551230001", "owner": "+15551230002", "oncall_secondary": "+15551230003"}
GROUPS = {"oncall": ["manager", "owner"]}
ROTATIONS = ("ops",)


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def load(tmp_path: Path, files: dict[str, str]):
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    write(rules, files)
    return load_rules(rules, contacts=CONTACTS, groups=GROUPS, rotations=ROTATIONS, timezone="America/New_York")


DOOR = """
rules:
  - id: door-open
    source: {webhook: door}
    notify:
      to: [owner]
      message: "Door opened"
"""

BROKEN = [
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify:
                  to: [owner]
                  tmeplate: door
            """},
        ["rules/door.yaml:6: rule 'door-open': unknown key 'tmeplate' in notify (did you mean 'template'?)"],
        id="unknown-key",
    ),
    pytest.param(
        {"a.yaml": DOOR, "b.yaml": DOOR},
        ["rules/b.yaml:2: rule 'door-open': duplicate rule id (first defined at rules/a.yaml:2)"],
        id="duplicate-id-across-files",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify:
                  to: [manager, ownr]
                  message: Door opened
            """},
        ["rules/door.yaml:5: rule 'door-open': unknown contact 'ownr' in notify.to (did you mean 'owner'?)"],
        id="unknown-contact",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify:
                  to: manager
                  message: Door opened
                  escalate:
                    - after: 5m
                      to: [nobody]
            """},
        ["rules/door.yaml:9: rule 'door-open': unknown contact 'nobody' in notify.escalate[0].to"],
        id="unknown-contact-in-escalate",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify:
                  to: ["555"]
                  message: Door opened
            """},
        ["rules/door.yaml:5: rule 'door-open': invalid phone number '555' in notify.to: write it as +15551234567 or 5551234567"],
        id="bad-number",
    ),
    pytest.param(
        {"tick.yaml": """
            rules:
              - id: tick
                source:
                  schedule:
                    cron: "61 9 * * mon-fri"
                notify: {to: manager, message: tick}
            """},
        ["rules/tick.yaml:5: rule 'tick': invalid cron '61 9 * * mon-fri' in source.schedule.cron: "
         "Error validating expression '61': the last value (61) is higher than the maximum value (59)"],
        id="bad-cron",
    ),
    pytest.param(
        {"tick.yaml": """
            rules:
              - id: tick
                source: {schedule: {cron: "0 9 * *"}}
                notify: {to: manager, message: tick}
            """},
        ["rules/tick.yaml:3: rule 'tick': invalid cron '0 9 * *' in source.schedule.cron: "
         "a cron line has 5 fields (minute hour day-of-month month day-of-week), found 4"],
        id="cron-with-four-fields",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify: {to: owner, message: Door opened}
                cooldown: 5 minutes
            """},
        ["rules/door.yaml:5: rule 'door-open': invalid duration '5 minutes' in cooldown: write it like 30s, 5m, 2h, 1d or 1w"],
        id="bad-duration",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify:
                  to: owner
                  message: "Door {{ event.door }"
            """},
        ["rules/door.yaml:6: rule 'door-open': invalid Jinja2 in notify.message: unexpected '}'"],
        id="bad-jinja-message",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                when: event.state | lowr == 'open'
                notify:
                  to: owner
                  message: |
                    Door {{ event.door }}
                    opened {{ event.at | datetimeformat }}
            """},
        [
            "rules/door.yaml:4: rule 'door-open': invalid Jinja2 expression in when: no filter named 'lowr'",
            "rules/door.yaml:7: rule 'door-open': invalid Jinja2 in notify.message: no filter named 'datetimeformat'",
        ],
        id="unknown-jinja-filter",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                when: event.state ==
                notify: {to: owner, message: Door opened}
            """},
        ["rules/door.yaml:4: rule 'door-open': invalid Jinja2 expression in when: unexpected 'end of template'"],
        id="bad-jinja-when",
    ),
    pytest.param(
        {"shop.yaml": """
            rules:
              - id: order-shipped
                source: {webhook: shop}
                notify:
                  to: ["{{ event.customer.phone }"]
                  message: Your order shipped
                  action_type: sms
            """},
        ["rules/shop.yaml:5: rule 'order-shipped': invalid Jinja2 in notify.to: unexpected '}'"],
        id="bad-jinja-to",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify:
                  to: owner
            """},
        ["rules/door.yaml:4: rule 'door-open': no message or template in notify: set notify.message or notify.template"],
        id="no-message-or-template",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify: {to: owner, template: door_tpl}
            """},
        ["rules/door.yaml:4: rule 'door-open': unknown template 'door_tpl' in notify.template"],
        id="unknown-template",
    ),
    pytest.param(
        {"up.yaml": """
            rules:
              - id: uptime
                source:
                  poll:
                    url: http://localhost:9/health
                    every: 30s
                    cron: "*/5 * * * *"
                notify: {to: oncall, message: down}
            """},
        ["rules/up.yaml:7: rule 'uptime': both every and cron in source.poll: set only one"],
        id="both-every-and-cron",
    ),
    pytest.param(
        {"up.yaml": """
            rules:
              - id: uptime
                source:
                  poll: {url: http://localhost:9/health}
                notify: {to: oncall, message: down}
            """},
        ["rules/up.yaml:4: rule 'uptime': no every or cron in source.poll: "
         "say how often, e.g. every: 5m or cron: '*/5 * * * *'"],
        id="poll-without-schedule",
    ),
    pytest.param(
        {"up.yaml": """
            rules:
              - id: uptime
                source:
                  poll: {url: http://localhost:9/health, every: 30s}
                  schedule: {every: 1h}
                notify: {to: oncall, message: down}
            """},
        ["rules/up.yaml:5: rule 'uptime': 2 sources (poll and schedule) in source: "
         "a rule has exactly one of webhook, poll, schedule, heartbeat"],
        id="two-sources",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: Door-Open
                source: {webhook: door}
                notify: {to: owner, message: Door opened}
            """},
        ["rules/door.yaml:2: rule #1: invalid rule id 'Door-Open': use only lower-case letters, digits, '-' and '_'"],
        id="id-with-capitals",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - source: {webhook: door}
                notify: {to: owner, message: Door opened}
            """},
        ["rules/door.yaml:2: rule #1: missing key 'id'"],
        id="missing-id",
    ),
    pytest.param(
        {"door.yaml": """
            - id: door-open
              source: {webhook: door}
            """},
        ["rules/door.yaml:1: a rule file must be a mapping with 'rules:' and/or 'templates:', found a list"],
        id="not-a-mapping",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify: {to: owner, message: Door opened}
                source: {webhook: door2}
            """},
        ["rules/door.yaml:5: duplicate key 'source' (first at line 3)"],
        id="duplicate-yaml-key",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                notify: {to: owner, message: "Door opened}
            """},
        ["rules/door.yaml:4: invalid YAML: found unexpected end of stream"],
        id="invalid-yaml",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify:
                  to: owner
                  message: {{ event.door }} opened
            """},
        # libyaml's wording (yamlfile uses CSafeLoader where PyYAML ships it)
        ["rules/door.yaml:6: invalid YAML: did not find expected key: "
         "a value that starts with {{ must be quoted, "
         'e.g. message: "{{ event.x }}"'],
        id="unquoted-jinja-value",
    ),
    pytest.param(
        {"door.yaml": """
            rule:
              - id: door-open
            """},
        ["rules/door.yaml:1: unknown key 'rule' at the top of the file (did you mean 'rules'?)"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        {"am.yaml": """
            rules:
              - id: prom
                source: {webhook: alerts, format: prometheus}
                notify: {to: oncall, message: "{{ event.labels.alertname }}"}
            """},
        ["rules/am.yaml:3: rule 'prom': source.format must be 'generic', 'alertmanager' or 'grafana' (got 'prometheus')"],
        id="bad-webhook-format",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                active: {from: "25:00", timezone: America/Chicgo}
                notify: {to: owner, message: Door opened, repeat: 7}
            """},
        [
            "rules/door.yaml:4: rule 'door-open': invalid time '25:00' in active.from: write it as \"HH:MM\" in quotes, e.g. \"09:00\"",
            "rules/door.yaml:4: rule 'door-open': unknown timezone 'America/Chicgo' in active.timezone: "
            "use an IANA name like America/Chicago",
            "rules/door.yaml:5: rule 'door-open': notify.repeat must be less than or equal to 5 (got 7)",
        ],
        id="several-errors-in-one-rule",
    ),
    pytest.param(
        {"tick.yaml": """
            rules:
              - id: tick
                source: {schedule: {every: 1h}}
                notify: {to: manager, message: tick}
                repeat_every: 1h
            """},
        ["rules/tick.yaml:5: rule 'tick': repeat_every on a schedule rule: "
         "it only applies to poll rules and alertmanager/grafana webhooks"],
        id="repeat-every-on-stateless-source",
    ),
    pytest.param(
        {"door.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
            """},
        ["rules/door.yaml:2: rule 'door-open': missing key 'notify'"],
        id="missing-notify",
    ),
    pytest.param(
        {"up.yaml": """
            rules:
              - id: uptime
                source:
                  poll:
                    url: http://localhost:9/health
                    every: 0s
                    headers:
                      Authorization: Bearer ${UPTIME_TOKEN}
                notify: {to: oncall, message: down}
            """},
        [
            "rules/up.yaml:6: rule 'uptime': zero duration in source.poll.every: it must be longer than 0s",
            "rules/up.yaml:8: rule 'uptime': environment variable UPTIME_TOKEN is not set in "
            "source.poll.headers.Authorization: set it, or write ${UPTIME_TOKEN:-default}",
        ],
        id="zero-interval-and-unset-variable",
    ),
]


@pytest.mark.parametrize(("files", "expected"), BROKEN)
def test_broken_rule_file_reports_exact_error(tmp_path, files, expected):
    result = load(tmp_path, files)
    assert result.errors == expected
    assert not result.ok


def test_valid_multi_file_folder_loads(tmp_path):
    result = load(tmp_path, {
        "templates.yaml": """
            templates:
              no_staff:
                message: "Alert: No staff have clocked in at {{ event.body.location }}."
                action_type: both
                gather: true
                repeat: 2
            """,
        "timeclock.yaml": """
            rules:
              - id: no-staff-clocked-in
                description: Nobody clocked in 15 minutes after opening
                source:
                  poll:
                    url: http://timeclock.local/api/clocked-in
                    cron: "15 9 * * mon-fri"
                    method: get
                when: event.body.count == 0
                active:
                  days: [mon, tue, wed, thu, fri]
                  from: 09:00
                  until: 17:00
                  timezone: America/Chicago
                notify:
                  to: [manager, oncall, "+15551234567", "{{ event.customer.phone }}"]
                  template: no_staff
                  retry: {times: 2, every: 2m}
                  escalate:
                    - after: 5m
                      to: [oncall_secondary]
                cooldown: 15m
                repeat_every: 1h
                notify_resolved: true
            """,
        "security/door.yml": """
            rules:
              - id: door-after-hours
                source: {webhook: door, format: generic}
                active: {from: "18:00", until: "07:00"}
                notify: {to: [owner, ops], message: "Door {{ event.door }} opened", gather: true}
              - id: motion-after-hours
                source: {webhook: door}
                when: event.kind == 'motion'
                notify: {to: owner, template: tpl_a3f8b2c1d4e5}
                group_by: labels.alertname
            """,
        "empty.yaml": "# nothing here yet\n",
    })
    assert result.errors == []
    assert result.failed_files == []
    rs = result.ruleset
    assert list(rs.rules) == ["door-after-hours", "motion-after-hours", "no-staff-clocked-in"]
    assert rs.files == {
        "door-after-hours": "rules/security/door.yml",
        "motion-after-hours": "rules/security/door.yml",
        "no-staff-clocked-in": "rules/timeclock.yaml",
    }
    assert [r.id for r in rs.for_webhook("door")] == ["door-after-hours", "motion-after-hours"]
    assert rs.for_webhook("nope") == ()
    assert set(rs.templates) == {"no_staff"}
    rule = rs.rules["no-staff-clocked-in"]
    assert rule.source.kind == "poll" and rule.source.poll.method == "GET"
    assert rule.source.poll.timeout == timedelta(seconds=10)
    # an unquoted 17:00 is the YAML 1.1 integer 1020; it still means 17:00
    assert (rule.active.from_, rule.active.until) == (time(9, 0), time(17, 0))
    assert rule.active.days == (0, 1, 2, 3, 4)
    assert rule.notify.retry.every == timedelta(minutes=2)
    assert rule.group_wait == timedelta(seconds=30)
    assert rs.rules["motion-after-hours"].group_by == ["labels.alertname"]
    assert rs.timezone_of(rule) == "America/Chicago"
    assert rs.timezone_of(rs.rules["door-after-hours"]) == "America/New_York"


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    result = load(tmp_path, {
        "a.yaml": DOOR,
        "b.yaml": "rules: [}",
        "c.yaml": """
            rules:
              - id: tick
                source: {schedule: {every: 1h}}
                notify: {to: manager, message: tick}
            """,
    })
    assert result.failed_files == ["rules/b.yaml"]
    assert len(result.errors) == 1 and result.errors[0].startswith("rules/b.yaml:1: invalid YAML")
    assert list(result.ruleset.rules) == ["door-open", "tick"]
    assert result.files == ["rules/a.yaml", "rules/b.yaml", "rules/c.yaml"]


def test_every_error_of_a_file_is_reported_at_once(tmp_path):
    result = load(tmp_path, {"door.yaml": """
        rules:
          - id: door-open
            source: {webhook: door}
            notify:
              to: ownr
              tmeplate: x
              message: "{{ event.x }"
    """})
    assert result.errors == [
        "rules/door.yaml:5: rule 'door-open': unknown contact 'ownr' in notify.to (did you mean 'owner'?)",
        "rules/door.yaml:6: rule 'door-open': unknown key 'tmeplate' in notify (did you mean 'template'?)",
        "rules/door.yaml:7: rule 'door-open': invalid Jinja2 in notify.message: unexpected '}'",
    ]


def test_template_from_a_broken_file_fails_the_rules_using_it(tmp_path):
    result = load(tmp_path, {
        "a.yaml": """
            rules:
              - id: door-open
                source: {webhook: door}
                notify: {to: owner, template: door}
            """,
        "b.yaml": """
            templates:
              door:
                message: Door opened
            rules:
              - id: other
                source: {webhook: door}
                notify: {to: nobody, message: x}
            """,
    })
    assert result.errors == [
        "rules/a.yaml:4: rule 'door-open': template 'door' in notify.template is in rules/b.yaml, which has errors",
        "rules/b.yaml:7: rule 'other': unknown contact 'nobody' in notify.to",
    ]
    assert len(result.ruleset) == 0


def test_hidden_files_and_other_extensions_are_ignored(tmp_path):
    result = load(tmp_path, {"door.yaml": DOOR, ".door.yaml": "not: valid: yaml: [", "notes.txt": "x", ".git/x.yaml": "["})
    assert result.errors == [] and result.files == ["rules/door.yaml"]


def test_display_root_and_missing_folder(tmp_path):
    (tmp_path / "rules").mkdir()
    write(tmp_path / "rules", {"door.yaml": "rules: 3\n"})
    result = load_rules(tmp_path / "rules", contacts={}, groups={}, timezone="UTC", display_root=tmp_path / "rules")
    assert result.errors == ["door.yaml:1: rules must be a list, each item starting with '- id: ...'"]
    missing = load_rules(tmp_path / "nope", contacts={}, groups={}, timezone="UTC")
    assert missing.errors == ["nope: rules folder not found"] and len(missing.ruleset) == 0


def test_poll_url_and_headers_take_environment_variables(tmp_path):
    (tmp_path / "rules").mkdir()
    write(tmp_path / "rules", {"up.yaml": """
        rules:
          - id: uptime
            source:
              poll:
                url: "http://${HOST:-localhost}:8080/health"
                every: 30s
                headers: {Authorization: "Bearer ${TOKEN}"}
            notify: {to: "+15551234567", message: "${TOKEN} stays as written here"}
    """})
    result = load_rules(tmp_path / "rules", contacts={}, groups={}, timezone="UTC", environ={"TOKEN": "s3cret"})
    assert result.errors == []
    rule = result.ruleset.rules["uptime"]
    assert rule.source.poll.url == "http://localhost:8080/health"
    assert rule.source.poll.headers == {"Authorization": "Bearer s3cret"}
    assert rule.notify.message == "${TOKEN} stays as written here"
