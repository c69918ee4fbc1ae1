"""Benchmark of the rules engine.

    /tmp/venv/bin/python bench/rules.py            # from the repo root; about 1.5 minutes

Generates realistic rule files in a temp folder (100 files x 100 rules: webhook,
alertmanager, poll and schedule sources, `when` expressions, Jinja2 messages,
named templates, contacts, groups, numbers, active windows, cooldowns,
escalations) and measures:

a. load_rules() of the 10,000 rules, each run in a fresh process (so no cache
   of an earlier run helps: what `alertd check` and a daemon start pay), against
   a baseline measured in the same process: yaml.load(CSafeLoader) of the same
   files, which is the least any loader must do. Median of the runs and of the
   per-run ratios. Also a reload in a warm process.
b. one generic webhook event on the hook that 100 of the 10,000 rules share,
   through Sources.webhook -> RuleRunner.handle -> evaluate -> rows, with the
   real Store on a temp SQLite file (event record, cooldown state) and
   structlog writing JSON lines to a file; only the daemon's submit to the
   outbox is replaced by a function that records the rows ("dispatch
   excluded"). The HTTP layer (auth, body parsing) is not included. The first
   event after the load is reported on its own: it compiles every `when` and
   template it meets (compilation is lazy and cached by source).
c. 500 poll rules with `every: 10s` on the real Scheduler (APScheduler) and
   Sources.run_rule with an aiohttp session, against an aiohttp server in
   another process that records when each rule's request arrives. Runs for
   3 ticks (~35 s) and counts the requests per rule at the server.

Prints a table and writes it to bench/results-rules.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import math
import os
import platform
import random
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TIMEZONE = "America/Chicago"
CALLER_ID = "+15557654321"
SHARED_HOOK = "door-sensors"

_FIRST = ["anna", "ben", "carla", "dev", "emma", "femi", "gus", "hana", "ivan", "jo", "kai", "lena", "milo",
          "nora", "omar", "pia", "quinn", "rosa", "sam", "tara", "uma", "vic", "wes", "xena", "yuri", "zoe"]
CONTACTS = {name: f"+1555{200 + i:03d}{1000 + i:04d}" for i, name in enumerate(
    [f"{n}" for n in _FIRST] + [f"{n}-backup" for n in _FIRST[:14]])}
GROUPS = {
    "oncall": ["anna", "ben", "carla"],
    "facilities": ["dev", "emma", "femi", "gus"],
    "dba": ["hana", "ivan", "jo"],
    "security": ["kai", "lena", "milo", "nora"],
    "managers": ["omar", "pia"],
    "night-shift": ["quinn", "rosa", "sam"],
    "network": ["tara", "uma", "vic"],
    "frontdesk": ["wes", "xena"],
    "everyone": ["anna", "ben", "carla", "dev", "emma", "omar", "pia"],
    "store-leads": ["yuri", "zoe", "anna-backup"],
}
SITES = ["north", "south", "east", "west", "dallas", "austin", "tulsa", "omaha"]
SEVERITIES = ["critical", "major", "minor", "info"]
TEAMS = ["db", "web", "net", "facilities", "security", "payments"]


# --- rule files -------------------------------------------------------------------
def _to(rng: random.Random) -> list[str]:
    names = list(CONTACTS)
    pool = [rng.choice(names), rng.choice(list(GROUPS)), rng.choice(names),
            f"+1 (555) {rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}", "{{ event.contact_phone }}"]
    return pool[:rng.choice([1, 1, 2, 2, 3, 4])] if rng.random() < 0.85 else pool


def _active(rng: random.Random) -> dict | None:
    r = rng.random()
    if r < 0.6:
        return None
    if r < 0.8:
        return {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "until": "18:00"}
    if r < 0.9:
        return {"days": "mon-sat", "from": "18:00", "until": "07:00", "timezone": "America/New_York"}
    return {"days": ["sat", "sun"]}


# STORE is replaced by the rule's own store, so (as in hand-written files) almost
# every message is a distinct text: no cache helps the load
_MESSAGES = [
    "Alert: {{ event.sensor | default('a sensor') }} at STORE ({{ event.site | title }}) is {{ event.state }}.",
    "{% if event.severity == 'critical' %}URGENT. {% endif %}{{ event.host | upper }} at STORE reports "
    "{{ event.value | round(1) }} on {{ event.sensor }}.",
    "{{ rule.description }}: {{ event.labels.alertname | default('alert') }} on {{ event.labels.instance }}"
    " ({{ event.status }}) for STORE.",
    "Door {{ event.sensor }} opened at {{ now.strftime('%H:%M') }} at STORE in {{ event.site }}.",
    "Temperature at STORE is {{ event.value }} degrees{% if event.value > 80 %}, too hot{% endif %}.",
    "{{ event.host }} at STORE is down{% if resolved %}: resolved{% endif %}. Press 1 to acknowledge.",
]
_WHEN = [
    "event.severity == 'critical'",
    "event.value is number and event.value > {n}",
    "event.site == '{site}' and event.severity in ['critical', 'major']",
    "event.labels.team == '{team}' and not event.maintenance",
    "event.state == 'open' and (now.hour < 7 or now.hour >= 19)",
    "'{site}' in event.tags",
]


def _when(rng: random.Random) -> str | None:
    if rng.random() < 0.15:
        return None
    return rng.choice(_WHEN).format(n=rng.randrange(40, 100), site=rng.choice(SITES), team=rng.choice(TEAMS))


def _notify(rng: random.Random, templates: list[str], store: str) -> dict:
    notify: dict[str, Any] = {"to": _to(rng)}
    if templates and rng.random() < 0.4:
        notify["template"] = rng.choice(templates)
    else:
        notify["message"] = rng.choice(_MESSAGES).replace("STORE", store)
    if rng.random() < 0.5:
        notify["action_type"] = rng.choice(["call", "sms", "both"])
    if rng.random() < 0.2:
        notify["gather"] = True
        notify["repeat"] = rng.choice([1, 2, 3])
    if rng.random() < 0.1:
        notify["language"] = "es-MX"
    if rng.random() < 0.15:
        notify["escalate"] = [{"after": "10m", "to": [rng.choice(list(GROUPS))],
                               "message": f"Still open at {store}: {{{{ event.sensor | default(event.host) }}}}."
                                          " Nobody answered."}]
    return notify


def shared_hook_rule(rng: random.Random, j: int, templates: list[str]) -> dict:
    """The j-th of the 100 rules on SHARED_HOOK: each decides with `when`."""
    # As rules written per store and team would: each event concerns one
    # sensor at one site, and a few rules (about 4 on average) fire for it.
    kind = j % 4
    site = SITES[j // 4 % len(SITES)]
    if kind == 0:
        when = f"event.sensor == 'door-{j}' and event.state == 'open'"
    elif kind == 1:
        when = f"event.site == '{site}' and event.value is number and event.value > {60 + j % 40}"
    elif kind == 2:
        when = f"event.site == '{site}' and event.severity in ['critical', 'major']"
    else:
        team = TEAMS[j // 4 % len(TEAMS)]
        when = f"event.labels.team == '{team}' and event.severity == 'critical' and not event.maintenance"
    rule: dict[str, Any] = {"id": f"door-{j:03d}", "description": f"Sensor rule {j} for the stores",
                            "source": {"webhook": SHARED_HOOK}, "when": when,
                            "notify": _notify(rng, templates, f"store {j}-0")}
    if j % 3 == 0:
        rule["cooldown"] = "5m"
        rule["dedup_key"] = "{{ event.sensor }}-{{ event.site }}"
    if (active := _active(rng)) is not None:
        rule["active"] = active
    return rule


def other_rule(rng: random.Random, rid: str, templates: list[str], poll_url: str) -> dict:
    r = rng.random()
    rule: dict[str, Any] = {"id": rid, "description": f"Generated rule {rid}"}
    if r < 0.45:  # a generic webhook, about 12 rules per hook name
        rule["source"] = {"webhook": f"hook-{rng.randrange(400)}"}
        if (when := _when(rng)) is not None:
            rule["when"] = when
        if rng.random() < 0.3:
            rule["cooldown"] = rng.choice(["1m", "15m", "1h"])
            rule["dedup_key"] = "{{ event.host | default(event.sensor) }}"
    elif r < 0.6:  # Prometheus Alertmanager
        rule["source"] = {"webhook": f"am-{rng.randrange(40)}", "format": "alertmanager"}
        rule["when"] = f"event.labels.severity in ['critical', 'page'] and event.labels.team == '{rng.choice(TEAMS)}'"
        rule["notify_resolved"] = rng.random() < 0.5
        if rng.random() < 0.3:
            rule["repeat_every"] = "1h"
    elif r < 0.85:  # an HTTP check
        poll: dict[str, Any] = {"url": f"{poll_url}/{rid}"}
        if rng.random() < 0.7:
            poll["every"] = rng.choice(["30s", "1m", "5m", "10m"])
        else:
            poll["cron"] = rng.choice(["*/5 * * * *", "15 9 * * mon-fri", "0 */2 * * *"])
        if rng.random() < 0.4:
            poll["headers"] = {"Authorization": "Bearer ${TIMECLOCK_TOKEN:-dev-token}"}
        if rng.random() < 0.1:
            poll["method"] = "post"
            poll["body"] = {"query": "clocked_in", "site": rng.choice(SITES)}
            poll["timeout"] = "5s"
        rule["source"] = {"poll": poll}
        rule["when"] = rng.choice(["event.status != 200 or event.error",
                                   "event.body.count == 0", "event.elapsed_ms > 2000 or event.status >= 500"])
        rule["notify_resolved"] = rng.random() < 0.6
    else:  # a schedule
        rule["source"] = {"schedule": {"cron": rng.choice(["0 8 * * mon-fri", "30 17 * * *", "0 9 1 * *"])}
                          if rng.random() < 0.7 else {"every": rng.choice(["1h", "1d"])}}
        if rng.random() < 0.3:
            rule["when"] = "now.weekday() < 5"
    rule["notify"] = _notify(rng, templates, "store " + rid[1:])
    if (active := _active(rng)) is not None:
        rule["active"] = active
    if rule["source"].get("webhook") is None and "dedup_key" in rule:
        del rule["dedup_key"]
    return rule


def write_rules(folder: Path, files: int = 100, per_file: int = 100, *, shared: int = 100,
                poll_url: str = "http://timeclock.local/api/clocked-in", seed: int = 3) -> int:
    """``files`` x ``per_file`` rules; the first ``shared`` files each hold one rule on SHARED_HOOK."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for f in range(files):
        names = [f"site{f:03d}-{kind}" for kind in ("down", "door", "reminder")]
        templates = {
            names[0]: {"message": "{{ event.host | default('A server') }} is not answering"
                                  "{% if event.error %} ({{ event.error }}){% endif %}.",
                       "action_type": "both", "gather": True, "repeat": 2},
            names[1]: {"message": "The {{ event.sensor }} door at {{ event.site }} opened at "
                                  "{{ now.strftime('%H:%M') }}. Press 1 if this is you.", "action_type": "call"},
            names[2]: {"message": "Reminder: your shift at store {{ rule.id }} starts at 9.",
                       "action_type": "sms", "language": "en-US"},
        }
        rules = []
        for k in range(per_file):
            if k == 0 and f < shared:
                rules.append(shared_hook_rule(rng, f, names))
            else:
                rules.append(other_rule(rng, f"r{f:03d}-{k:03d}", names, poll_url))
        text = f"# generated by bench/rules.py: store group {f}\n" + yaml.safe_dump(
            {"templates": templates, "rules": rules}, sort_keys=False, width=110, allow_unicode=True)
        sub = folder / f"group{f // 25}"
        sub.mkdir(exist_ok=True)
        (sub / f"stores-{f:03d}.yaml").write_text(text)
        total += len(rules)
    return total


