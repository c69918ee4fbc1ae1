"""Start-up and memory of the daemon.

    /tmp/venv/bin/python bench/ops.py            # from the repo root; about a minute

alertd runs as `python -m alertd run` (simulator provider, no rule files, log
level info as JSON to a file), beside the yardstick (bench/yardstick.py: a
bare Starlette + uvicorn + aiohttp + SQLite server) as the baseline:

1. start-up time to ready: from the process start to the first 200 from
   /healthz, median of --runs fresh processes each, alertd's and the yardstick's
   in pairs whose order alternates (the ratio, goal at most 2x, is the median of
   the per-pair ratios) (the database exists: a
   restart, as systemd does it); and, for context, `import alertd.runtime.daemon` alone
   and `import fastapi` alone (the framework alertd is built on; the yardstick has
   only its Starlette part);
2. idle memory: VmRSS of each of those processes --settle seconds after ready;
3. memory after 100,000 log rows: the rows are written through alertd's own
   Store into the same database (10,000 triggers of 10 recipients, each first
   stored 'queued' with its outbox items, then its results recorded 'sent',
   as the notify path does), then a fresh daemon starts on it and serves log
   queries (the newest 50 and 1,000, by source, since yesterday, single rows);
   its VmRSS after them beside the idle figure of (2).

Prints a table and writes it to bench/results-ops.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


from harness import PYTHON, ROOT, create_key, machine, free_port, spawn, stop
from harness import write_config as write_any_config

MIB = 1024 * 1024




def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def write_config(tmp: Path) -> tuple[Path, int]:
    return write_any_config(tmp, {"kind": "simulator", "numbers": ["+15557654321"]})


def write_twilio_config(tmp: Path) -> tuple[Path, int]:
    """The twilio provider, pointed at a closed port: an idle daemon never calls it."""
    tmp.mkdir(exist_ok=True)
    return write_any_config(tmp, {"kind": "twilio", "account_sid": "AC" + "0" * 32, "auth_token": "x",
                                  "api_base_url": "http://127.0.0.1:9", "numbers": ["+15557654321"]})


def start_timed(argv: list[str], url: str, log: Path) -> tuple[subprocess.Popen, float]:
    """Start a server; returns it and the seconds from spawn to the first 200 from ``url``."""
    with open(log, "a") as out:
        t0 = time.perf_counter()
        proc = spawn(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv!r} exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.005)
    stop(proc)
    raise RuntimeError(f"{url} did not answer within 30 s")


def one_startup(argv: list[str], url: str, log: Path, settle: float) -> tuple[float, int]:
    """One start-up: seconds to ready, and VmRSS ``settle`` s later."""
    proc, seconds = start_timed(argv, url, log)
    try:
        time.sleep(settle)
        return seconds, rss_bytes(proc.pid)
    finally:
        stop(proc)


def summary(runs: list[tuple[float, int]]) -> dict:
    ready, rss = [r[0] for r in runs], [r[1] for r in runs]
    return {"ready": statistics.median(ready), "readies": ready, "rss": statistics.median(rss), "rsses": rss}


def startups(argv: list[str], url: str, log: Path, runs: int, settle: float) -> dict:
    """``runs`` start-ups: seconds to ready and VmRSS ``settle`` s later."""
    return summary([one_startup(argv, url, log, settle) for _ in range(runs)])


def paired_startups(alertd: tuple, yardstick: tuple, runs: int, settle: float, between) -> tuple[dict, dict, list, dict]:
    """``runs`` pairs of start-ups, alertd's and the yardstick's, the order alternating, so a
    drift in the machine's load favours neither; ``between()`` runs after each pair. Returns
    alertd's and the yardstick's summaries, the per-pair ratios of the times to ready, and
    the medians of what ``between`` returned."""
    a, y, ratios, other = [], [], [], []
    for i in range(runs):
        for name in (("a", "y") if i % 2 == 0 else ("y", "a")):
            (a if name == "a" else y).append(one_startup(*(alertd if name == "a" else yardstick), settle))
        ratios.append(a[-1][0] / y[-1][0])
        other.append(between())
    return summary(a), summary(y), ratios, {k: statistics.median(o[k] for o in other) for k in other[0]}


def import_time(module: str) -> float:
    """Seconds `import module` takes in a fresh interpreter (its start and exit not counted)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return float(subprocess.run([PYTHON, "-c", code], cwd=ROOT, check=True, timeout=60, capture_output=True,
                                text=True).stdout)


def import_times() -> dict[str, float]:
    """alertd's daemon, and FastAPI alone: the framework it is built on (the yardstick's Starlette
    is part of it), whose import is a fixed part of alertd's start-up beside the yardstick's."""
    return {"alertd": import_time("alertd.runtime.daemon"), "fastapi": import_time("fastapi")}


