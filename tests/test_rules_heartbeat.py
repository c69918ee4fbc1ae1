"""`source: heartbeat:` in rule files: what loads, and the file:line error for what does not."""
from __future__ import annotations

from datetime import timedelta

import pytest

from test_rules_loader import load


def beat(body: str, extra: str = "", rid: str = "backup") -> str:
    return f"""
rules:
  - id: {rid}
    source:
      heartbeat:
{body}
    notify:
      to: owner
      message: "Backup: {{{{ event.reason }}}}"
{extra}"""


def test_a_heartbeat_rule_loads_with_its_defaults(tmp_path):
    result = load(tmp_path, {"b.yaml": beat("        every: 1h", "    notify_resolved: true")})
    assert result.errors == []
    spec = result.ruleset.rules["backup"].source.heartbeat
    assert (spec.every, spec.grace, spec.uuid, spec.slug) == (timedelta(hours=1), timedelta(hours=1), None, None)
    assert result.ruleset.rules["backup"].source.kind == "heartbeat"


def test_uuid_is_kept_in_its_canonical_form(tmp_path):
    text = beat("        uuid: 5BF66975-D4C7-4BF5-BCC8-B8D8A82EA278\n        cron: '0 2 * * *'")
    result = load(tmp_path, {"b.yaml": text})
    assert result.ruleset.rules["backup"].source.heartbeat.uuid == "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"


@pytest.mark.parametrize("body, extra, expected", [
    ("        every: 1h\n        cron: '0 2 * * *'", "",
     "rules/b.yaml:6: rule 'backup': both every and cron in source.heartbeat: set only one"),
    ("        grace: 5m", "",
     "rules/b.yaml:4: rule 'backup': no every or cron in source.heartbeat: say how often it pings, e.g. every: 1h"
     " or cron: '0 2 * * *'"),
    ("        every: 1h\n        uuid: not-a-uuid", "",
     "rules/b.yaml:6: rule 'backup': invalid uuid 'not-a-uuid' in source.heartbeat.uuid: write it like"
     " 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278, or leave it out"),
    ("        every: 1h\n        slug: Nightly Backup", "",
     "rules/b.yaml:6: rule 'backup': invalid slug 'Nightly Backup' in source.heartbeat.slug: use lower-case"
     " letters, digits, '-' and '_' (it is a URL path segment)"),
    ("        every: 0s", "",
     "rules/b.yaml:5: rule 'backup': zero duration in source.heartbeat.every: it must be longer than 0s"),
    ("        every: 1h\n        grace: soon", "",
     "rules/b.yaml:6: rule 'backup': invalid duration 'soon' in source.heartbeat.grace: write it like 30s, 5m,"
     " 2h, 1d or 1w"),
    ("        every: 1h\n        grase: 5m", "",
     "rules/b.yaml:6: rule 'backup': unknown key 'grase' in source.heartbeat (did you mean 'grace'?)"),
    ("        every: 1h", "    when: event.x > 1",
     "rules/b.yaml:9: rule 'backup': when on a heartbeat rule: a heartbeat notifies on its own flips;"
     " there is no event to test"),
    ("        every: 1h", "    repeat_every: 1h",
     "rules/b.yaml:9: rule 'backup': repeat_every on a heartbeat rule: use notify.escalate to"
     " call again while it stays down"),
])
def test_broken_heartbeat_reports_the_line_and_key(tmp_path, body, extra, expected):
    result = load(tmp_path, {"b.yaml": beat(body, extra)})
    assert result.errors == [expected]


def test_one_uuid_or_slug_for_two_rules_names_both_places(tmp_path):
    one = beat("        uuid: 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278\n        slug: nightly\n        every: 1h")
    two = beat("        uuid: 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278\n        slug: nightly\n        every: 2h",
               rid="backup-2")
    result = load(tmp_path, {"a.yaml": one, "b.yaml": two})
    assert result.errors == [
        "rules/b.yaml:5: rule 'backup-2': uuid '5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278' is used by another heartbeat"
        " (first at rules/a.yaml:5)",
        "rules/b.yaml:6: rule 'backup-2': slug 'nightly' is used by another heartbeat (first at rules/a.yaml:6)"]
    assert list(result.ruleset.rules) == ["backup"]