def write_poll_rules(folder: Path, count: int, url: str) -> None:
    """``count`` poll rules every 10 s, 100 per file, each on its own URL."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(math.ceil(count / 100)):
        rules = []
        for k in range(f * 100, min(count, (f + 1) * 100)):
            rules.append({
                "id": f"poll-{k:03d}", "description": "Timeclock check",
                "source": {"poll": {"url": f"{url}/check/poll-{k:03d}", "every": "10s", "timeout": "5s",
                                    "headers": {"Authorization": "Bearer ${TIMECLOCK_TOKEN:-dev-token}"}}},
                "when": "event.status != 200 or event.error or event.body.count == 0",
                "notify_resolved": True,
                "notify": {"to": ["managers", "{{ event.body.lead }}"],
                           "message": "No staff clocked in at {{ event.body.location }}"
                                      "{% if event.error %}: the timeclock is down ({{ event.error }}){% endif %}."},
            })
        (folder / f"polls-{f}.yaml").write_text(yaml.safe_dump({"rules": rules}, sort_keys=False))


def load(folder: Path):
    from alertd.rules.loader import load_rules
    return load_rules(folder, contacts=CONTACTS, groups=GROUPS, timezone=TIMEZONE, display_root=folder.parent,
                      environ={})


def yaml_baseline(folder: Path) -> float:
    from alertd.rules.loader import find_rule_files
    t0 = time.perf_counter()
    for path in find_rule_files(folder):
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return time.perf_counter() - t0


def child_load(folder: Path) -> None:
    """One cold run of (a) in this fresh process; prints JSON."""
    import alertd.rules.loader  # noqa: F401 - imports are not part of the figure
    baseline = yaml_baseline(folder)
    t0 = time.perf_counter()
    result = load(folder)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = load(folder)
    warm = time.perf_counter() - t0
    print(json.dumps({"baseline": baseline, "load": cold, "reload": warm, "rules": len(result.ruleset),
                      "errors": result.errors[:3], "again": len(again.ruleset)}))


# --- (a) -----------------------------------------------------------------------------
def bench_load(folder: Path, runs: int) -> dict:
    out = []
    for _ in range(runs):
        proc = subprocess.run([PYTHON, __file__, "--child-load", str(folder)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if r["errors"] or r["rules"] != 10_000:
            raise RuntimeError(f"the generated rules did not load cleanly: {r}")
        out.append(r)
    return {
        "load": statistics.median(r["load"] for r in out),
        "loads": [r["load"] for r in out],
        "baseline": statistics.median(r["baseline"] for r in out),
        "ratio": statistics.median(r["load"] / r["baseline"] for r in out),
        "reload": statistics.median(r["reload"] for r in out),
    }


# --- (b) -----------------------------------------------------------------------------
class Recorder:
    """Stands in for Intake.submit: records the trigger and rows instead of dispatching."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict, list]] = []
        self._next_id = 0

    async def __call__(self, trigger: dict, rows: list) -> list:
        self.calls.append((trigger, rows))
        for row in rows:
            self._next_id += 1
            row.log_id = self._next_id
        return rows


