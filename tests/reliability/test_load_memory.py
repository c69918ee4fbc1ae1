"""Under a steady load the daemon's memory stays flat.

A real `alertd run` (provider twilio, pointed at FakeTwilio in this process)
gets mixed traffic on a fixed schedule, loopback only: notify calls to an
on-call team's worth of numbers, trigger-log queries, single log rows,
/healthz, and signed status callbacks for a quarter of the calls.

First a warm-up of WARMUP requests at WARMUP_RATE/s, by whose end what grows
once and then stops has grown: modules imported on first use, allocator
pools, SQLite's page cache (2 MiB) filling as the log grows. (A 150 s run at
100/s without it showed RSS rising 3 MiB over the first 4,500 notifications,
then flat to the end.) Then LOAD_SECONDS at RATE/s, during which VmRSS, read
from /proc/PID/status every second, may not grow by more than growth_limit().

Kept to about half a minute so the suite stays within a few minutes; for a
longer run: `LOAD_SECONDS=600 pytest tests/reliability/test_load_memory.py`.
"""
from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time

import aiohttp

from conftest import twilio_overrides
from daemon_process import DaemonProcess, unlimited

WARMUP, WARMUP_RATE = 5000, 500  # requests, requests per second
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", 20))
RATE = 100  # requests per second while measuring
WORKERS = 8
NUMBERS = int(os.environ.get("LOAD_NUMBERS", 50))  # recipients: an on-call team, not a phone book
MIB = 1024


def growth_limit(base_kib: float) -> float:
    """What the measured phase may add: 10% of the RSS at its start, at least 4 MiB."""
    return max(4 * MIB, 0.10 * base_kib)


async def load(daemon: DaemonProcess, fake, samples: list) -> dict:
    """Sends the schedule; appends (seconds, phase, VmRSS KiB) to ``samples``; returns counts per kind."""
    schedule = [WARMUP_RATE] * WARMUP + [RATE] * int(RATE * LOAD_SECONDS)
    phase = {"name": "warm-up"}
    counts = {"notify": 0, "logs": 0, "log": 0, "healthz": 0, "status callbacks": 0, "errors": 0}
    log_ids: list[int] = []
    queue: asyncio.Queue = asyncio.Queue(maxsize=WORKERS * 4)
    base, headers = daemon.base_url, daemon.headers
    callbacks: list[str] = []  # call sids to complete from a thread (FakeTwilio's callbacks block)

    async def worker(session: aiohttp.ClientSession) -> None:
        while (i := await queue.get()) is not None:
            kind = ("logs", "log", "healthz")[i // 10 % 3] if i % 10 == 0 else "notify"
            try:
                if kind == "notify":
                    body = {"to": f"+1555{8000000 + i % NUMBERS:07d}", "message": f"Load {i}: disk 91% on db{i % 7}",
                            "source": f"load-{i % 5}", "gather": i % 2 == 0}
                    async with session.post(base + "/api/v1/calls/notify", json=body, headers=headers) as r:
                        data = await r.json()
                    if r.status == 200:
                        call = data["calls"][0]
                        log_ids.append(call["log_id"])
                        if i % 4 == 1 and call.get("call_sid"):
                            callbacks.append(call["call_sid"])
                elif kind == "logs":
                    params = {"limit": "50", "source": f"load-{i % 5}"}
                    async with session.get(base + "/api/v1/calls/logs", params=params, headers=headers) as r:
                        await r.read()
                elif kind == "log" and log_ids:
                    async with session.get(f"{base}/api/v1/calls/logs/{log_ids[-1]}", headers=headers) as r:
                        await r.read()
                else:
                    kind = "healthz"
                    async with session.get(base + "/healthz") as r:
                        await r.read()
                counts[kind if r.status == 200 else "errors"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counts["errors"] += 1

    async def sampler() -> None:
        t0 = time.monotonic()
        while phase["name"] != "done":
            samples.append((time.monotonic() - t0, phase["name"], daemon.rss_kib()))
            await asyncio.sleep(1.0)

    def complete_calls(stop: threading.Event) -> None:
        while not stop.is_set() or callbacks:
            if callbacks:
                status, _ = fake.complete_call(callbacks.pop(0), "completed")
                counts["status callbacks" if status == 200 else "errors"] += 1
            else:
                stop.wait(0.05)

    stop = threading.Event()
    completer = threading.Thread(target=complete_calls, args=(stop,), daemon=True)
    completer.start()
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=WORKERS)) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(WORKERS)]
        sampling = asyncio.create_task(sampler())
        due = time.monotonic()
        for i, rate in enumerate(schedule):  # open loop: the schedule does not wait for slow answers
            if i == WARMUP:
                phase["name"] = "load"
                # a warm-up that fell behind on a busy machine must not shorten the measured phase
                due = max(due, time.monotonic())
            due += 1 / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await queue.put(i)
        for _ in workers:
            await queue.put(None)
        await asyncio.wait_for(asyncio.gather(*workers), 60)
        stop.set()
        await asyncio.to_thread(completer.join, 30)
        phase["name"] = "done"
        await sampling
    samples.append((samples[-1][0] + 1, "load", daemon.rss_kib()))
    return counts


def test_memory_stays_flat_under_a_steady_load(tmp_path, fake_twilio, capsys):
    daemon = DaemonProcess(tmp_path, unlimited(twilio_overrides(fake_twilio))).start()
    samples: list[tuple[float, str, int]] = []
    try:
        idle = daemon.rss_kib()
        counts = asyncio.run(load(daemon, fake_twilio, samples))
        alive = daemon.proc.poll() is None
        rows = daemon.query("SELECT COUNT(*) FROM logs")[0][0]
        completed = daemon.query("SELECT COUNT(*) FROM logs WHERE call_status = 'completed'")[0][0]
    finally:
        daemon.stop()

    measured = [rss for _, name, rss in samples if name == "load"]
    base = statistics.median(measured[:3])
    end = statistics.median(measured[-3:])
    growth = end - base
    with capsys.disabled():
        print(f"\n[reliability] load: warm-up {WARMUP} requests at {WARMUP_RATE}/s, then {LOAD_SECONDS:.0f} s at"
              f" {RATE}/s; {sum(counts.values())} requests: {', '.join(f'{k} {v}' for k, v in counts.items())};"
              f" log rows {rows}, calls completed {completed}; RSS idle {idle / MIB:.1f} MiB, after the warm-up"
              f" {base / MIB:.1f} MiB, at the end {end / MIB:.1f} MiB: growth under load {growth / MIB:+.2f} MiB"
              f" (limit {growth_limit(base) / MIB:.1f} MiB)")
        print("[reliability] load: RSS samples (s, MiB; * = warm-up): "
              + " ".join(f"{t:.0f}{'*' if name != 'load' else ''}:{rss / MIB:.1f}" for t, name, rss in samples))
    assert alive
    assert counts["errors"] == 0, counts
    assert rows >= 0.85 * (WARMUP + RATE * LOAD_SECONDS), rows  # nine in ten requests are notify
    assert len(measured) >= LOAD_SECONDS / 2, samples
    assert growth < growth_limit(base), f"RSS grew {growth / MIB:.1f} MiB under a steady load: {samples}"
