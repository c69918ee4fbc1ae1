"""Bad input never breaks alertd.

1. schemathesis generates requests from /openapi.json (valid ones and invalid
   ones) against a running `alertd run`: no 5xx, and every answer is in the
   envelope: {"ok": true, ...} for a 2xx, {"ok": false, "error", "code": N}
   with HTTP status N otherwise.
   The same for numbers Python cannot take as they come (integers of more
   than 4300 digits, non-ASCII digits, integers past 64 bits) in JSON
   bodies, the query, and signed Twilio callbacks.
2. hypothesis generates rule files (mutations of the shipped examples, YAML
   built from the rule keys, and plain garbage): `alertd check` exits 0 or 1,
   never with a traceback; written into a running daemon's rules folder, a
   broken one leaves the last good rule set live and /healthz answering.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

# hypothesis and schemathesis are declared test extras (pyproject.toml): without them the
# run must fail here, at collection, rather than skip the fuzzing silently
import hypothesis
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from twilio.request_validator import RequestValidator

from alertd import cli
from alertd.rules.loader import load_rules
from conftest import AUTH_TOKEN, write_config
from daemon_process import DaemonProcess, unlimited

EXAMPLES = 25  # per API operation and generation mode
BODY_EXAMPLES = 100  # for the operations that take a JSON body, where most of the surface is
RULE_EXAMPLES = 60  # rule files through `alertd check` (in-process)
RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
GOOD_RULE = """
rules:
  - id: good-rule
    source: {webhook: good}
    notify:
      to: [manager]
      message: "Good {{ event.n }}"
      action_type: sms