def make_daemon(db: Path):
    """The real Daemon (not started: no HTTP server, no dispatcher), its submit recorded."""
    from alertd.config import Config
    from alertd.runtime.daemon import Daemon
    config = Config.model_validate({
        "timezone": TIMEZONE, "database": str(db), "contacts": CONTACTS, "groups": GROUPS,
        "provider": {"kind": "simulator", "numbers": [CALLER_ID]},
    })
    daemon = Daemon(config)
    daemon.runner.submit = daemon.submitted = Recorder()
    return daemon


def sample_event(rng: random.Random) -> dict:
    j = rng.randrange(100)
    return {
        "sensor": f"door-{j}", "state": rng.choice(["open", "open", "closed"]), "site": rng.choice(SITES),
        "severity": rng.choice(SEVERITIES), "value": round(rng.uniform(0, 100), 1), "host": f"pos-{j % 17}",
        "labels": {"team": rng.choice(TEAMS), "alertname": "DoorOpen", "instance": f"10.0.{j}.4:9100"},
        "tags": rng.sample(SITES, 2), "maintenance": rng.random() < 0.1,
        "contact_phone": f"+1555{rng.randrange(200, 999)}{rng.randrange(1000, 9999)}",
    }


async def _bench_events(daemon, events: list[dict]) -> tuple[list[float], list[float], list[int]]:
    """Each event through Sources.webhook; per event: wall seconds, CPU seconds of
    this thread (which other processes on the shared cores cannot inflate; the
    path never waits on I/O), notifications submitted."""
    times, cpu, fired = [], [], []
    calls = daemon.submitted.calls
    for body in events:
        before = len(calls)
        c0, t0 = time.thread_time(), time.perf_counter()
        await daemon.sources.webhook(SHARED_HOOK, body, {"key": "not-part-of-the-event"})
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        fired.append(len(calls) - before)
    return times, cpu, fired


