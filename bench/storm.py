"""Storm benchmark: a burst of 1,000 triggers to 50 numbers.

    /tmp/venv/bin/python bench/storm.py            # from the repo root; about 40 s

Three processes on loopback: the fake Twilio (bench/fake_provider.py: answers
429 with Retry-After: 1 beyond --fake-concurrency requests in flight and takes
--fake-latency per request), alertd (`python -m alertd run`, provider twilio
pointed at the fake, provider.max_concurrency at its default of 10 unless
--max-concurrency, limits per_number calls --limit per --per), and this load
generator, which sends --triggers notify requests from --clients concurrent
clients (sharing --keys API keys), round-robin over --numbers numbers, each
with its own message. --per is short (20 s, not the 15m of
config.example.yaml) so the summaries go out within the run.

It prints and writes to bench/results-storm.md:
- accepted in: first request sent to last answer received (goal < 5 s);
- none lost: every API log row ends 'initiated' or 'throttled', every
  throttled row points at a summary that was delivered and names its message,
  and the fake's created calls per number are the limit plus one summary;
- folded: calls per number at the fake <= limit + 1 summary, and no more
  than the limit in any window of --per (by the fake's arrival times);
- time to drain: until the fake has every first call, and every summary;
- the daemon's RSS at the end (VmRSS and VmHWM from /proc/PID/status).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import shlex
import sqlite3
import subprocess
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from harness import ROOT, FakeProvider, cpu_seconds, create_key, machine, report, stop, write_config
from harness import start_alertd as start_alertd_process

NOTIFY = "/api/v1/calls/notify"
CALLER_ID = "+15557654321"


def start_alertd(tmp: Path, fake: FakeProvider, args) -> tuple[subprocess.Popen, str, list[str]]:
    # the per-key limiter runs as in production, far above this burst on one key
    config, port = write_config(
        tmp, {"kind": "twilio", "account_sid": fake.account_sid, "auth_token": fake.auth_token,
              "api_base_url": fake.base_url, "numbers": [CALLER_ID],
              **({"max_concurrency": args.max_concurrency} if args.max_concurrency else {})},
        server={"rate_limit": {"requests": 10**9, "per": "1m"}},
        limits={"per_number": {"calls": args.limit, "per": f"{args.per:g}s"}})
    # one key per group of clients, as separate monitoring systems would have
    keys = [create_key(config, f"bench-{k}") for k in range(args.keys)]
    return start_alertd_process(tmp, config, port), f"http://127.0.0.1:{port}{NOTIFY}", keys


def numbers(n: int) -> list[str]:
    return [f"+1555{7000000 + k:07d}" for k in range(n)]


async def burst(url: str, keys: list[str], args) -> dict:
    """--triggers notify requests from --clients concurrent clients; each trigger has its own message."""
    to = numbers(args.numbers)
    queue = collections.deque(range(args.triggers))
    answers: dict[int, dict] = {}
    failures: list[str] = []
    connector = aiohttp.TCPConnector(limit=args.clients)

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def client(key: str) -> None:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            while queue:
                k = queue.popleft()
                body = json.dumps({"to": to[k % len(to)], "message": f"Alert {k}: service {k % 7} is down"})
                try:
                    async with session.post(url, data=body, headers=headers) as r:
                        data = await r.json()
                        if r.status != 200:
                            failures.append(f"{r.status} {json.dumps(data)[:200]}")
                        else:
                            answers[k] = data["calls"][0]
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    failures.append(repr(exc))

        t0 = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(client(keys[c % len(keys)]) for c in range(args.clients))), 120)
        t1 = time.monotonic()
    return {"start": t0, "accepted_in": t1 - t0, "answers": answers, "failures": failures}


def wait_for_fake(fake: FakeProvider, expect_first: int, expect_total: int, limit: int, timeout: float) -> dict:
    """Poll the fake until it has created ``expect_total`` calls; note when the first
    ``limit`` calls of every number (the burst's own) were all there."""
    deadline = time.monotonic() + timeout
    first_done = None
    while True:
        state = fake.command("created")
        per_to = state["created"]
        firsts = sum(min(len(v), limit) for v in per_to.values())
        total = sum(len(v) for v in per_to.values())
        if first_done is None and firsts >= expect_first:
            first_done = max(sorted(t for _, t, _ in v)[min(len(v), limit) - 1] for v in per_to.values())
        if total >= expect_total or time.monotonic() > deadline:
            return {"state": state, "first_done": first_done, "complete": total >= expect_total}
        time.sleep(0.25)


def read_store(db: Path) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        logs = [dict(r) for r in conn.execute("SELECT * FROM logs ORDER BY log_id")]
        pending = conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
    finally:
        conn.close()
    return {"logs": logs, "pending": pending}


def rss(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0]) // 1024  # MiB
    return out