"""


def fuzz_settings(n: int) -> settings:
    # No example database, so nothing is kept between runs. On a developer's machine every run explores
    # afresh (new inputs, so new finds); in CI (CI=true) the examples are the same on every run, so a red
    # CI means the change broke something, not that the dice found an old problem.
    return settings(max_examples=n, deadline=None, database=None, derandomize=os.environ.get("CI") == "true",
                    suppress_health_check=list(HealthCheck))


# --- 1. the HTTP API ---------------------------------------------------------------------

def envelope_problem(status: int, body) -> str | None:
    """What is wrong with one answer, or None."""
    if status >= 500:
        return f"a server error ({status})"
    if not isinstance(body, dict):
        return f"not a JSON object: {body!r:.200}"
    if 200 <= status < 300:
        return None if body.get("ok") is True else "a 2xx without ok: true"
    if body.get("ok") is not False or body.get("code") != status:
        return f"not the error envelope for {status}: {body!r:.300}"
    if not isinstance(body.get("error"), str) or not body["error"]:
        return f"no error message: {body!r:.300}"
    return None


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    (folder / "rules").mkdir()
    # a webhook some generated requests can reach (others get the 404 of an unknown hook)
    (folder / "rules" / "good.yaml").write_text(GOOD_RULE)
    daemon = DaemonProcess(folder, unlimited()).start()  # simulator provider: nothing leaves the machine
    yield daemon
    daemon.stop()


def test_schemathesis_finds_no_5xx_and_nothing_outside_the_envelope(running, capsys):
    schema = schemathesis.openapi.from_url(running.base_url + "/openapi.json", timeout=10)
    schema = schema.include(path_regex=r"^/(api|hooks)/")
    session = requests.Session()
    tried: dict[str, int] = {}
    statuses: dict[int, int] = {}
    no_negative: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]

    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @fuzz_settings(BODY_EXAMPLES if op.body else EXAMPLES)
            @given(case=op.as_strategy(generation_mode=mode))
            def one(case) -> None:
                response = case.call(base_url=running.base_url, session=session, headers=running.headers,
                                     timeout=10)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                tried[op.label] = tried.get(op.label, 0) + 1
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                problem = envelope_problem(response.status_code, body)
                assert problem is None, f"{op.label}: {problem}\n{case.as_curl_command()}\n{running.log_tail(4)}"

            try:
                one()
            except hypothesis.errors.Unsatisfiable:
                # nothing to make invalid: an operation without parameters or body has no negative case
                assert mode is GenerationMode.NEGATIVE, op.label
                no_negative.append(op.label)
    assert running.proc.poll() is None
    assert requests.get(running.base_url + "/healthz", timeout=5).status_code == 200
    with capsys.disabled():
        print(f"\n[reliability] schemathesis: {sum(tried.values())} requests over {len(tried)} operations"
              f" (positive and negative cases, up to {EXAMPLES} each, {BODY_EXAMPLES} with a body:"
              f" {', '.join(f'{k} {n}' for k, n in tried.items())}), statuses {dict(sorted(statuses.items()))}:"
              f" no 5xx, all in the envelope (no negative case exists for {', '.join(no_negative) or 'none'})")


# --- 1b. numbers Python cannot take as they come -------------------------------------------
# JSON integers of more than 4300 digits (int() refuses them), digits that are not ASCII
# ("²".isdigit() is True, int("²") raises), integers past SQLite's 64 bits: found by hand once
# (500s in notify, hooks, silences, templates and the Twilio callbacks), generated here since.

ODD_EXAMPLES = 60
ODD_DIGITS = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=8)
HUGE_INT = st.integers(4301, 12000).map(lambda n: "9" * n) | st.integers(4301, 6000).map(lambda n: "-" + "1" * n)
ODD_NUMBER_TEXT = st.one_of(ODD_DIGITS, HUGE_INT, st.integers(2**63, 10**40).map(str),
                            st.tuples(st.integers(0, 9).map(str), ODD_DIGITS).map("".join))
JSON_ROUTES = {  # path -> the keys a body of it may have
    "/api/v1/calls/notify": ["to", "message", "repeat", "voice", "action_type", "template_id", "retry",
                             "escalate", "send_sms", "gather", "from", "language"],
    "/api/v1/calls/templates": ["name", "message", "repeat", "voice", "action_type", "gather", "action",
                                "template_id"],
    "/api/v1/silences": ["rule_id", "source", "to", "duration", "until", "reason", "action", "silence_id"],
    "/hooks/good": ["n", "x", "state", "nested"],
}


@st.composite
def odd_json_body(draw, keys: list[str]) -> str:
    """A JSON object over ``keys`` where some values are huge integers (raw in the text) or
    non-ASCII digit strings, the rest ordinary."""
    ordinary = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=12),
                         st.just("+15551234567"), st.just("1h"))
    body, huge = {}, {}
    for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=5, unique=True)):
        kind = draw(st.sampled_from(["huge", "odd", "ordinary", "nested"]))
        if kind == "huge":
            huge[f"@{len(huge)}@"] = draw(HUGE_INT)
            body[key] = f"@{len(huge) - 1}@"
        elif kind == "odd":
            body[key] = draw(ODD_DIGITS)
        elif kind == "nested":
            huge[f"@{len(huge)}@"] = draw(HUGE_INT)
            body[key] = {"times": f"@{len(huge) - 1}@", "every": "1m"} if key == "retry" else [f"@{len(huge) - 1}@"]
        else:
            body[key] = draw(ordinary)
    text = json.dumps(body)
    for marker, digits in huge.items():
        text = text.replace(f'"{marker}"', digits)
    return text


def test_generated_huge_and_non_ascii_numbers_get_the_400_envelope_everywhere(running, capsys):
    session = requests.Session()
    statuses: dict[int, int] = {}

    for path, keys in JSON_ROUTES.items():
        @fuzz_settings(ODD_EXAMPLES)
        @given(text=odd_json_body(keys))
        def one(text: str) -> None:
            r = session.post(running.base_url + path, data=text, headers={**running.headers,
                             "Content-Type": "application/json"}, timeout=10)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            problem = envelope_problem(r.status_code, r.json())
            assert problem is None, f"POST {path}: {problem}\n{text[:300]}\n{running.log_tail(4)}"
        one()

    @fuzz_settings(ODD_EXAMPLES)
    @given(value=ODD_NUMBER_TEXT, where=st.sampled_from(["limit", "log"]))
    def query(value: str, where: str) -> None:
        url = (running.base_url + "/api/v1/calls/logs?limit=" + quote(value) if where == "limit" else
               running.base_url + "/api/v1/calls/logs/" + quote(value))
        r = session.get(url, headers=running.headers, timeout=10)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert envelope_problem(r.status_code, r.json()) is None, (url[:200], r.text[:300])
    query()

    validator = RequestValidator(AUTH_TOKEN)

    @fuzz_settings(ODD_EXAMPLES)
    @given(path=st.sampled_from(["/twilio/status", "/twilio/gather", "/twilio/twiml", "/twilio/sms"]),
           log_id=ODD_NUMBER_TEXT | st.just("1"), code=ODD_NUMBER_TEXT, digits=ODD_DIGITS)
    def callback(path: str, log_id: str, code: str, digits: str) -> None:
        url = f"{running.base_url}{path}?log_id={quote(log_id)}"  # Twilio signs the URL it was given
        form = {"CallSid": "CA" + "0" * 32, "CallStatus": "failed", "ErrorCode": code, "Digits": digits,
                "From": digits, "Body": digits}
        r = session.post(url, data=form, timeout=10,
                         headers={"X-Twilio-Signature": validator.compute_signature(url, form)})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (url[:200], form["ErrorCode"][:50], r.text[:300], running.log_tail(4))
        if r.status_code != 200:
            assert envelope_problem(r.status_code, r.json()) is None, r.text[:300]
    callback()

    assert running.proc.poll() is None
    with capsys.disabled():
        print(f"\n[reliability] odd numbers: {sum(statuses.values())} requests with huge integers and non-ASCII"
              f" digits (JSON bodies, query, signed Twilio callbacks), statuses {dict(sorted(statuses.items()))}:"
              " no 5xx, all in the envelope")


# --- 2. rule files ------------------------------------------------------------------------

# every URL made a refused loopback port: a mutated poll rule that stays valid polls nothing outside
EXAMPLE_FILES = sorted(re.sub(r"https?://[^\s}'\"]+", "http://127.0.0.1:9/", p.read_text())
                       for p in RULES_DIR.glob("*.yaml"))
RULE_KEYS = ["rules", "templates", "id", "description", "source", "webhook", "poll", "schedule", "url", "every",
             "cron", "notify", "to", "message", "action_type", "template", "when", "active", "days", "from",
             "until", "timezone", "dedup_key", "cooldown", "retry", "times", "escalate", "after", "delay", "at",
             "repeat", "gather", "voice", "language", "resolved", "format", "expect", "status", "timeout"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["5m", "0s", "-1m", "9999999d", "{{ event.x }}", "{{",
                                                           "{% for %}", "oncall", "manager", "+15551234567",
                                                           "call", "sms", "both", "mon-fri", "25:00", "* * * * *",
                                                           "webhook", "2026-02-30T09:00"]))
STRUCTURED = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(RULE_KEYS) | st.text(max_size=8), inner, max_size=5)),
    max_leaves=25)


@st.composite
def mutated_example(draw) -> str:
    """A shipped rule file with a few edits: lines cut, swapped or spliced, characters changed."""
    lines = draw(st.sampled_from(EXAMPLE_FILES)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["drop", "dup", "indent", "dedent", "splice", "truncate", "replace"]))
        if how == "drop":
            del lines[i]
        elif how == "dup":
            lines.insert(i, lines[i])
        elif how == "indent":
            lines[i] = "  " + lines[i]
        elif how == "dedent":
            lines[i] = lines[i].lstrip()
        elif how == "truncate":
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
        elif how == "splice":
            lines[i] += draw(st.sampled_from([": x", " {", "[", "\t", " &a", " *a", " !!python/object:os.system",
                                              " {{ event", ": [1, 2", " 0x1F", " ~", " '"]))
        else:
            k = draw(st.integers(0, max(0, len(lines[i]) - 1)))
            lines[i] = lines[i][:k] + draw(st.text(max_size=3)) + lines[i][k + 1:]
    return "\n".join(lines) + "\n"


RULE_FILES = st.one_of(
    mutated_example(),
    STRUCTURED.map(lambda v: yaml.safe_dump({"rules": v} if not isinstance(v, dict) else v, allow_unicode=True)),
    st.lists(STRUCTURED, max_size=3).map(lambda v: yaml.safe_dump({"rules": v})),
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


def check_in_process(config: Path) -> tuple[int, str]:
    """`alertd check` through cli.main, in this process (a fresh process per file would take minutes)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = cli.main(["check", "-c", str(config)])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue()


