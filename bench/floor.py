"""What the notify goals leave room for: the yardstick, and the yardstick plus what alertd keeps.

    python bench/floor.py            # from the repo root; about two minutes

bench/notify.py sets alertd beside the yardstick (bench/yardstick.py: Starlette, one SQLite
insert, one aiohttp POST). Two parts of alertd's notify path stay whatever else is cut: the
call goes through the official twilio library, and what the provider answered is written
back to the store after the call (the durable outbox's outcome; without it a restart would
send again what was sent). This script measures what those two parts cost on their own.
Five servers on one fake Twilio, each driven by bench/notify.py's closed loop (--workers
clients, --seconds a round), the order rotated every round:

    yardstick          bench/yardstick.py
    + library          the call made through the twilio library (--twilio-library)
    + outcome          the sid written to the row after the call (--outcome)
    floor              both: the least a notify can do and keep the library and the outcome
    alertd             python -m alertd run, as bench/notify.py starts it

For each: the median req/s and server CPU per request, and the medians of the per-round
ratios to the yardstick's (the machine's load drifts between rounds, less within one).
The goals of the notify figures (req/s at least 0.8x the yardstick's, CPU per request at
most 1.3x) are checked against the floor and alertd. Writes bench/results-floor.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from harness import FakeProvider, free_port, machine, report, spawn, tear_down, use_uvloop, wait_http, PYTHON, ROOT
from notify import Server, closed_loop, start_alertd

RATE_GOAL, CPU_GOAL = 0.8, 1.3
VARIANTS = [  # name, yardstick.py options
    ("yardstick", []),
    ("+ library", ["--twilio-library"]),
    ("+ outcome", ["--outcome"]),
    ("floor", ["--twilio-library", "--outcome"]),
]


def start_variant(tmp: Path, fake: FakeProvider, index: int, name: str, options: list[str]) -> Server:
    port = free_port()
    with open(tmp / f"yardstick-{index}.log", "w") as log:
        proc = spawn([PYTHON, str(ROOT / "bench" / "yardstick.py"), "--port", str(port), "--provider", fake.base_url,
                      "--account-sid", fake.account_sid, "--auth-token", fake.auth_token,
                      "--database", str(tmp / f"yardstick-{index}.db"), *options],
                     stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return Server(name, proc, port)


async def measure(servers: list[Server], fake: FakeProvider, args) -> dict[str, list[dict]]:
    rounds: dict[str, list[dict]] = {s.name: [] for s in servers}
    connector = aiohttp.TCPConnector(limit=max(args.workers, 64))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for server in servers:  # warm up: connections, caches, SQLite pages
            await closed_loop(session, server, args.workers, args.warmup, 10 ** 6)
        for i in range(args.rounds):
            for server in servers[i % len(servers):] + servers[:i % len(servers)]:
                fake.command("reset")  # keeps the fake's request list (and its cost) small
                res = await closed_loop(session, server, args.workers, args.seconds, 10 ** 6)
                if res["errors"]:
                    raise RuntimeError(f"{server.name}: {res['errors']} failed requests, statuses {res['statuses']}")
                rounds[server.name].append(res)
            print(f"  round {i + 1}/{args.rounds}: " + ", ".join(
                f"{name} {rs[-1]['rate']:.0f} req/s {rs[-1]['cpu_ms']:.3f} ms" for name, rs in rounds.items()),
                flush=True)
    return rounds


def summary(rounds: dict[str, list[dict]]) -> dict[str, dict]:
    base = rounds["yardstick"]
    out = {}
    for name, rs in rounds.items():
        out[name] = {
            "rate": statistics.median(r["rate"] for r in rs),
            "cpu_ms": statistics.median(r["cpu_ms"] for r in rs),
            "rate_ratio": statistics.median(r["rate"] / b["rate"] for r, b in zip(rs, base)),
            "cpu_ratio": statistics.median(r["cpu_ms"] / b["cpu_ms"] for r, b in zip(rs, base)),
        }
    return out


def rows(s: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    table = []
    for name, what in (("yardstick", "yardstick (Starlette + 1 SQLite insert + 1 aiohttp POST)"),
                       ("+ library", "yardstick + the call through the twilio library"),
                       ("+ outcome", "yardstick + the outcome written after the call"),
                       ("floor", "floor: yardstick + library + outcome"),
                       ("alertd", "alertd")):
        f = s[name]
        gated = name in ("floor", "alertd")
        table.append((f"{what}: req/s, ratio", f">= {RATE_GOAL:.2f}" if gated else "",
                      f"{f['rate']:.0f} req/s, {f['rate_ratio']:.2f}",
                      ("PASS" if f["rate_ratio"] >= RATE_GOAL else "FAIL") if gated else ""))
        table.append(("   server CPU per request, ratio", f"<= {CPU_GOAL:.2f}x" if gated else "",
                      f"{f['cpu_ms']:.3f} ms, {f['cpu_ratio']:.2f}x",
                      ("PASS" if f["cpu_ratio"] <= CPU_GOAL else "FAIL") if gated else ""))
    return table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--seconds", type=float, default=3.0, help="length of one server's turn in a round")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    p.add_argument("--output", default=str(ROOT / "bench" / "results-floor.md"))
    args = p.parse_args()

    started = datetime.datetime.now().astimezone()
    about = machine()
    load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="alertd-bench-"))
    fake, servers = None, []
    try:
        fake = FakeProvider()
        for index, (name, options) in enumerate(VARIANTS):
            servers.append(start_variant(tmp, fake, index, name, options))
        servers.append(start_alertd(tmp, fake, "info"))
        use_uvloop()
        print(f"{args.rounds} rounds, each server {args.seconds:.0f} s a round, {args.workers} clients", flush=True)
        rounds = asyncio.run(measure(servers, fake, args))
        for server in servers:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode} during the run")
    finally:
        tear_down(tmp, fake, *(server.proc for server in servers), keep=args.keep)

    s = summary(rounds)
    command = "python bench/floor.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    notes = [
        "Ratios are medians of per-round ratios to the yardstick's round; the order of the five servers rotates"
        " every round.",
        "The library's call is made as alertd makes it: through the library's client, API domain and"
        " 2010-04-01 version (alertd/providers/twilio.py), over alertd's own HTTP layer for it"
        " (alertd/providers/twilio_http.py: form encoding and auth header done once).",
        "The outcome is an UPDATE of the row just inserted, autocommitted (WAL, synchronous=NORMAL); alertd"
        " commits its outcomes in groups.",
        f"What the floor leaves for everything else alertd does (key check, rate limit, validation, rules, the"
        f" trigger log, logging): {s['floor']['cpu_ratio']:.2f}x of the yardstick's CPU is spent before any of it,"
        f" against a goal of {CPU_GOAL:.2f}x.",
    ]
    if load_at_start > 1.0:
        notes.append(f"NOISY: the load average was {load_at_start:.2f} at the start.")
    report("Benchmark: the floor under the notify goals", rows(s), notes, args.output, started, about, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