def log_to(path: Path):
    """Configure alertd's logging as in production (JSON lines, info) into ``path``."""
    from alertd.runtime import logconf
    stream = open(path, "w")
    logconf.configure(level="info", fmt="json", stream=stream)
    return stream


def check_log(path: Path) -> None:
    # the runner logs and swallows a failing evaluation: a figure measured on failures would be no figure
    failures = [line for line in open(path) if '"level": "error"' in line or '"level":"error"' in line]
    if failures:
        raise RuntimeError(f"{len(failures)} errors logged in {path.name}, e.g. {failures[0][:500]}")


def bench_events(folder: Path, tmp: Path, rounds: int, per_round: int) -> dict:
    from alertd.engine.evaluate import evaluate

    log_file = log_to(tmp / "alertd-b.log")
    result = load(folder)
    daemon = make_daemon(tmp / "bench-b.db")
    daemon.runner.ruleset = result.ruleset  # what a load or reload swaps in
    assert len(result.ruleset.for_webhook(SHARED_HOOK)) == 100
    rng = random.Random(11)

    first = asyncio.run(_bench_events(daemon, [sample_event(rng)]))[0][0]
    asyncio.run(_bench_events(daemon, [sample_event(rng) for _ in range(200)]))  # warm-up
    p50s, p99s, maxes, cpu50s, cpu99s, all_times, fires = [], [], [], [], [], [], []
    for _ in range(rounds):
        times, cpu, fired = asyncio.run(_bench_events(daemon, [sample_event(rng) for _ in range(per_round)]))
        p50s.append(percentile(times, 50))
        p99s.append(percentile(times, 99))
        maxes.append(max(times))
        cpu50s.append(percentile(cpu, 50))
        cpu99s.append(percentile(cpu, 99))
        all_times += times
        fires += fired

    # evaluate() alone on the 100 rules, no store, no rows: the engine's pure part
    rules = result.ruleset.for_webhook(SHARED_HOOK)
    contacts, groups = daemon.directory.contacts, daemon.directory.groups
    pure = []
    for _ in range(300):
        event = sample_event(rng)
        now = daemon.clock.now()
        t0 = time.perf_counter()
        for rule in rules:
            evaluate(rule, event, now, contacts=contacts, groups=groups, ruleset=result.ruleset)
        pure.append(time.perf_counter() - t0)
    daemon.store.close()
    log_file.close()
    check_log(tmp / "alertd-b.log")
    return {"first": first, "p50": statistics.median(p50s), "p99": statistics.median(p99s), "load": os.getloadavg(),
            "cpu50": statistics.median(cpu50s), "cpu99": statistics.median(cpu99s),
            "p99s": p99s, "max": statistics.median(maxes), "n": len(all_times), "fires": statistics.mean(fires),
            "fires_p99": percentile(fires, 99), "fires_max": max(fires),
            "pure_p50": percentile(pure, 50), "pure_p99": percentile(pure, 99), "warmup": 201}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- (c) -----------------------------------------------------------------------------
