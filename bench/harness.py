"""Shared helpers for the benchmarks: subprocesses, free ports, CPU time, percentiles."""
from __future__ import annotations

import ctypes
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the benchmark dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, 15)
    except (OSError, AttributeError):
        pass


def spawn(argv: list[str], **kwargs) -> subprocess.Popen:
    """A child process that does not outlive the benchmark."""
    return subprocess.Popen(argv, cwd=ROOT, preexec_fn=_die_with_parent, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Until GET url answers 200; raises if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process we started, then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def use_uvloop() -> None:
    """The load generator's own cost, kept as low as the servers'."""
    try:
        import asyncio
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


def tear_down(tmp: Path, fake, *procs, keep: bool = False) -> None:
    """Stop what a bench started (None where it never started) and remove its folder (``keep``: print it)."""
    import shutil
    for proc in procs:
        if proc is not None:
            stop(proc)
    if fake is not None:
        fake.close()
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of proc(5))


class FakeProvider:
    """bench/fake_provider.py in its own process."""

    def __init__(self, kind: str = "twilio") -> None:
        self.proc = spawn([PYTHON, str(ROOT / "bench" / "fake_provider.py"), "--kind", kind], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, bufsize=1)
        self.info = info = self._read(timeout=20)  # the credentials alertd needs for this kind
        self.base_url, self.account_sid, self.auth_token = info["base_url"], info.get("account_sid"), info.get(
            "auth_token")
        self.pid = self.proc.pid

    def _read(self, timeout: float) -> dict:
        import selectors
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise RuntimeError(f"fake provider gave no answer within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fake provider exited ({self.proc.poll()})")
        return json.loads(line)

    def command(self, line: str, timeout: float = 20) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit", timeout=5)
            except (OSError, RuntimeError, ValueError):
                pass
        stop(self.proc)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine() -> str:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"nproc {os.cpu_count()} ({model or platform.machine()}), Python {platform.python_version()},"
            f" {platform.system()} {platform.release()}, load average at start"
            f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def text_table(table) -> str:
    widths = [max(len(row[i]) for row in table + [("figure", "goal", "measured", "result")]) for i in range(4)]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([line(("figure", "goal", "measured", "result")), line(tuple("-" * w for w in widths))]
                     + [line(row) for row in table])


def markdown_table(table) -> str:
    out = ["| figure | goal | measured | result |", "|---|---|---|---|"]
    out += ["| " + " | ".join(c.strip() or " " for c in row) + " |" for row in table]
    return "\n".join(out)


def report(title: str, table, notes: list[str], output: str, started, about: str, command: str) -> None:
    """Print the table and its notes, and write them as markdown to ``output``."""
    print()
    print(text_table(table))
    print()
    for n in notes:
        print("- " + n)
    Path(output).write_text(
        f"# {title}\n\n"
        f"- date: {started.isoformat(timespec='seconds')}\n- machine: {about}\n- command: `{command}`"
        " (from the repo root, with the project's venv)\n\n"
        + markdown_table(table) + "\n\n" + "\n".join("- " + n for n in notes) + "\n")
    print(f"\nwritten to {os.path.relpath(output, ROOT)}")


def write_config(tmp: Path, provider: dict, **extra) -> tuple[Path, int]:
    """An alertd config in ``tmp`` on a free loopback port: its own database and
    rules folder, JSON logs at info as in production, ``extra`` top-level keys
    merged in (a ``server`` dict adds to the server's). Returns (path, port)."""
    port = free_port()
    (tmp / "rules").mkdir(exist_ok=True)
    config = tmp / "alertd.yaml"
    server = {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}", **extra.pop("server", {})}
    config.write_text(yaml.safe_dump({
        "server": server, "database": str(tmp / "alertd.db"), "rules": str(tmp / "rules"),
        # a list is a providers: list (failover); a mapping the one provider
        "providers" if isinstance(provider, list) else "provider": provider,
        "log": {"level": "info", "format": "json"}, **extra}))
    return config, port


def create_key(config: Path, name: str = "bench") -> str:
    """``alertd keys create``: the new key."""
    done = subprocess.run([PYTHON, "-m", "alertd", "keys", "create", "--name", name, "-c", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"alertd keys create failed: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def probed(argv: list[str], probe: Path | None) -> list[str]:
    """``argv`` (after the interpreter) run under bench/lagprobe.py writing to ``probe``, if given."""
    return [PYTHON, *([str(ROOT / "bench" / "lagprobe.py"), str(probe)] if probe else []), *argv]


def read_probe(probe: Path, start: float, end: float) -> dict:
    """The loop lags (s) and GC pauses ((generation, s)) that lagprobe.py logged between start and end."""
    lags, pauses = [], []
    with open(probe) as f:
        for line in f:
            kind, *fields = line.split()
            if len(fields) < 2 or not start <= float(fields[0]) <= end:
                continue
            if kind == "L":
                lags.append(float(fields[1]))
            elif kind == "G" and len(fields) == 3:
                pauses.append((int(fields[1]), float(fields[2])))
    return {"lags": lags, "gc": pauses}


def start_alertd(tmp: Path, config: Path, port: int, probe: Path | None = None) -> subprocess.Popen:
    """``alertd run`` with its output in tmp/alertd.log, once /healthz answers; under
    bench/lagprobe.py writing to ``probe`` when given."""
    with open(tmp / "alertd.log", "w") as log:
        proc = spawn(probed(["-m", "alertd", "run", "-c", str(config)], probe), stdout=log,
                     stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc
