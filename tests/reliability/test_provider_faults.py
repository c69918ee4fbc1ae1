"""A provider that fails 30% of requests: every notification is delivered in the
end, Retry-After is honoured, and a permanent error is never retried.

FakeTwilio (fail_ratio 0.3, fixed seed) answers a failed request with 500,
503, 429 + Retry-After: 1, or drops the connection; some numbers are scripted
to time out (the fake answers after 1 s, past provider.timeout of 0.5 s, and
creates the call all the same, as Twilio would), some are refused permanently
(21211). The daemon runs in-process on the real clock with a short backoff.
"""
from __future__ import annotations

import collections
import sqlite3
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

from conftest import twilio_overrides
from daemon_process import unlimited

REQUESTS = 150
TIMEOUT_NUMBERS = {f"+1555300{k:04d}" for k in range(10)}
PERMANENT_NUMBERS = [f"+1555400{k:04d}" for k in range(6)]


def key_of(request) -> tuple[int, str]:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(request.form["StatusCallback"]).query)
    return int(query["log_id"][0]), query["channel"][0]


def bodies() -> list[dict]:
    """Mixed traffic: calls, SMS, both; one or two recipients; a refused number now and then."""
    timeouts = sorted(TIMEOUT_NUMBERS)
    out = []
    for i in range(REQUESTS):
        to = [timeouts[i // 15] if i % 15 == 0 else f"+1555500{i:04d}"]
        if i % 7 == 0:
            to.append(f"+1555600{i:04d}")
        body = {"to": to, "message": f"Fault {i}", "action_type": ("call", "sms", "both")[i % 3]}
        out.append(body)
    for number in PERMANENT_NUMBERS[:3]:  # alone: the whole request is refused (400)
        out.append({"to": number, "message": "Refused", "action_type": "call"})
    for k, number in enumerate(PERMANENT_NUMBERS[3:]):  # beside a good number: the request is ok
        out.append({"to": [number, f"+1555700{k:04d}"], "message": "Half refused", "action_type": "call"})
    return out


def test_every_notification_is_delivered_through_30_percent_faults(make_daemon, fake_twilio, capsys):
    fake = fake_twilio
    fake.seed, fake.fail_ratio = 20261127, 0.3
    for number in TIMEOUT_NUMBERS:
        fake.script(number, [("timeout", 1.0)])
    for number in PERMANENT_NUMBERS:
        fake.permanent(number, 21211)
    overrides = twilio_overrides(fake)
    overrides["provider"]["timeout"] = "0.5s"
    overrides["dispatch"] = {"backoff_base": "0.05s", "backoff_max": "0.5s", "max_attempts": 30}
    d = make_daemon(unlimited(overrides))

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: (b, d.notify(b)), bodies()))
    statuses = collections.Counter(r.status_code for _, r in answers)
    first = collections.Counter(c["status"] for _, r in answers for c in r.json().get("calls", []))

    def pending() -> int:
        with closing(sqlite3.connect(d.config.database, timeout=10)) as conn:
            return conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]

    d.wait_until(lambda: pending() == 0, timeout=60, what="the outbox to drain")
    drained = time.monotonic() - started
    # a timed-out request the fake is still holding creates its call when it lets go
    d.wait_until(lambda: fake.in_flight == 0, timeout=30, what="the requests the fake still holds")
    with closing(sqlite3.connect(d.config.database, timeout=10)) as conn:
        conn.row_factory = sqlite3.Row
        rows = {r["log_id"]: dict(r) for r in conn.execute("SELECT log_id, to_number, type, status, error FROM logs")}
        items = [dict(r) for r in conn.execute("SELECT log_id, channel, state, attempts FROM outbox")]

    requests = list(fake.requests)
    outcomes = collections.Counter(
        r.outcome if r.outcome != "http" else f"http {r.status}" for r in requests)
    created = collections.Counter(key_of(r) for r in requests if r.sid)
    expected = {(i["log_id"], i["channel"]) for i in items if rows[i["log_id"]]["to_number"] not in PERMANENT_NUMBERS}
    timed_out = {(i["log_id"], i["channel"]) for i in items if rows[i["log_id"]]["to_number"] in TIMEOUT_NUMBERS}
    duplicates = {k: n for k, n in created.items() if n > 1}
    per_permanent = collections.Counter(r.form["To"] for r in requests if r.form["To"] in PERMANENT_NUMBERS)
    retries = sum(i["attempts"] - 1 for i in items)

    with capsys.disabled():
        print(f"\n[reliability] provider faults: {len(answers)} notify requests ({dict(statuses)}), first"
              f" answers {dict(first)}; {len(expected)} deliveries expected, {len(set(created) & expected)}"
              f" delivered, drained in {drained:.1f} s; provider requests {len(requests)}: {dict(outcomes)};"
              f" retries {retries}; duplicates {len(duplicates)} (all on the {len(timed_out)} timed-out sends);"
              f" permanent numbers {len(per_permanent)}, requests each {sorted(set(per_permanent.values()))}")

    assert statuses == {200: REQUESTS + 3, 400: 3}, statuses
    assert outcomes["http 500"] and outcomes["http 503"] and outcomes["http 429"] and outcomes["drop"], outcomes
    missing = expected - set(created)
    assert not missing, f"{len(missing)} never delivered, e.g. {sorted(missing)[:10]}"
    assert set(created) <= expected
    # a duplicate only where the provider took the request but its answer came after our timeout
    assert set(duplicates) <= timed_out, {k: duplicates[k] for k in set(duplicates) - timed_out}
    assert all(n == 2 for n in duplicates.values()), duplicates
    for r in rows.values():
        if r["to_number"] in PERMANENT_NUMBERS:
            assert r["status"] == "failed" and '"code": 21211' in r["error"], r
        else:
            assert r["status"] == "initiated", r
    # permanent errors are never retried: exactly one request per refused number
    assert per_permanent == {n: 1 for n in PERMANENT_NUMBERS}, per_permanent
    # Retry-After: 1 is honoured: the next attempt of that item comes at least a second later
    by_item = collections.defaultdict(list)
    for r in requests:
        if "StatusCallback" in r.form:
            by_item[key_of(r)].append(r)
    for attempts in by_item.values():
        attempts.sort(key=lambda r: r.time)
        for before, after in zip(attempts, attempts[1:]):
            if before.status == 429:
                assert after.time - before.time >= 0.95, (before.time, after.time)
