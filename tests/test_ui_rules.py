"""The rules page's dry run over HTTP: what `alertd test-rule` prints, for a pasted event; nothing is sent.
That nothing is stored is checked on SQLite and on PostgreSQL; the report's wording, once."""
from __future__ import annotations

import html
import re

import pytest

from alertd import cli
from test_rules_runtime import TEST_RULE
from test_ui_pages import logged_in
from conftest import both_backends

EVENT = '{"temp": 34, "owner_phone": "555-201-9999", "check_at": "2026-03-12T08:00"}'


@pytest.fixture
def site(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "temps.yaml").write_text(TEST_RULE)
    return logged_in(make_daemon)


def report(page: str) -> list[str]:
    pre = re.search(r'<pre id="dry-result">(.*?)</pre>', page, re.S).group(1)
    return [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in pre.strip().splitlines()]


@both_backends
def test_the_dry_run_shows_what_test_rule_prints_and_sends_nothing(site, tmp_path, capsys):
    d, s, csrf = site
    r = s.post(d.url("/ui/rules/dry-run"), data={"csrf": csrf, "rule": "server-hot", "event": EVENT}, timeout=5)
    assert r.status_code == 200
    lines = report(r.text)
    assert "when:        holds  (event.temp > 30)" in lines and "would send:  yes" in lines
    assert "to:          +15551230002, +15551230003, +15552019999" in lines
    assert "message:     Server room at 34 C" in lines and "✓ no errors" in r.text
    assert "send at:     2026-03-12T12:00:00+00:00" in lines  # 08:00 in New York
    (tmp_path / "event.json").write_text(EVENT)
    assert cli.main(["test-rule", "server-hot", "--event", str(tmp_path / "event.json"),
                     "-c", str(d.config_path)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines()
               if not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[", line)]  # not the daemon's log lines
    assert printed == lines  # the very same report
    assert d.daemon.provider.sent == [] and d.run(d.daemon.store.logs.list()) == []
    assert d.query("SELECT COUNT(*) FROM events") == [(0,)]


def test_a_when_that_does_not_hold_and_a_template_error(site):
    d, s, csrf = site
    r = s.post(d.url("/ui/rules/dry-run"), data={"csrf": csrf, "rule": "server-hot", "event": '{"temp": 21}'},
               timeout=5)
    lines = report(r.text)
    assert "when:        does not hold  (event.temp > 30)" in lines and "would send:  no" in lines
    errors = [line for line in lines if line.startswith("error:")]
    assert errors and "owner_phone" in errors[0] and "✗ errors" in r.text
    assert '<span class="error">error:' in r.text  # errors in red too, not only in words


@pytest.mark.parametrize("rule, event, error", [
    ("server-hot", "{temp: 34}", "event: not JSON: Expecting property name enclosed in double quotes:"
                                 " line 1 column 2 (char 1)"),
    ("nope", "{}", "rule: no rule &#39;nope&#39; is loaded"),
    ("server-hot", "[" * 100_000 + "]" * 100_000, "event: not JSON: nested too deeply"),
])
def test_a_bad_event_or_rule_is_refused_naming_the_field(site, rule, event, error):
    d, s, csrf = site
    r = s.post(d.url("/ui/rules/dry-run"), data={"csrf": csrf, "rule": rule, "event": event}, timeout=5)
    assert r.status_code == 400 and f"✗ {error}" in r.text
    assert "{temp: 34}" in html.unescape(r.text) or rule == "nope" or event.startswith("[")  # pasted text stays


def test_a_rules_dry_run_link_preselects_it(site):
    d, s, _ = site
    page = s.get(d.url("/ui/rules?rule=server-hot"), timeout=5).text
    assert '<option value="server-hot" selected>' in page