def serve(port_out) -> None:
    """The polled server (run in its own process): records each request's arrival."""
    from aiohttp import web
    arrivals: list[tuple[str, float]] = []

    async def check(request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        arrivals.append((rid, time.time()))
        n = int(rid.rsplit("-", 1)[1])
        # every 50th store has nobody clocked in: those rules fire (once: they are stateful)
        return web.json_response({"count": 0 if n % 50 == 0 else 3, "location": f"store {n}", "lead": "omar"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(arrivals)

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.get("/check/{rid}", check), web.get("/_stats", stats)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # loopback only
        await web.SockSite(runner, sock).start()
        print(sock.getsockname()[1], file=port_out, flush=True)
        # serve until the parent closes our stdin
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


class _Collections:
    """The garbage collector's pauses while it is installed: a full collection of a large
    heap (what (a) and (b) left behind in this process) stalls the loop for the whole burst."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t0))

    def __enter__(self) -> "_Collections":
        import gc
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        import gc
        gc.callbacks.remove(self)

    def longest(self) -> tuple[int, float]:
        return max(self.pauses, key=lambda p: p[1], default=(0, 0.0))


class _Misfires(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def _run_polls(folder: Path, db: Path, url: str, ticks: int, every: float) -> dict:
    import aiohttp
    from alertd.sources.schedule import Scheduler

    result = load(folder)
    assert result.ok and len(result.ruleset) == 500, result.errors[:3]
    daemon = make_daemon(db)
    daemon.runner.ruleset = result.ruleset
    sources = daemon.sources
    sources.http = aiohttp.ClientSession()  # as Daemon.start does
    done: dict[str, list[float]] = {}

    async def run_rule(rule_id: str) -> None:
        # the real Sources.run_rule; the wrapper only notes when the tick's work ended
        await sources.run_rule(rule_id)
        done.setdefault(rule_id, []).append(time.time())

    misfires = _Misfires()
    logging.getLogger("apscheduler").addHandler(misfires)
    scheduler = Scheduler(run_rule)
    cpu0 = os.times()
    with _Collections() as collections:
        scheduler.start()
        scheduler.sync(result.ruleset)
        firsts = {rid: when.timestamp() for rid, when in scheduler.jobs().items()}
        end = max(firsts.values()) + (ticks - 1) * every + 4.0
        await asyncio.sleep(end - time.time())
        scheduler.shutdown()
    cpu1 = os.times()
    await asyncio.sleep(0.5)
    await sources.http.close()
    daemon.store.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"firsts": firsts, "done": done, "misfires": misfires.lines, "fired": len(daemon.submitted.calls),
            "gc": collections.longest(), "cpu": cpu, "wall": end - (min(firsts.values()) - every)}


def bench_polls(tmp: Path, count: int = 500, ticks: int = 3, every: float = 10.0) -> dict:
    server = subprocess.Popen([PYTHON, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        folder = tmp / "polls" / "rules"
        write_poll_rules(folder, count, url)
        log_file = log_to(tmp / "alertd-c.log")
        r = asyncio.run(_run_polls(folder, tmp / "bench-c.db", url, ticks, every))
        log_file.close()
        check_log(tmp / "alertd-c.log")
        import urllib.request
        with urllib.request.urlopen(f"{url}/_stats", timeout=10) as resp:
            arrivals = json.loads(resp.read())
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)

    by_rule: dict[str, list[float]] = {}
    for rid, at in arrivals:
        by_rule.setdefault(rid, []).append(at)
    missed, extra, lags, done_lags, spreads = 0, 0, [], [], []
    per_tick: list[list[float]] = [[] for _ in range(ticks)]
    for rid, first in r["firsts"].items():
        got = sorted(by_rule.get(rid, []))
        missed += max(0, ticks - len(got))
        extra += max(0, len(got) - ticks)
        for k, at in enumerate(got[:ticks]):
            lags.append(at - (first + k * every))
            per_tick[k].append(at)
        for k, at in enumerate(sorted(r["done"].get(rid, []))[:ticks]):
            done_lags.append(at - (first + k * every))
    spreads = [max(t) - min(t) for t in per_tick if t]
    return {"rules": len(r["firsts"]), "ticks": ticks, "missed": missed, "extra": extra,
            "requests": len(arrivals), "lag_p50": percentile(lags, 50), "lag_p99": percentile(lags, 99),
            "lag_max": max(lags), "done_p50": percentile(done_lags, 50), "done_p99": percentile(done_lags, 99),
            "done_max": max(done_lags), "spread": statistics.median(spreads), "misfires": r["misfires"],
            "fired": r["fired"], "gc": r["gc"], "cpu": r["cpu"], "wall": r["wall"]}


# --- report --------------------------------------------------------------------------
def machine() -> str:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"nproc {os.cpu_count()} ({cpu}), Python {platform.python_version()}, Linux {platform.release()},"
            f" load average at start {load}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="cold load runs for (a)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of --events events for (b)")
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--skip-polls", action="store_true", help="leave out (c), which takes 35 s")
    p.add_argument("--child-load", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child_load:
        return child_load(a.child_load)
    if a.serve:
        return serve(sys.stdout)

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    host = machine()
    with tempfile.TemporaryDirectory(prefix="alertd-bench-rules-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "etc" / "rules"
        n = write_rules(folder)
        size = sum(p.stat().st_size for p in folder.rglob("*.yaml"))
        print(f"generated {n} rules in 100 files ({size / 1e6:.1f} MB) under {folder}", flush=True)
        ra = bench_load(folder, a.runs)
        print(f"(a) load {ra['load']:.3f} s, baseline {ra['baseline']:.3f} s", flush=True)
        rb = bench_events(folder, tmp, a.rounds, a.events)
        print(f"(b) p50 {ms(rb['p50'])}, p99 {ms(rb['p99'])}", flush=True)
        rc = None if a.skip_polls else bench_polls(tmp)

    rows = [
        ("a. load + validate 10,000 rules (100 files), fresh process, median of "
         f"{a.runs}", "< 2 s", f"{ra['load']:.2f} s", verdict(ra["load"] < 2)),
        ("baseline: yaml.load(CSafeLoader) of the same files", "", f"{ra['baseline']:.2f} s", ""),
        ("load / baseline (median of per-run ratios)", "", f"{ra['ratio']:.1f}x", ""),
        ("reload in the same process (Jinja2 checks cached)", "", f"{ra['reload']:.2f} s", ""),
        ("b. one webhook event, 100 of 10,000 rules on its hook, wall clock: p50", "", ms(rb["p50"]), ""),
        ("p99 wall clock (median of the rounds' p99)", "< 5 ms", ms(rb["p99"]), verdict(rb["p99"] < 0.005)),
        ("max wall clock (median of the rounds' max)", "", ms(rb["max"]), ""),
        ("CPU time of the event, the engine's work (other processes on the shared cores cannot inflate it): p50",
         "", ms(rb["cpu50"]), ""),
        ("p99 CPU time (median of the rounds' p99)", "< 5 ms", ms(rb["cpu99"]), verdict(rb["cpu99"] < 0.005)),
        ("first event after the load (compiles 100 `when` + templates)", "", ms(rb["first"]), ""),
        ("evaluate() alone on the 100 rules, same kind of events: p50 / p99", "",
         f"{ms(rb['pure_p50'])} / {ms(rb['pure_p99'])}", ""),
    ]
    if rc is not None:
        ok = rc["missed"] == 0 and rc["rules"] == 500
        rows += [
            (f"c. 500 poll rules every 10 s, {rc['ticks']} ticks: ticks missed", "0",
             f"{rc['missed']} of {rc['rules'] * rc['ticks']}", verdict(ok)),
            ("lag, scheduled tick -> request at the server: p50 / p99 / max", "",
             f"{rc['lag_p50'] * 1000:.0f} / {rc['lag_p99'] * 1000:.0f} / {rc['lag_max'] * 1000:.0f} ms", ""),
            ("spread of one tick's 500 requests (first to last, median tick)", "", f"{rc['spread'] * 1000:.0f} ms", ""),
            ("scheduled tick -> rule evaluated: p50 / p99 / max", "",
             f"{rc['done_p50'] * 1000:.0f} / {rc['done_p99'] * 1000:.0f} / {rc['done_max'] * 1000:.0f} ms", ""),
            ("CPU of the daemon side while polling", "", f"{rc['cpu'] / rc['wall'] * 100:.1f}% of one core", ""),
            ("longest garbage collection while polling (its generation)", "",
             f"{rc['gc'][1] * 1000:.0f} ms (gen {rc['gc'][0]})", ""),
        ]
    table = ["| figure | goal | measured | result |", "|---|---|---|---|"]
    table += [f"| {f} | {g or ' '} | {m} | {r or ' '} |" for f, g, m, r in rows]
    print()
    print("\n".join(table))

    command = "/tmp/venv/bin/python bench/rules.py" + ("".join(f" {shlex.quote(x)}" for x in sys.argv[1:]))
    notes = [
        f"- (a) per run: {', '.join(f'{x:.2f}' for x in ra['loads'])} s. Each run is a fresh process"
        " (`--child-load`), so no cache of an earlier load helps; imports are not counted. The files: 100 files"
        f" x 100 rules ({size / 1e6:.1f} MB): 45% generic webhooks, 15% alertmanager, 25% polls, 15% schedules,"
        " 3 named templates per file, Jinja2 in messages, `to` and dedup keys, active windows, cooldowns,"
        " escalations.",
        f"- (b) {rb['n']} events in {a.rounds} rounds after {rb['warmup']} warm-up events; per event: "
        "Sources.webhook (event recorded in SQLite) -> 100 x RuleRunner.handle (evaluate, cooldown state in"
        f" SQLite, rows, a JSON log line per fired rule); rules that fire per event: {rb['fires']:.1f} on average,"
        f" {rb['fires_p99']} at p99, {rb['fires_max']} at most."
        " The daemon's submit to the outbox is replaced by a function that records the rows (dispatch"
        f" excluded). Wall-clock p99 per round: {', '.join(ms(x) for x in rb['p99s'])}; load average after (b):"
        f" {' '.join(f'{x:.2f}' for x in rb['load'])}. The path does not wait for I/O (SQLite in WAL mode,"
        " synchronous=NORMAL), so on an idle core wall clock and CPU time agree; where they differ, other"
        " processes had the cores.",
    ]
    if rc is not None:
        notes.append(
            f"- (c) {rc['requests']} requests at the server for {rc['rules']} rules x {rc['ticks']} ticks;"
            f" extra requests {rc['extra']}; APScheduler warnings (missed or skipped runs):"
            f" {len(rc['misfires'])}{': ' + rc['misfires'][0] if rc['misfires'] else ''}; notifications"
            f" submitted {rc['fired']} (10 stores have nobody clocked in, stateful: once each). The server is"
            " an aiohttp app in another process; lag is its arrival time minus the job's scheduled time"
            " (time.time() in both). All 500 jobs start together, so each tick is a burst of 500 requests"
            " through aiohttp's default pool of 100 connections. (c) runs in the process that loaded and"
            " ran (a) and (b), so the 10,000 rules and their compiled templates are still on its heap: a"
            " full collection that falls inside a tick stalls the loop for its whole length and sets the"
            " tick's tail (the p99 and max above). The daemon itself calls gc.freeze() once started; a"
            " fresh process that runs only (c) shows a p99 near the tick's spread.")
    md = [
        "# Rules engine benchmark", "",
        f"- date: {started}",
        f"- machine: {host}",
        f"- command: `{command}` (from the repo root)", "",
        *table, "", *notes, "",
    ]
    (ROOT / "bench" / "results-rules.md").write_text("\n".join(md))
    print("\nwritten to bench/results-rules.md")


if __name__ == "__main__":
    main()
