"""Benchmark of POST /api/v1/calls/notify.

    /tmp/venv/bin/python bench/notify.py            # from the repo root; about a minute

Four processes on loopback: the fake Twilio (bench/fake_provider.py), alertd
(`python -m alertd run`, provider twilio pointed at the fake, log level info
as in production, stdout to a file), the yardstick (bench/yardstick.py) and
this load generator. It measures:

1. requests/s with one recipient, closed loop with --workers concurrent
   clients, alertd and the yardstick in alternating rounds (ABBA order so a
   drift in machine load does not favour one); the medians and the median of
   the per-round ratios. Also the server CPU time per request, which the
   sharing of the 2 cores between the four processes does not distort.
2. at a steady --rate requests/s sent on a fixed schedule (open loop), the
   time from sending the notify request to the fake receiving the Twilio
   create request, correlated by a unique To number; time.monotonic() is
   CLOCK_MONOTONIC, one clock for every process on the machine.
3. the wall time of one notify request with 10 recipients when the fake takes
   300 ms to answer each create request.

Prints a table and writes it to bench/results-notify.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from harness import (PYTHON, ROOT, FakeProvider, cpu_seconds, create_key, free_port, machine, percentile, probed,
                     read_probe, report, spawn, tear_down, use_uvloop, wait_http, write_config)
from harness import start_alertd as start_alertd_process

NOTIFY = "/api/v1/calls/notify"
CALLER_ID = "+15557654321"
ONE = json.dumps({"to": "+15551230001", "message": "Server down: db1 is not answering."}).encode()


# --- the systems under test ----------------------------------------------------
class Server:
    def __init__(self, name: str, proc: subprocess.Popen, port: int, key: str | None = None,
                 probe: Path | None = None):
        self.name, self.proc, self.port, self.probe = name, proc, port, probe
        self.url = f"http://127.0.0.1:{port}{NOTIFY}"
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"


def start_alertd(tmp: Path, fake: FakeProvider, log_level: str, database: str | None = None) -> Server:
    # the per-key limiter runs as in production, far above the load (a bench sends ~1000/s on one key)
    config, port = write_config(
        tmp, {"kind": "twilio", "account_sid": fake.account_sid, "auth_token": fake.auth_token,
              "api_base_url": fake.base_url, "numbers": [CALLER_ID]},
        server={"rate_limit": {"requests": 10**9, "per": "1m"}}, log={"level": log_level, "format": "json"},
        **({"database": database} if database else {}))
    key = create_key(config)
    probe = tmp / "alertd.lag"
    return Server("alertd", start_alertd_process(tmp, config, port, probe), port, key, probe)


def start_yardstick(tmp: Path, fake: FakeProvider, database: str | None = None) -> Server:
    port = free_port()
    log = open(tmp / "yardstick.log", "w")
    probe = tmp / "yardstick.lag"
    proc = spawn(probed([str(ROOT / "bench" / "yardstick.py"), "--port", str(port),
                         "--provider", fake.base_url, "--account-sid", fake.account_sid,
                         "--auth-token", fake.auth_token, "--database", database or str(tmp / "yardstick.db")], probe),
                 stdout=log, stderr=subprocess.STDOUT)
    log.close()
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return Server("yardstick", proc, port, probe=probe)


# --- 1. throughput -------------------------------------------------------------------
async def closed_loop(session: aiohttp.ClientSession, server: Server, workers: int, seconds: float,
                      max_requests: int) -> dict:
    """--workers clients, each sending its next request when the last is answered."""
    counts = {"ok": 0, "error": 0, "issued": 0}
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline and counts["issued"] < max_requests:
            counts["issued"] += 1
            try:
                async with session.post(server.url, data=ONE, headers=server.headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    counts["ok" if r.status == 200 else "error"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counts["error"] += 1

    cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(workers))), seconds + 30)
    elapsed, cpu = time.monotonic() - t0, cpu_seconds(server.proc.pid) - cpu0
    return {"rate": counts["ok"] / elapsed, "ok": counts["ok"], "errors": counts["error"], "statuses": statuses,
            "cpu_ms": 1000 * cpu / max(counts["ok"], 1), "elapsed": elapsed}


async def throughput(session, alertd: Server, yard: Server, fake: FakeProvider, args) -> dict:
    for server in (alertd, yard):  # warm up: connections, caches, SQLite pages
        await closed_loop(session, server, args.workers, args.warmup, 10 ** 6)
    rounds: dict[str, list[dict]] = {"alertd": [], "yardstick": []}
    ratios = []
    for i in range(args.rounds):
        order = (alertd, yard) if i % 4 in (0, 3) else (yard, alertd)  # ABBA
        for server in order:
            fake.command("reset")  # keeps the fake's request list (and its cost) small
            res = await closed_loop(session, server, args.workers, args.seconds, 10 ** 6)
            if res["errors"]:
                raise RuntimeError(f"{server.name}: {res['errors']} failed requests, statuses {res['statuses']}")
            rounds[server.name].append(res)
        ratios.append(rounds["alertd"][-1]["rate"] / rounds["yardstick"][-1]["rate"])
        print(f"  round {i + 1}/{args.rounds}: alertd {rounds['alertd'][-1]['rate']:7.0f} req/s,"
              f" yardstick {rounds['yardstick'][-1]['rate']:7.0f} req/s, ratio {ratios[-1]:.2f}", flush=True)
    med = {name: statistics.median(r["rate"] for r in rs) for name, rs in rounds.items()}
    cpu = {name: statistics.median(r["cpu_ms"] for r in rs) for name, rs in rounds.items()}
    return {"rate": med, "cpu_ms": cpu, "ratio": statistics.median(ratios), "ratios": ratios,
            "requests": sum(r["ok"] for rs in rounds.values() for r in rs)}


# --- 2. latency to the provider at a fixed rate ----------------------------------------
async def open_loop(session, server: Server, fake: FakeProvider, rate: float, seconds: float,
                    prefix: int) -> dict:
    """Send on a fixed schedule regardless of answers; correlate by a unique To number."""
    n = int(rate * seconds)
    fake.command("reset")
    sent: dict[str, float] = {}
    answered: list[float] = []
    failures: list[int] = []
    late: list[float] = []

    async def one(to: str) -> None:
        body = json.dumps({"to": to, "message": "Latency probe."}).encode()
        sent[to] = start = time.monotonic()
        try:
            async with session.post(server.url, data=body, headers=server.headers) as r:
                await r.read()
                if r.status != 200:
                    failures.append(r.status)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            failures.append(0)
        answered.append(time.monotonic() - start)

    tasks = []
    t0 = time.monotonic() + 0.05
    window_start = time.monotonic()
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(time.monotonic() - due)
        tasks.append(asyncio.create_task(one(f"+1555{prefix + i:07d}")))
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    window_end = time.monotonic()
    await asyncio.sleep(1.0)  # the probe flushes its file every half second
    probe = read_probe(server.probe, window_start, window_end)
    arrivals = fake.command("arrivals")["arrivals"]
    lat = [min(arrivals[to]) - t for to, t in sent.items() if to in arrivals]
    if failures or len(lat) != n:
        raise RuntimeError(f"{server.name}: {len(failures)} failed notify requests ({failures[:5]}),"
                           f" {n - len(lat)} never reached the provider")
    lags = probe["lags"] or [0.0]
    return {"n": n, "p50": percentile(lat, 50) * 1000, "p99": percentile(lat, 99) * 1000,
            "p999": percentile(lat, 99.9) * 1000, "max": max(lat) * 1000,
            "lag": {p: percentile(lags, p) * 1000 for p in (50, 99, 99.9)} | {"max": max(lags) * 1000,
                                                                              "n": len(probe["lags"])},
            "gc": gc_summary(probe["gc"]), "rtt_p50": percentile(answered, 50) * 1000,
            "rtt_p99": percentile(answered, 99) * 1000, "late_max": max(late) * 1000}


def gc_summary(pauses: list[tuple[int, float]]) -> dict:
    """Per generation: how many collections and the longest (ms)."""
    out = {}
    for gen in (0, 1, 2):
        durations = [d for g, d in pauses if g == gen]
        out[gen] = (len(durations), max(durations, default=0.0) * 1000)
    return out


def lag_text(lat: dict) -> str:
    lag = lat["lag"]
    return f"{lag[50]:.2f} / {lag[99]:.2f} / {lag[99.9]:.2f} / {lag['max']:.1f} ms"


def gc_text(lat: dict) -> str:
    return ", ".join(f"gen{g} {n} (max {ms:.1f} ms)" for g, (n, ms) in lat["gc"].items())


# --- 3. ten recipients, slow provider ---------------------------------------------------
async def fan_out(session, server: Server, fake: FakeProvider, repeats: int, provider_latency: float) -> dict:
    fake.command("reset")
    fake.command(f"latency {provider_latency}")
    walls = []
    try:
        for k in range(repeats):
            to = [f"+1555{3000000 + 10 * k + j:07d}" for j in range(10)]
            body = json.dumps({"to": to, "message": "Ten recipients."}).encode()
            start = time.monotonic()
            async with session.post(server.url, data=body, headers=server.headers) as r:
                data = await r.json()
            walls.append(time.monotonic() - start)
            statuses = [c.get("status") for c in data.get("calls", [])]
            if r.status != 200 or statuses != ["initiated"] * 10:
                raise RuntimeError(f"10 recipients: HTTP {r.status}, {json.dumps(data)[:300]}")
    finally:
        fake.command("latency 0")
    return {"median": statistics.median(walls), "max": max(walls), "walls": walls}


# --- report --------------------------------------------------------------------------------
def rows(tp: dict, lat: dict, ylat: dict, fan: dict, args,
         lite: dict | None = None) -> list[tuple[str, str, str, str]]:
    """(figure, goal, measured, PASS/FAIL) lines of the table; a goal-less line is context."""
    beside = [] if lite is None else [
        ("4. alertd on SQLite, same run: req/s; server CPU per request", "",
         f"{lite['rate']:.0f} req/s; {lite['cpu_ms']:.2f} ms", ""),
        (f"   notify -> provider at {args.rate:.0f}/s: p50 / p99", "",
         f"{lite['lat']['p50']:.1f} / {lite['lat']['p99']:.1f} ms", ""),
    ]
    return [
        (f"1. req/s, 1 recipient, {args.workers} clients: alertd", "",
         f"{tp['rate']['alertd']:.0f} req/s", ""),
        (f"   yardstick (Starlette + 1 {'PostgreSQL' if args.postgres else 'SQLite'} insert + 1 aiohttp POST)", "",
         f"{tp['rate']['yardstick']:.0f} req/s", ""),
        ("   alertd / yardstick (median of per-round ratios)", ">= 0.50",
         f"{tp['ratio']:.2f}", "PASS" if tp["ratio"] >= 0.5 else "FAIL"),
        ("   server CPU per request: alertd / yardstick", "",
         f"{tp['cpu_ms']['alertd']:.2f} / {tp['cpu_ms']['yardstick']:.2f} ms"
         f" (= {tp['cpu_ms']['alertd'] / tp['cpu_ms']['yardstick']:.2f}x)", ""),
        (f"2. notify -> provider request at {args.rate:.0f}/s: p50", "", f"{lat['p50']:.1f} ms", ""),
        # on PostgreSQL every write is a network round trip: the goal is the yardstick's, doubled
        ("   p99", f"< {2 * ylat['p99']:.1f} ms (2x yardstick)" if args.postgres else "< 10 ms", f"{lat['p99']:.1f} ms",
         "PASS" if lat["p99"] < (2 * ylat["p99"] if args.postgres else 10) else "FAIL"),
        ("   p99.9; max; notify round trip p50 / p99", "",
         f"{lat['p999']:.1f}; {lat['max']:.1f}; {lat['rtt_p50']:.1f} / {lat['rtt_p99']:.1f} ms", ""),
        ("   yardstick, same rate: p50 / p99 / p99.9 / max", "",
         f"{ylat['p50']:.1f} / {ylat['p99']:.1f} / {ylat['p999']:.1f} / {ylat['max']:.1f} ms", ""),
        ("   alertd p99 / yardstick p99", "", f"{lat['p99'] / ylat['p99']:.2f}x", ""),
        ("   event-loop lag, alertd: p50 / p99 / p99.9 / max", "", lag_text(lat), ""),
        ("   event-loop lag, yardstick: p50 / p99 / p99.9 / max", "", lag_text(ylat), ""),
        (f"3. 10 recipients, provider {args.provider_latency * 1000:.0f} ms: wall (median of {args.repeats})",
         "< 0.5 s", f"{fan['median']:.3f} s (max {fan['max']:.3f})", "PASS" if fan["median"] < 0.5 else "FAIL"),
        *beside,
    ]




async def run(alertd: Server, yard: Server, fake: FakeProvider, args) -> tuple:
    connector = aiohttp.TCPConnector(limit=max(args.workers, 64))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        print(f"1. throughput: {args.rounds} rounds of {args.seconds:.0f} s each, {args.workers} clients", flush=True)
        tp = await throughput(session, alertd, yard, fake, args)
        print(f"2. latency at {args.rate:.0f} req/s for {args.latency_seconds:.0f} s (alertd, then yardstick)",
              flush=True)
        lat = await open_loop(session, alertd, fake, args.rate, args.latency_seconds, 2000000)
        ylat = await open_loop(session, yard, fake, args.rate, args.latency_seconds, 4000000)
        print(f"3. 10 recipients with a {args.provider_latency * 1000:.0f} ms provider, {args.repeats} times",
              flush=True)
        fan = await fan_out(session, alertd, fake, args.repeats, args.provider_latency)
        lite = None
        if args.lite is not None:  # --postgres: what several nodes cost, beside one box
            print("4. alertd on SQLite, the same figures, for comparison", flush=True)
            await closed_loop(session, args.lite, args.workers, args.warmup, 10 ** 6)
            runs = []
            for _ in range(args.rounds):
                fake.command("reset")
                runs.append(await closed_loop(session, args.lite, args.workers, args.seconds, 10 ** 6))
            lite = {"rate": statistics.median(r["rate"] for r in runs),
                    "cpu_ms": statistics.median(r["cpu_ms"] for r in runs),
                    "lat": await open_loop(session, args.lite, fake, args.rate, args.latency_seconds, 6000000)}
    return tp, lat, ylat, fan, lite


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0, help="length of one throughput round")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--latency-seconds", type=float, default=10.0)
    p.add_argument("--provider-latency", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--alertd-log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary folder (logs, databases, the loop-lag probes' files) and print its path")
    p.add_argument("--output", default=None, help="default bench/results-notify.md (-pg.md with --postgres)")
    p.add_argument("--postgres", action="store_true",
                   help="alertd and the yardstick on a throwaway PostgreSQL (durable commits, tests/pg.py)")
    args = p.parse_args()
    args.output = args.output or str(ROOT / "bench" / ("results-notify-pg.md" if args.postgres else "results-notify.md"))

    started = datetime.datetime.now().astimezone()
    about = machine()
    load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="alertd-bench-"))
    fake = alertd = yard = pg = args.lite = None
    try:
        fake = FakeProvider()
        alertd_db = yard_db = None
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            import pg as pg_server  # the tests' throwaway server, here with durable commits
            pg = pg_server.start_server({"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"})
            alertd_db, yard_db = pg.create_database(), pg.create_database()
        alertd = start_alertd(tmp, fake, args.alertd_log_level, alertd_db)
        yard = start_yardstick(tmp, fake, yard_db)
        if args.postgres:  # and one on SQLite, so the table shows what several nodes cost
            (tmp / "sqlite").mkdir()
            args.lite = start_alertd(tmp / "sqlite", fake, args.alertd_log_level)
        use_uvloop()
        tp, lat, ylat, fan, lite = asyncio.run(run(alertd, yard, fake, args))
        for server in (alertd, yard):
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode} during the run")
    finally:
        tear_down(tmp, fake, *(server.proc for server in (alertd, yard, args.lite) if server is not None),
                  keep=args.keep)
        if pg is not None:
            pg.stop()

    table = rows(tp, lat, ylat, fan, args, lite)
    command = "python bench/notify.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    notes = [
        f"alertd runs as `python -m alertd run` with provider twilio pointed at the fake, log level"
        f" {args.alertd_log_level} (JSON lines to a file), provider.max_concurrency at its default;"
        f" the yardstick is bench/yardstick.py; both on uvicorn with uvloop + httptools.",
        f"Fake Twilio (tests/fake_twilio.py via bench/fake_provider.py), alertd, yardstick and the load"
        f" generator are four processes sharing {os.cpu_count()} cores, so req/s partly measures the"
        f" load generator and the fake; server CPU per request does not depend on that sharing.",
        f"Throughput: medians of {args.rounds} rounds of {args.seconds:.0f} s per server, ABBA order;"
        f" per-round ratios {', '.join(f'{r:.2f}' for r in tp['ratios'])}; {tp['requests']} requests in all.",
        f"Latency: {lat['n']} requests sent open loop (latest send {lat['late_max']:.1f} ms behind schedule),"
        f" each with its own To number; fake arrival minus client send, both time.monotonic().",
        f"Event-loop lag: bench/lagprobe.py asks each server's loop to run a callback every"
        f" 5 ms from a thread and logs the wait ({lat['lag']['n']} samples for alertd, {ylat['lag']['n']} for the"
        f" yardstick, during the latency run). Garbage collections meanwhile: alertd {gc_text(lat)};"
        f" yardstick {gc_text(ylat)}.",
        f"10 recipients: walls {', '.join(f'{w:.3f}' for w in fan['walls'])} s.",
    ]
    spread = max(tp["ratios"]) / min(tp["ratios"])
    if spread > 1.5 or load_at_start >= 1.0:
        notes.append(f"NOISY: load average {load_at_start:.2f} at start, per-round ratios spread {spread:.1f}x;"
                     f" other work on the machine squeezes both servers' rates toward the load generator's"
                     f" ceiling and flatters the req/s ratio: read the CPU-per-request ratio, or rerun when idle.")
    report("POST /api/v1/calls/notify benchmark", table, notes, args.output, started, about, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