def check(store: dict, fake_state: dict, burst_result: dict, args) -> dict:
    """Every way a trigger could be lost, counted; and what the fake saw per number."""
    logs = store["logs"]
    api_rows = [r for r in logs if r["source"] != "alertd:summary"]
    summaries = {r["log_id"]: r for r in logs if r["source"] == "alertd:summary"}
    statuses = collections.Counter(r["status"] for r in api_rows)
    created = fake_state["created"]
    calls_at_fake = {to: [c for c in v if c[0] == "call"] for to, v in created.items()}
    problems = []
    if len(api_rows) != args.triggers:
        problems.append(f"{len(api_rows)} API log rows for {args.triggers} triggers")
    if burst_result["failures"] or len(burst_result["answers"]) != args.triggers:
        problems.append(f"{len(burst_result['failures'])} notify requests failed: {burst_result['failures'][:3]}")
    bad = {s: n for s, n in statuses.items() if s not in ("initiated", "throttled")}
    if bad:
        problems.append(f"API rows not initiated or throttled: {bad}")
    undelivered = [s for s in summaries.values() if s["status"] != "initiated" or not s["call_sid"]]
    if undelivered:
        problems.append(f"{len(undelivered)} summaries not delivered")
    folded_counts = {sid: json.loads(s["params"])["folded"]["count"] for sid, s in summaries.items()}
    texts = {}
    for to, calls in calls_at_fake.items():
        for _, _, twiml in calls:
            texts.setdefault(to, []).append(twiml or "")
    unnamed = 0
    per_summary = collections.Counter()
    for r in api_rows:
        if r["status"] == "throttled":
            sid = r["summary_log_id"]
            per_summary[sid] += 1
            if sid not in summaries:
                problems.append(f"log {r['log_id']} throttled without a summary")
                continue
            if not any(r["message"] in t and "more alert" in t for t in texts.get(r["to_number"], [])):
                unnamed += 1
        elif r["status"] == "initiated" and not r["call_sid"]:
            problems.append(f"log {r['log_id']} initiated without a call sid")
    if unnamed:
        problems.append(f"{unnamed} throttled alerts not named in their summary call at the fake")
    if dict(per_summary) != folded_counts:
        problems.append("a summary's count differs from the rows folded into it")
    if store["pending"]:
        problems.append(f"{store['pending']} outbox items still pending")
    fake_total = sum(len(v) for v in calls_at_fake.values())
    expected = statuses.get("initiated", 0) + len(summaries)
    if fake_total != expected:
        problems.append(f"the fake created {fake_total} calls, alertd sent {expected}")
    per_number = [len(v) for v in calls_at_fake.values()]
    summaries_per_number = collections.Counter(s["to_number"] for s in summaries.values())
    window_max = 0
    for calls in calls_at_fake.values():
        times = sorted(t for _, t, _ in calls)
        for i, t in enumerate(times):
            window_max = max(window_max, sum(1 for u in times[i:] if u - t < args.per))
    return {"statuses": statuses, "summaries": len(summaries), "folded": sum(folded_counts.values()),
            "problems": problems, "per_number_max": max(per_number, default=0),
            "per_number_min": min(per_number, default=0), "numbers_reached": len(calls_at_fake),
            "summaries_per_number_max": max(summaries_per_number.values(), default=0),
            "window_max": window_max, "outcomes": fake_state["outcomes"]}


