"""Benchmark of heartbeats: ping requests per second, and the deadline timer's cost and promptness.

    python bench/heartbeats.py          # from the repo root; about two minutes

Processes on loopback: the fake Twilio (bench/fake_provider.py), alertd
(`python -m alertd run`, provider twilio pointed at the fake, JSON logs at
info as in production) with --checks heartbeat rules, the yardstick of
bench/notify.py (bench/yardstick.py) and this load generator. It measures:

1. ping requests/s: GET /ping/UUID over --workers clients, closed loop, each
   request to the next of the long-period checks in turn, beside the
   yardstick's POST notify, in alternating rounds (ABBA); medians, the
   median of the per-round ratios, and the server CPU per request.
2. deadline checking with --checks heartbeats watched: all are pinged once
   (so every one has a deadline in the index); --lapse of them have a 20 s
   period and 1 s grace and are left to lapse, their deadlines spread over
   10 s. alertd logs one line per tick ("heartbeat deadlines": the CPU time
   of the tick and how long after the earliest deadline it handled it ran);
   the figures are read from that log, and every lapsed check must have
   flipped to down.
3. a start after a long stop: alertd is stopped, every check's last ping is
   set two days back in its database, and alertd is started again: all
   --checks deadlines are due at once. Measured: how long until every check
   has flipped once, the CPU of each turn of the timer (at most 200
   deadlines), and the slowest answer of GET /healthz, polled meanwhile.

Prints a table and writes it to bench/results-heartbeats.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from harness import (ROOT, FakeProvider, cpu_seconds, machine, percentile, report, start_alertd, stop,
                     tear_down, use_uvloop, write_config)
from notify import CALLER_ID, ONE, Server, start_yardstick

PERIOD, GRACE = 20.0, 1.0  # of the checks left to lapse


def write_rules(tmp: Path, checks: int, lapse: int) -> tuple[list[str], list[str]]:
    """``checks`` heartbeat rules in files of 1,000; returns (long-period uuids, lapsing uuids)."""
    uuids = [str(uuid.uuid4()) for _ in range(checks)]
    for start in range(0, checks, 1000):
        lines = ["rules:"]
        for i in range(start, min(start + 1000, checks)):
            every, grace = ("20s", "1s") if i >= checks - lapse else ("1h", "10m")
            lines += [f"  - id: hb-{i:05d}",
                      f"    source: {{heartbeat: {{uuid: {uuids[i]}, every: {every}, grace: {grace}}}}}",
                      f"    notify: {{to: '+1555{i:07d}', action_type: sms,"
                      " message: '{{ event.check }} is down: {{ event.reason }}'}"]
        (tmp / "rules" / f"beats-{start // 1000:02d}.yaml").write_text("\n".join(lines) + "\n")
    return uuids[:checks - lapse], uuids[checks - lapse:]


async def closed_loop(session, server: Server, request, workers: int, seconds: float) -> dict:
    counts = {"ok": 0, "error": 0, "n": 0}
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            counts["n"] += 1
            try:
                async with request(session, counts["n"]) as r:
                    await r.read()
                    counts["ok" if r.status == 200 else "error"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counts["error"] += 1

    cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed, cpu = time.monotonic() - t0, cpu_seconds(server.proc.pid) - cpu0
    if counts["error"]:
        raise RuntimeError(f"{server.name}: {counts['error']} failed requests")
    return {"rate": counts["ok"] / elapsed, "ok": counts["ok"], "cpu_ms": 1000 * cpu / max(counts["ok"], 1)}


async def throughput(session, alertd: Server, yard: Server, fake: FakeProvider, uuids: list[str], args) -> dict:
    base = f"http://127.0.0.1:{alertd.port}/ping/"

    def ping(s, n):
        return s.get(base + uuids[n % len(uuids)])

    def notify(s, n):
        return s.post(yard.url, data=ONE, headers=yard.headers)

    requests = {"alertd": ping, "yardstick": notify}
    for server in (alertd, yard):
        await closed_loop(session, server, requests[server.name], args.workers, args.warmup)
    rounds: dict[str, list[dict]] = {"alertd": [], "yardstick": []}
    ratios = []
    for i in range(args.rounds):
        for server in ((alertd, yard) if i % 4 in (0, 3) else (yard, alertd)):
            fake.command("reset")
            rounds[server.name].append(await closed_loop(session, server, requests[server.name], args.workers,
                                                         args.seconds))
        ratios.append(rounds["alertd"][-1]["rate"] / rounds["yardstick"][-1]["rate"])
        print(f"  round {i + 1}/{args.rounds}: ping {rounds['alertd'][-1]['rate']:7.0f} req/s,"
              f" yardstick notify {rounds['yardstick'][-1]['rate']:7.0f} req/s, ratio {ratios[-1]:.2f}", flush=True)
    return {"rate": {k: statistics.median(r["rate"] for r in v) for k, v in rounds.items()},
            "cpu_ms": {k: statistics.median(r["cpu_ms"] for r in v) for k, v in rounds.items()},
            "ratio": statistics.median(ratios), "ratios": ratios}


async def deadlines(session, alertd: Server, long: list[str], lapsing: list[str], log: Path, args) -> dict:
    base = f"http://127.0.0.1:{alertd.port}/ping/"
    queue = list(long)

    async def worker() -> None:
        while queue:
            async with session.get(base + queue.pop()) as r:
                if r.status != 200:
                    raise RuntimeError(f"ping answered {r.status}")
    await asyncio.gather(*(worker() for _ in range(args.workers)))
    offset = log.stat().st_size
    for u in lapsing:  # their deadlines spread over about 10 s
        async with session.get(base + u) as r:
            assert r.status == 200
        await asyncio.sleep(10.0 / len(lapsing))
    await asyncio.sleep(PERIOD + GRACE + 3)
    ticks, flips = [], 0
    until = time.monotonic() + 30
    while time.monotonic() < until:
        with open(log) as f:
            f.seek(offset)
            lines = [json.loads(x) for x in f if x.startswith("{")]
        ticks = [x for x in lines if x.get("event") == "heartbeat deadlines"]
        flips = sum(1 for x in lines if x.get("event") == "heartbeat flip" and x.get("new") == "down")
        if flips >= len(lapsing):
            break
        await asyncio.sleep(1)
    if not ticks:
        raise RuntimeError("no deadline tick in alertd's log")
    cpu = [t["cpu_ms"] for t in ticks]
    late = [t["late_ms"] for t in ticks]
    return {"ticks": len(ticks), "flips": flips, "cpu_p50": statistics.median(cpu), "cpu_max": max(cpu),
            "late_p50": statistics.median(late), "late_p99": percentile(late, 99), "late_max": max(late)}


def overdue(database: Path, checks: int, lapse: int) -> None:
    """Every check up, last pinged two days ago: each deadline long past, as after a long stop."""
    anchor = time.time() - 2 * 86400
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE heartbeats SET status = 'up', runs = '[]', reason = NULL, anchor_at = ?,"
                     " down_at = ? + CASE WHEN rule_id >= ? THEN ? ELSE 4200 END",
                     (anchor, anchor, f"hb-{checks - lapse:05d}", PERIOD + GRACE))


async def catch_up(session, alertd: Server, log: Path, checks: int) -> dict:
    url = f"http://127.0.0.1:{alertd.port}/healthz"
    waits: list[float] = []
    flips, ticks = 0, []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        start = time.monotonic()
        async with session.get(url) as r:
            await r.read()
        waits.append(time.monotonic() - start)
        with open(log) as f:
            lines = [json.loads(x) for x in f if x.startswith("{")]
        ticks = [x for x in lines if x.get("event") == "heartbeat deadlines"]
        flips = sum(x["flips"] for x in ticks)
        if flips >= checks:
            break
        await asyncio.sleep(0.05)
    if flips < checks:
        raise RuntimeError(f"only {flips} of {checks} checks flipped after a restart")
    first = min(datetime.datetime.fromisoformat(t["timestamp"]) for t in ticks)
    last = max(datetime.datetime.fromisoformat(t["timestamp"]) for t in ticks)
    cpu = [t["cpu_ms"] for t in ticks]
    return {"flips": flips, "turns": len(ticks), "span": (last - first).total_seconds(),
            "cpu_p50": statistics.median(cpu), "cpu_max": max(cpu), "healthz_max": max(waits) * 1000}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checks", type=int, default=10_000)
    p.add_argument("--lapse", type=int, default=100, help="of the checks, how many are left to lapse")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--output", default=str(ROOT / "bench" / "results-heartbeats.md"))
    args = p.parse_args()
    started, about = datetime.datetime.now().astimezone(), machine()
    tmp = Path(tempfile.mkdtemp(prefix="alertd-bench-hb-"))
    fake = alertd = yard = None
    try:
        fake = FakeProvider()
        config, port = write_config(tmp, {"kind": "twilio", "account_sid": fake.account_sid,
                                          "auth_token": fake.auth_token, "api_base_url": fake.base_url,
                                          "numbers": [CALLER_ID]})
        long, lapsing = write_rules(tmp, args.checks, args.lapse)
        t0 = time.monotonic()
        alertd = Server("alertd", start_alertd(tmp, config, port), port)
        ready = time.monotonic() - t0
        yard = start_yardstick(tmp, fake)
        use_uvloop()

        async def run():
            connector = aiohttp.TCPConnector(limit=max(args.workers, 64))
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as s:
                print(f"1. ping throughput: {args.rounds} rounds of {args.seconds:.0f} s, {args.workers} clients",
                      flush=True)
                tp = await throughput(s, alertd, yard, fake, long, args)
                print(f"2. deadlines: {args.checks} checks pinged, {args.lapse} left to lapse", flush=True)
                dl = await deadlines(s, alertd, long, lapsing, tmp / "alertd.log", args)
            return tp, dl

        async def restart():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
                return await catch_up(s, alertd, tmp / "alertd.log", args.checks)
        tp, dl = asyncio.run(run())
        print(f"3. a start with all {args.checks} deadlines long past", flush=True)
        stop(alertd.proc)
        overdue(tmp / "alertd.db", args.checks, args.lapse)
        alertd = Server("alertd", start_alertd(tmp, config, port), port)
        cu = asyncio.run(restart())
    finally:
        tear_down(tmp, fake, *(server.proc for server in (alertd, yard) if server is not None))

    table = [
        (f"1. ping req/s, {args.workers} clients: GET /ping/UUID", "", f"{tp['rate']['alertd']:.0f} req/s", ""),
        ("   yardstick POST notify (bench/notify.py's)", "", f"{tp['rate']['yardstick']:.0f} req/s", ""),
        ("   ping / yardstick (median of per-round ratios)", ">= 0.50", f"{tp['ratio']:.2f}",
         "PASS" if tp["ratio"] >= 0.5 else "FAIL"),
        ("   server CPU per request: ping / yardstick", "",
         f"{tp['cpu_ms']['alertd']:.2f} / {tp['cpu_ms']['yardstick']:.2f} ms", ""),
        (f"2. deadline tick CPU with {args.checks} checks: median (max)", "< 50 ms",
         f"{dl['cpu_p50']:.2f} ms ({dl['cpu_max']:.2f})", "PASS" if dl["cpu_max"] < 50 else "FAIL"),
        ("   deadline passed -> noticed: median / p99 / max", "< 2 s",
         f"{dl['late_p50']:.0f} / {dl['late_p99']:.0f} / {dl['late_max']:.0f} ms",
         "PASS" if dl["late_max"] < 2000 else "FAIL"),
        (f"   lapsed checks flipped to down ({dl['ticks']} ticks)", f"{args.lapse}", f"{dl['flips']}",
         "PASS" if dl["flips"] == args.lapse else "FAIL"),
        (f"3. start with {args.checks} deadlines past: every check flipped once", f"{args.checks}",
         f"{cu['flips']} in {cu['span']:.1f} s, {cu['turns']} turns", "PASS" if cu["flips"] == args.checks else "FAIL"),
        ("   CPU per turn of the timer: median (max)", "", f"{cu['cpu_p50']:.0f} ms ({cu['cpu_max']:.0f})", ""),
        ("   slowest GET /healthz meanwhile", "", f"{cu['healthz_max']:.0f} ms", ""),
    ]
    command = "python bench/heartbeats.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    notes = [
        f"alertd with {args.checks} heartbeat rules was ready {ready:.1f} s after start; provider twilio pointed"
        " at the fake; log level info, JSON lines to a file (which the deadline figures are read from).",
        f"Throughput: medians of {args.rounds} rounds of {args.seconds:.0f} s each, ABBA order; per-round ratios"
        f" {', '.join(f'{r:.2f}' for r in tp['ratios'])}. Every ping is stored (group commit), counted and"
        " pruned to the newest 100 of its check.",
        f"Deadlines: {args.lapse} checks with every {PERIOD:.0f}s, grace {GRACE:.0f}s pinged 10 s apart in all, the"
        f" other {args.checks - args.lapse} with every 1h. A tick's CPU is time.process_time() around it"
        " (it includes storing the flip); 'noticed' is the tick's time minus the earliest deadline it handled.",
        "Start after a long stop: the database's heartbeats are set to a last ping two days back while alertd is"
        " stopped; each flip also sends its notification (one SMS per check, to the fake), which the CPU per"
        " turn does not include but /healthz competes with.",
        f"Processes share {os.cpu_count()} cores with the rest of the machine: compare runs on the same machine only.",
    ]
    report("Heartbeats benchmark", table, notes, args.output, started, about, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