def fill(database: Path, rows: int, per_trigger: int = 10) -> float:
    """Write ``rows`` log rows through alertd's Store, as the notify path does; returns seconds."""
    from alertd.dispatch.notification import notification
    from alertd.store import Store
    from alertd.store.sqlite.batch import run_now  # SQLite's coroutines finish without a loop
    rng = random.Random(5)
    store = Store(database)
    now = time.time()
    started = time.perf_counter()
    try:
        for t in range(rows // per_trigger):
            created = now - rng.uniform(0, 30 * 86400)
            kind = ("call", "sms", "both")[t % 3]
            batch = [notification(f"+1555{1000000 + rng.randrange(200):07d}", kind,
                                  f"Alert {t}: disk {rng.randrange(80, 100)}% on db{t % 17}",
                                  from_="+15557654321", gather=t % 2 == 0) for _ in range(per_trigger)]
            stored = run_now(store.logs.create_trigger({"created_at": created, "source": f"bench-{t % 10}"}, batch,
                                                       lease_until=created + 120))
            results = [{"outbox_id": oid, "log_id": r.log_id, "channel": ch, "outcome": "sent",
                        "sid": ("CA" if ch == "call" else "SM") + f"{r.log_id:032x}"}
                       for r in stored for oid, ch in r.items]
            run_now(store.outbox.record_results(results, complete=True))
    finally:
        store.close()
    return time.perf_counter() - started


def get_json(url: str, key: str) -> tuple[float, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.loads(r.read())
    return time.perf_counter() - t0, body


def queries(base: str, key: str, rows: int, repeats: int) -> dict:
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).isoformat()
    plans = {
        "newest 50": f"{base}/api/v1/calls/logs",
        "newest 1,000": f"{base}/api/v1/calls/logs?limit=1000",
        "by source (newest 50)": f"{base}/api/v1/calls/logs?source=bench-3",
        "since yesterday (1,000)": f"{base}/api/v1/calls/logs?limit=1000&since={urllib.request.quote(since)}",
    }
    out = {}
    for name, url in plans.items():
        times = []
        for _ in range(repeats):
            seconds, body = get_json(url, key)
            if not body.get("ok") or not body.get("logs"):
                raise RuntimeError(f"{url}: {str(body)[:200]}")
            times.append(seconds)
        out[f"{name}, median of {repeats}"] = statistics.median(times)
    rng = random.Random(7)
    single = [get_json(f"{base}/api/v1/calls/logs/{rng.randrange(1, rows + 1)}", key)[0] for _ in range(repeats * 10)]
    out[f"one row by id, median of {repeats * 10}"] = statistics.median(single)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="start-ups of each server")
    p.add_argument("--settle", type=float, default=2.0, help="seconds after ready before reading idle RSS")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5, help="of each log query")
    p.add_argument("--output", default=str(ROOT / "bench" / "results-ops.md"))
    args = p.parse_args()

    started = datetime.datetime.now().astimezone()
    about = machine()
    tmp = Path(tempfile.mkdtemp(prefix="alertd-bench-ops-"))
    proc = None
    try:
        # pip compiles a package's modules when it installs it; a source checkout run with
        # PYTHONDONTWRITEBYTECODE would compile all of alertd at every start-up instead
        subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "alertd")], check=True, timeout=300)
        config, port = write_config(tmp)
        key = create_key(config)  # also creates the database: every start below is a restart
        alertd = [PYTHON, "-m", "alertd", "run", "-c", str(config)]
        health = f"http://127.0.0.1:{port}/healthz"
        ystick_port = free_port()
        yardstick = [PYTHON, str(ROOT / "bench" / "yardstick.py"), "--port", str(ystick_port),
                     "--provider", "http://127.0.0.1:9", "--account-sid", "AC" + "0" * 32, "--auth-token", "x",
                     "--database", str(tmp / "yardstick.db")]
        print(f"1-2. alertd and yardstick start-up and idle RSS, {args.runs} pairs", flush=True)
        # the imports are timed between the pairs, so they see the same machine
        a, y, ratios, imports = paired_startups(
            (alertd, health, tmp / "alertd.log"),
            (yardstick, f"http://127.0.0.1:{ystick_port}/healthz", tmp / "yardstick.log"),
            args.runs, args.settle, import_times)
        tconfig, tport = write_twilio_config(tmp / "twilio")
        print(f"     alertd with the twilio provider, {args.runs} runs", flush=True)
        t = startups([PYTHON, "-m", "alertd", "run", "-c", str(tconfig)], f"http://127.0.0.1:{tport}/healthz",
                     tmp / "twilio.log", args.runs, args.settle)
        print(f"3. {args.rows:,} log rows through the Store", flush=True)
        fill_seconds = fill(tmp / "alertd.db", args.rows)
        db_bytes = sum(f.stat().st_size for f in tmp.glob("alertd.db*"))
        proc, full_ready = start_timed(alertd, health, tmp / "alertd.log")
        q = queries(f"http://127.0.0.1:{port}", key, args.rows, args.repeats)
        time.sleep(args.settle)
        full_rss = rss_bytes(proc.pid)
        with urllib.request.urlopen(health, timeout=5) as r:
            healthy = r.status == 200
        stop(proc)
        proc = None
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    table = [
        (f"start-up to ready (spawn -> /healthz 200), median of {args.runs}: alertd", "",
         f"{a['ready']:.2f} s", ""),
        ("   yardstick (bare Starlette + uvicorn + aiohttp + SQLite)", "", f"{y['ready']:.2f} s", ""),
        ("   alertd / yardstick (median of the per-pair ratios)", "<= 2.0x", f"{statistics.median(ratios):.2f}x",
         "PASS" if statistics.median(ratios) <= 2.0 else "FAIL"),
        ("   `import alertd.runtime.daemon` alone, in a fresh interpreter (median, timed between the start-ups)", "",
         f"{imports['alertd']:.2f} s", ""),
        ("   `import fastapi` alone, the same way: the framework alertd is built on", "",
         f"{imports['fastapi']:.2f} s ({imports['fastapi'] / y['ready']:.2f} of the yardstick's start-up)", ""),
        (f"idle memory (VmRSS {args.settle:g} s after ready), median of {args.runs}: alertd", "",
         f"{a['rss'] / MIB:.1f} MiB", ""),
        ("   alertd with the twilio provider", "", f"{t['rss'] / MIB:.1f} MiB", ""),
        ("   yardstick", "", f"{y['rss'] / MIB:.1f} MiB", ""),
        (f"memory after {args.rows:,} log rows and the log queries below: alertd", "",
         f"{full_rss / MIB:.1f} MiB ({(full_rss - a['rss']) / MIB:+.1f} MiB over idle)", ""),
        (f"   start-up to ready on the {args.rows:,}-row database", "", f"{full_ready:.2f} s", ""),
        *((f"   GET /api/v1/calls/logs on {args.rows:,} rows: {name}", "",
           f"{seconds * 1000:.1f} ms", "") for name, seconds in q.items()),
        (f"   writing {args.rows:,} rows through the Store (database {db_bytes / MIB:.0f} MiB)", "",
         f"{fill_seconds:.1f} s ({args.rows / fill_seconds:,.0f} rows/s)", ""),
    ]
    notes = [
        f"Start-ups, in pairs whose order alternates: alertd {', '.join(f'{x:.2f}' for x in a['readies'])} s;"
        f" yardstick {', '.join(f'{x:.2f}' for x in y['readies'])} s; per-pair ratios"
        f" {', '.join(f'{x:.2f}' for x in ratios)}. Time is measured from just before the spawn to"
        " the first 200 from /healthz, polled every 5 ms; alertd's includes opening the database, loading"
        " the (empty) rules folder and starting the dispatcher and the scheduler.",
        f"Idle VmRSS: alertd {', '.join(f'{x / MIB:.1f}' for x in a['rsses'])} MiB; yardstick"
        f" {', '.join(f'{x / MIB:.1f}' for x in y['rsses'])} MiB; alertd with twilio"
        f" {', '.join(f'{x / MIB:.1f}' for x in t['rsses'])} MiB (ready in {t['ready']:.2f} s).",
        "alertd's modules are compiled to bytecode first (`python -m compileall alertd`), as `pip install`"
        " does, so a start-up does not compile them from source.",
        f"The {args.rows:,} rows: 10 recipients per trigger, calls, SMS and both in turn (both: two outbox"
        " items), 200 numbers, 10 sources, created over the last 30 days; /healthz answered"
        f" {'200' if healthy else 'NOT 200'} at the end. The since-yesterday query returns about 1/30 of them.",
    ]
    print()
    width = max(len(r[0]) for r in table)
    for r in table:
        print(f"{r[0]:<{width}}  {r[2]}" + (f"  (goal {r[1]}: {r[3]})" if r[1] else ""))
    print()
    for n in notes:
        print("- " + n)
    command = "python bench/ops.py" + "".join(f" {shlex.quote(x)}" for x in sys.argv[1:])
    md = ["# Start-up and memory benchmark", "", f"- date: {started.isoformat(timespec='seconds')}",
          f"- machine: {about}", f"- command: `{command}` (from the repo root, with the project's venv)", "",
          "| figure | goal | measured | result |", "|---|---|---|---|"]
    md += ["| " + " | ".join(c.strip() or " " for c in r) + " |" for r in table]
    md += [""] + ["- " + n for n in notes] + [""]
    Path(args.output).write_text("\n".join(md))
    print(f"\nwritten to {os.path.relpath(args.output, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