def test_generated_rule_files_never_crash_alertd_check(tmp_path, capsys):
    config = write_config(tmp_path, 8080)
    target = tmp_path / "rules" / "fuzz.yaml"
    results = {0: 0, 1: 0}

    @fuzz_settings(RULE_EXAMPLES)
    @given(text=RULE_FILES)
    def one(text: str) -> None:
        target.write_text(text, encoding="utf-8", errors="surrogateescape")
        code, output = check_in_process(config)  # an exception here fails the test: that is a crash
        assert code in (0, 1), f"exit {code}: {output}"
        assert "Traceback" not in output, output
        assert ("SUCCESS" in output) == (code == 0), output
        results[code] += 1

    one()
    # and as a real process, the way a person runs it: a broken file, then a good one
    for text, expected in (("rules:\n  - id: [\n", 1), ("rules:\n  - {id: x, source: {webhook: 1}}\n", 1),
                           (GOOD_RULE, 0)):
        target.write_text(text)
        done = subprocess.run([sys.executable, "-m", "alertd", "check", "-c", str(config)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == expected and "Traceback" not in done.stdout + done.stderr, done
    with capsys.disabled():
        print(f"\n[reliability] rule files: {sum(results.values())} generated files through `alertd check`:"
              f" {results[0]} SUCCESS, {results[1]} FAILED, 0 crashes")


def test_a_broken_rule_file_never_takes_down_the_running_daemon(make_daemon, capsys):
    d = make_daemon()
    rules = d.config.rules
    (rules / "good.yaml").write_text(GOOD_RULE)
    assert d.run(_reload(d)) is True
    target = rules / "fuzz.yaml"

    def write(text: str) -> None:
        tmp = rules / ".fuzz.tmp"  # the watcher ignores it; the rename is atomic
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
        os.replace(tmp, target)

    # through the folder watcher, as an editor would: the reload is refused, the good rule stays live
    failures = d.daemon.rules.reload_failures
    write("rules:\n  - id: broken\n    source: {webhook: [\n")
    d.wait_until(lambda: d.daemon.rules.reload_failures > failures, timeout=10, what="the watcher's reload")
    assert "good-rule" in d.daemon.runner.ruleset.rules
    health = requests.get(d.url("/healthz"), timeout=5)
    assert health.status_code == 200 and health.json()["rules"]["errors"], health.text
    r = d.api.post(d.url("/hooks/good"), json={"n": 1}, timeout=10)
    assert r.status_code == 200 and r.json()["fired"] == ["good-rule"], r.text

    outcomes = {"swapped": 0, "refused": 0}

    @fuzz_settings(30)
    @given(text=RULE_FILES)
    def one(text: str) -> None:
        write(text)
        before = set(d.daemon.runner.ruleset.rules)
        swapped = d.run(_reload(d))  # what SIGHUP does, on the daemon's own loop
        names = d.daemon.directory
        expected = load_rules(rules, contacts=names.contacts, groups=names.groups, timezone=d.config.timezone)
        assert swapped == expected.ok, expected.errors
        live = set(d.daemon.runner.ruleset.rules)
        assert live == (set(expected.ruleset.rules) if swapped else before)
        assert "good-rule" in live
        assert d.thread.is_alive()
        assert requests.get(d.url("/healthz"), timeout=5).status_code == 200
        outcomes["swapped" if swapped else "refused"] += 1

    one()
    write("")  # an empty file is no rules: the last reload leaves only the good rule
    assert d.run(_reload(d)) is True and set(d.daemon.runner.ruleset.rules) == {"good-rule"}
    with capsys.disabled():
        print(f"\n[reliability] running daemon: {sum(outcomes.values())} generated rule files reloaded:"
              f" {outcomes['refused']} refused (last good set kept), {outcomes['swapped']} valid and swapped in;"
              " /healthz answered after each")


async def _reload(d) -> bool:
    return d.daemon.rules.reload()