def rows(res: dict, c: dict, args) -> list[tuple[str, str, str, str]]:
    ok = lambda cond: "PASS" if cond else "FAIL"  # noqa: E731
    s = c["statuses"]
    return [
        (f"{args.triggers} notify requests, {args.clients} clients, to {args.numbers} numbers: accepted in",
         "< 5 s", f"{res['accepted_in']:.2f} s ({args.triggers / res['accepted_in']:.0f} req/s)",
         ok(res["accepted_in"] < 5)),
        ("none lost: rows initiated / throttled / other; summaries delivered", "0 other, 0 problems",
         f"{s.get('initiated', 0)} / {s.get('throttled', 0)} /"
         f" {sum(s.values()) - s.get('initiated', 0) - s.get('throttled', 0)};"
         f" {c['summaries']} summaries folding {c['folded']}; {len(c['problems'])} problems",
         ok(not c["problems"])),
        (f"calls per number at the fake (limit {args.limit} + 1 summary)", f"<= {args.limit + 1}",
         f"max {c['per_number_max']}, min {c['per_number_min']} over {c['numbers_reached']} numbers;"
         f" summaries per number max {c['summaries_per_number_max']}",
         ok(c["per_number_max"] <= args.limit + 1 and c["summaries_per_number_max"] <= 1)),
        (f"   most calls to one number in any {args.per:g} s window at the fake", f"<= {args.limit}",
         f"{c['window_max']}", ok(c["window_max"] <= args.limit)),
        (f"time to drain the burst (every first call at the fake)", "",
         f"{res['first_drain']:.2f} s" if res["first_drain"] is not None else "not drained", ""),
        (f"time to drain with the summaries (window per: {args.per:g} s)", "",
         f"{res['drain']:.2f} s" if res["complete"] else "not drained", ok(res["complete"])),
        ("provider requests: created / 429 throttled at the fake", "",
         f"{c['outcomes'].get('created', 0)} / {c['outcomes'].get('throttled', 0)}", ""),
        ("daemon memory at the end: VmRSS (peak VmHWM)", "",
         f"{res['rss']['VmRSS']} MiB ({res['rss']['VmHWM']} MiB); CPU {res['cpu']:.1f} s", ""),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--triggers", type=int, default=1000)
    p.add_argument("--numbers", type=int, default=50)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--keys", type=int, default=4, help="API keys the clients share (server.rate_limit is per key)")
    p.add_argument("--limit", type=int, default=3, help="limits.per_number.calls")
    p.add_argument("--per", type=float, default=20.0, help="limits.per_number.per, seconds")
    p.add_argument("--fake-concurrency", type=int, default=5)
    p.add_argument("--fake-latency", type=float, default=0.2)
    p.add_argument("--max-concurrency", type=int, default=0, help="alertd's provider.max_concurrency (0: default)")
    p.add_argument("--output", default=str(ROOT / "bench" / "results-storm.md"))
    args = p.parse_args()

    started = datetime.datetime.now().astimezone()
    about = machine()
    tmp = Path(tempfile.mkdtemp(prefix="alertd-storm-"))
    fake = proc = None
    try:
        fake = FakeProvider()
        fake.command(f"latency {args.fake_latency}")
        fake.command(f"concurrency {args.fake_concurrency}")
        proc, url, keys = start_alertd(tmp, fake, args)
        try:
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
        print(f"burst: {args.triggers} notify requests from {args.clients} clients to {args.numbers} numbers",
              flush=True)
        res = asyncio.run(burst(url, keys, args))
        print(f"  accepted in {res['accepted_in']:.2f} s; waiting for the summaries (per {args.per:g} s)",
              flush=True)
        allowed = sum(1 for a in res["answers"].values() if a["status"] != "throttled")
        summaries_expected = len({a["to"] for a in res["answers"].values() if a["status"] == "throttled"})
        waited = wait_for_fake(fake, allowed, allowed + summaries_expected, args.limit, args.per + 90)
        res["complete"] = waited["complete"]
        res["drain"] = time.monotonic() - res["start"]
        res["first_drain"] = waited["first_done"] - res["start"] if waited["first_done"] else None
        time.sleep(0.5)  # the last results are recorded just after the fake answers
        if proc.poll() is not None:
            raise RuntimeError(f"alertd exited with {proc.returncode} during the run")
        res["rss"], res["cpu"] = rss(proc.pid), cpu_seconds(proc.pid)
        store = read_store(tmp / "alertd.db")
        final = fake.command("created")
        result = check(store, final, res, args)
    finally:
        stop(proc)
        if fake is not None:
            fake.close()

    table = rows(res, result, args)
    command = "python bench/storm.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    other = sum(result["statuses"].values()) - result["statuses"].get("initiated", 0) \
        - result["statuses"].get("throttled", 0)
    notes = [
        f"alertd: `python -m alertd run`, provider twilio pointed at the fake, provider.max_concurrency"
        f" {args.max_concurrency or '10 (default)'}, dispatch at its defaults (backoff from 1 s, doubling,"
        f" Retry-After honoured), log level info (JSON to a file), limits.per_number {{calls: {args.limit},"
        f" per: {args.per:g}s}}: per is short so the summaries go out within the run"
        f" (config.example.yaml has 15m).",
        f"Fake Twilio (tests/fake_twilio.py via bench/fake_provider.py, its own process):"
        f" {args.fake_latency * 1000:.0f} ms per request, 429 with Retry-After: 1 beyond"
        f" {args.fake_concurrency} requests in flight.",
        f"Each trigger is one POST /api/v1/calls/notify to one number ({args.triggers // args.numbers} per"
        f" number, round-robin), each with its own message; the {args.clients} clients share {args.keys} API"
        f" keys (server.rate_limit, 600 a minute per key by default, would refuse one key's 1,000 at once).",
        f"'None lost' reads every log row in SQLite after the run ({other} API rows neither initiated nor"
        f" throttled), checks each summary's folded count against the rows pointing at it, that every"
        f" throttled message is named in a summary call the fake received, and that no outbox item is pending.",
        "Drain times count from the first request of the burst. A summary is due when the first call to its"
        " number leaves the window, counted from when the provider accepted that call (not when it was"
        " planned), so 'most calls in any window', from the fake's own arrival times, stays within the limit"
        " even for calls the fake held back with 429s.",
    ]
    if result["problems"]:
        notes.append("PROBLEMS: " + "; ".join(result["problems"][:10]))
    report("Storm benchmark: 1,000 triggers to 50 numbers", table, notes, args.output, started, about, command)
    shutil.rmtree(tmp, ignore_errors=True)
    passed = (not result["problems"] and res["accepted_in"] < 5 and res["complete"]
              and result["window_max"] <= args.limit and result["per_number_max"] <= args.limit + 1)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
