"""Benchmark of failover and of each provider adapter.

    .venv/bin/python bench/failover.py            # from the repo root; about two minutes

1. With the first provider (Twilio) at a port where nothing listens, the time
   from sending a notify request to the backup's (a fake Telnyx) receiving
   its create request: N sequential requests, each to its own number,
   correlated by To at the fake; median and p99. Twice: with the circuit
   closed (every send asks Twilio first: routing.circuit_failures 1000, above
   the run's sends) and with it open (circuit_failures 1: after the first refusal
   Twilio is skipped for the cool-down).
2. notify throughput (closed loop, --workers clients) with alertd sending
   through each provider's fake in turn (tests/fake_*.py, each its own
   process), beside the yardstick of bench/notify.py measured in the same run
   in alternating rounds: what each adapter costs.

Prints a table and writes it to bench/results-failover.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from harness import FakeProvider, create_key, free_port, machine, percentile, report, stop, write_config
from harness import start_alertd as start_alertd_process
from notify import CALLER_ID, Server, closed_loop, start_yardstick

KINDS = ("twilio", "signalwire", "telnyx", "vonage", "plivo")


def entry(kind: str, fake: FakeProvider, name: str | None = None) -> dict:
    """A providers: entry for ``fake``."""
    creds = {k: v for k, v in fake.info.items() if k not in ("base_url", "pid")}
    return {"name": name or kind, "kind": kind, "api_base_url": fake.base_url, "numbers": [CALLER_ID],
            "timeout": "10s", **creds}


def start_alertd(tmp: Path, providers: list[dict], **routing) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    config, port = write_config(tmp, providers, routing=routing,
                                server={"rate_limit": {"requests": 10**9, "per": "1m"}})
    key = create_key(config)
    return Server("alertd", start_alertd_process(tmp, config, port), port, key)


async def to_backup(session, server: Server, backup: FakeProvider, n: int, prefix: int) -> dict:
    """N notify requests one after another; ms from sending each to the backup's receiving it."""
    backup.command("reset")
    sent: dict[str, float] = {}
    for i in range(n):
        to = f"+1555{prefix + i:07d}"
        body = json.dumps({"to": to, "message": "Failover probe."}).encode()
        sent[to] = time.monotonic()
        async with session.post(server.url, data=body, headers=server.headers) as r:
            data = await r.json()
            if r.status != 200 or data["calls"][0]["status"] != "initiated":
                raise RuntimeError(f"notify: HTTP {r.status} {json.dumps(data)[:300]}")
    arrivals = backup.command("arrivals")["arrivals"]
    lat = [(min(arrivals[to]) - t) * 1000 for to, t in sent.items() if to in arrivals]
    if len(lat) != n:
        raise RuntimeError(f"{n - len(lat)} of {n} notifications never reached the backup")
    return {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": max(lat)}


async def per_provider(session, yard: Server, yard_fake: FakeProvider, tmp: Path, args) -> dict:
    """req/s through each kind's fake, each round beside a yardstick round (ABBA)."""
    out = {}
    for kind in args.kinds:
        fake = FakeProvider(kind)
        alertd = None
        try:
            alertd = start_alertd(tmp / kind, [entry(kind, fake)])
            for server in (alertd, yard):
                await closed_loop(session, server, args.workers, args.warmup, 10 ** 6)
            rates = {"alertd": [], "yardstick": []}
            cpu = []
            for i in range(args.rounds):
                for server in ((alertd, yard) if i % 4 in (0, 3) else (yard, alertd)):
                    (fake if server is alertd else yard_fake).command("reset")
                    res = await closed_loop(session, server, args.workers, args.seconds, 10 ** 6)
                    if res["errors"]:
                        raise RuntimeError(f"{kind}: {res['errors']} failed requests, {res['statuses']}")
                    rates[server.name].append(res["rate"])
                    if server is alertd:
                        cpu.append(res["cpu_ms"])
            ratios = [a / y for a, y in zip(rates["alertd"], rates["yardstick"])]
            out[kind] = {"rate": statistics.median(rates["alertd"]), "yard": statistics.median(rates["yardstick"]),
                         "ratio": statistics.median(ratios), "cpu_ms": statistics.median(cpu)}
            print(f"  {kind:<10} {out[kind]['rate']:6.0f} req/s, yardstick {out[kind]['yard']:6.0f},"
                  f" ratio {out[kind]['ratio']:.2f}", flush=True)
        finally:
            if alertd is not None:
                stop(alertd.proc)
            fake.close()
    return out


async def run(tmp: Path, args) -> tuple[dict, dict, dict]:
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    backup = FakeProvider("telnyx")
    yard_fake = FakeProvider("twilio")
    servers = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            main = {"name": "main", "kind": "twilio", "account_sid": "AC" + "0" * 32, "auth_token": "t",
                    "api_base_url": refused, "numbers": [CALLER_ID], "timeout": "10s"}
            print(f"1. notify -> backup, first provider refusing: {args.n} requests, circuit closed", flush=True)
            closed = start_alertd(tmp / "closed", [main, entry("telnyx", backup, "tx")], circuit_failures=1000)
            servers.append(closed)
            await to_backup(session, closed, backup, 10, 9000000)  # warm up
            shut = await to_backup(session, closed, backup, args.n, 1000000)
            stop(closed.proc)
            print("   ... and with the circuit open", flush=True)
            opened = start_alertd(tmp / "open", [main, entry("telnyx", backup, "tx")], circuit_failures=1,
                                  circuit_cooldown="1h")
            servers.append(opened)
            await to_backup(session, opened, backup, 10, 9100000)  # opens the circuit, warms up
            open_ = await to_backup(session, opened, backup, args.n, 2000000)
            stop(opened.proc)
            print(f"2. throughput through each provider's fake, {args.rounds} rounds of {args.seconds:.0f} s",
                  flush=True)
            yard = start_yardstick(tmp, yard_fake)
            servers.append(yard)
            kinds = await per_provider(session, yard, yard_fake, tmp, args)
    finally:
        for s in servers:
            stop(s.proc)
        backup.close()
        yard_fake.close()
    return shut, open_, kinds


def rows(shut: dict, open_: dict, kinds: dict, args) -> list[tuple[str, str, str, str]]:
    table = [
        (f"1. notify -> backup request, first refusing, circuit closed: p50 / p99 of {args.n}", "< 1000 ms",
         f"{shut['p50']:.1f} / {shut['p99']:.1f} ms", "PASS" if shut["p99"] < 1000 else "FAIL"),
        (f"   circuit open: p50 / p99 of {args.n}", "< 50 ms", f"{open_['p50']:.1f} / {open_['p99']:.1f} ms",
         "PASS" if open_["p99"] < 50 else "FAIL"),
    ]
    for i, (kind, k) in enumerate(kinds.items()):
        table.append((f"{'2.' if i == 0 else '  '} req/s through {kind}, {args.workers} clients: alertd / yardstick",
                      "", f"{k['rate']:.0f} / {k['yard']:.0f} (= {k['ratio']:.2f}); {k['cpu_ms']:.2f} ms CPU/req",
                      ""))
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="notify requests per failover figure")
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--output", default=str(Path(__file__).with_name("results-failover.md")))
    args = ap.parse_args()
    started = datetime.datetime.now().astimezone()
    about = machine()
    tmp = Path(tempfile.mkdtemp(prefix="alertd-bench-failover-"))
    try:
        shut, open_, kinds = asyncio.run(run(tmp, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = rows(shut, open_, kinds, args)
    notes = [
        "1: Twilio at a loopback port nobody listens on (the connection is refused at once), Telnyx's fake as the "
        "backup; closed: every send asks Twilio first; open: Twilio is skipped until the cool-down (1 h).",
        "2: one provider at a time; the yardstick (bench/yardstick.py: Starlette, one SQLite insert, one aiohttp "
        "POST to the Twilio fake) in alternating rounds; ratio = median of per-round alertd/yardstick.",
        "Every fake is its own process (bench/fake_provider.py --kind); the cores are shared by all processes.",
    ]
    report("alertd failover benchmark", table, notes, args.output, started, about,
           "python bench/failover.py " + shlex.join(sys.argv[1:]))
    return 0 if all(r[3] != "FAIL" for r in table) else 1


if __name__ == "__main__":
    sys.exit(main())
