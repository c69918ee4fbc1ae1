"""Every benchmark of alertd behind one command, one table.

    python bench/run.py            # from the repo root, with the project's venv; `make bench`; ~5 minutes
    python bench/run.py --quick    # fewer rounds of each, ~2 minutes: a smoke run, not figures to quote
    python bench/run.py --only ops # one benchmark (repeatable); bench/results-all.md is left alone

Runs each benchmark as its own process, one after the other (they would
otherwise share the 2 cores and skew each other):

    notify  bench/notify.py   POST /api/v1/calls/notify beside a bare ASGI + SQLite yardstick
    floor   bench/floor.py    the yardstick plus what alertd keeps (twilio library, outcome write), beside alertd
    rules   bench/rules.py    loading 10,000 rules, one webhook event, 500 poll rules
    storm   bench/storm.py    1,000 triggers to 50 numbers under per-number limits
    ops     bench/ops.py      start-up to ready, idle memory, memory after 100,000 log rows
    heartbeats bench/heartbeats.py  ping req/s beside the notify yardstick, deadline ticks with 10,000 checks
    failover bench/failover.py notify -> backup provider with the first refusing; req/s per provider

A benchmark that is missing is skipped with a note; one that fails to run is
marked FAILED in the table and makes this command exit 1 (a figure that
misses its goal is a FAIL in the table, not an error). Each writes its own
bench/results-<name>.md (figures, baselines and notes; --quick rewrites them
too, so run the full command before committing figures); this command reads
their tables back and prints one table of all of them, also written to
bench/results-all.md with the machine, the date and the command.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = [
    # name, script, what it measures, extra arguments for --quick
    ("notify", "notify.py", "notify API",
     ["--rounds", "3", "--seconds", "2", "--warmup", "1", "--latency-seconds", "5", "--repeats", "3"]),
    ("floor", "floor.py", "notify's floor", ["--rounds", "3", "--seconds", "2", "--warmup", "1"]),
    ("rules", "rules.py", "rules engine", ["--runs", "3", "--rounds", "3", "--skip-polls"]),
    ("storm", "storm.py", "storm control", ["--triggers", "500", "--numbers", "25", "--per", "10"]),
    ("ops", "ops.py", "start-up and memory", ["--runs", "3", "--settle", "1", "--repeats", "3"]),
    ("heartbeats", "heartbeats.py", "heartbeats", ["--checks", "2000", "--lapse", "20", "--rounds", "3",
                                                   "--seconds", "2", "--warmup", "1"]),
    ("failover", "failover.py", "providers and failover", ["--n", "30", "--rounds", "1", "--seconds", "2"]),
]
TIMEOUT = 420  # seconds for one benchmark before it is stopped and marked FAILED


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model or platform.machine(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def read_table(path: Path) -> list[tuple[str, str, str, str]]:
    """The rows of the first | figure | goal | measured | result | table in a results file."""
    rows, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("| figure |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows.append(tuple((cells + [""] * 4)[:4]))
        elif inside:
            break
    return rows


def run_one(name: str, script: str, extra: list[str]) -> dict:
    path = ROOT / "bench" / script
    results = ROOT / "bench" / f"results-{name}.md"
    if not path.exists():
        return {"status": "skipped", "note": f"bench/{script} is not there"}
    print(f"\n=== {name}: python bench/{script} {' '.join(extra)}".rstrip(), flush=True)
    started, t0 = time.time(), time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(path), *extra], cwd=ROOT, timeout=TIMEOUT)
        code = done.returncode
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        code = "timeout"
    seconds = time.monotonic() - t0
    if code != 0:
        return {"status": "FAILED", "note": f"exit {code} after {seconds:.0f} s; its output is above",
                "seconds": seconds}
    if not results.exists() or results.stat().st_mtime < started:
        return {"status": "FAILED", "note": f"bench/{results.name} was not written", "seconds": seconds}
    return {"status": "ok", "rows": read_table(results), "file": results.name, "seconds": seconds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds of each benchmark (a smoke run)")
    p.add_argument("--only", action="append", choices=[b[0] for b in BENCHES], help="run only these (repeatable)")
    p.add_argument("--output", help="where the table goes (default: bench/results-all.md; with --only, nowhere)")
    args = p.parse_args()
    if args.output is None and not args.only:
        args.output = str(ROOT / "bench" / "results-all.md")

    when = datetime.datetime.now().astimezone()
    host = machine()
    t0 = time.monotonic()
    outcomes = {}
    for name, script, what, quick in BENCHES:
        if args.only and name not in args.only:
            continue
        outcomes[name] = {"what": what, **run_one(name, script, quick if args.quick else [])}
    total = time.monotonic() - t0

    table = []  # (bench, figure, goal, measured, result)
    for name, o in outcomes.items():
        if o["status"] != "ok":
            table.append((name, f"{o['what']}: {o['status']}", "", o["note"], "FAILED" if o["status"] == "FAILED"
                          else "skipped"))
            continue
        for figure, goal, measured, result in o["rows"]:
            table.append((name, figure, goal, measured, result))
    failed = [n for n, o in outcomes.items() if o["status"] == "FAILED"]
    fails = sum(1 for r in table if r[4] == "FAIL")

    widths = [max(len(r[i]) for r in table + [("bench", "figure", "goal", "measured", "result")]) for i in range(5)]
    widths[1] = min(widths[1], 90)
    line = lambda r: "  ".join(c[:widths[i]].ljust(widths[i]) if i == 1 else c.ljust(widths[i])  # noqa: E731
                               for i, c in enumerate(r)).rstrip()
    print("\n" + line(("bench", "figure", "goal", "measured", "result")))
    print(line(tuple("-" * w for w in widths)))
    for r in table:
        print(line(r))

    command = "python bench/run.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    summary = (f"{len(outcomes)} benchmarks in {total / 60:.1f} min; goals: "
               f"{sum(1 for r in table if r[4] == 'PASS')} PASS, {fails} FAIL"
               + (f"; FAILED to run: {', '.join(failed)}" if failed else ""))
    print(f"\n{summary}")
    md = [
        "# alertd benchmarks", "",
        f"- date: {when.isoformat(timespec='seconds')}",
        f"- machine: nproc {host['nproc']}, {host['cpu']}, Python {host['python']}, {host['os']};"
        f" load average at start {host['load']}",
        f"- command: `{command}` (from the repo root, with the project's venv; `make bench`)",
        f"- {summary}" + (" (--quick: fewer rounds, a smoke run)" if args.quick else ""), "",
        "| bench | figure | goal | measured | result |", "|---|---|---|---|---|",
        *("| " + " | ".join(c or " " for c in r) + " |" for r in table), "",
        "Each benchmark's baselines, method and notes are in its own file, written by the same run: "
        + ", ".join(f"[{o['file']}]({o['file']})" for o in outcomes.values() if o.get("file")) + ".",
        "Every process shares the machine's cores with the others of its benchmark (load generator, fake"
        " provider, alertd, yardstick): compare figures with their baselines from the same run, and runs on"
        " the same machine only.", "",
    ]
    if args.output:
        Path(args.output).write_text("\n".join(md))
        print(f"written to {os.path.relpath(args.output, ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
