"""`alertd run` as a real subprocess for the reliability suite: start it on a
config, wait for /healthz, kill -9 it, restart it on the same database, read
its memory from /proc.

The daemon logs JSON lines to ``alertd.log`` in the test's folder (appended
across restarts), so a failing test can show what the daemon said.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import requests

from alertd.api.auth import generate_key
from alertd.config import ServerConfig
from alertd.store import Store
from conftest import free_socket, write_config


def unlimited(overrides: dict | None = None) -> dict:
    """``overrides`` with the per-key API rate limit (server.rate_limit) off: these
    tests send bursts far above it on purpose, from one key."""
    overrides = dict(overrides or {})
    if "rate_limit" in ServerConfig.model_fields:
        overrides["server"] = {**overrides.get("server", {}), "rate_limit": None}
    return overrides


class DaemonProcess:
    """One alertd configuration; ``start()`` may be called again after a kill.

    The tests stop it in a ``finally``. (No preexec_fn to tie it to our life:
    FakeTwilio runs a thread in this process, and code run between fork and
    exec with other threads around can deadlock.)"""

    def __init__(self, folder: Path, overrides: dict | None = None):
        self.folder = folder
        sock = free_socket()
        self.port = sock.getsockname()[1]
        sock.close()  # uvicorn binds it again with SO_REUSEADDR
        self.base_url = f"http://127.0.0.1:{self.port}"
        overrides = dict(overrides or {})
        overrides.setdefault("log", {"level": "info", "format": "json"})
        self.config_path = write_config(folder, self.port, overrides)
        self.database = folder / "alertd.db"
        self.log_path = folder / "alertd.log"
        self.key, prefix, digest = generate_key()
        store = Store(self.database)
        store.keys.create("reliability", prefix, digest, time.time())
        store.close()
        self.headers = {"Authorization": f"Bearer {self.key}"}
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self, wait: bool = True, timeout: float = 20.0) -> "DaemonProcess":
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "alertd", "run", "-c", str(self.config_path)],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Until /healthz answers 200; returns the seconds since start()."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"alertd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - self.started_at
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise AssertionError(f"alertd did not answer /healthz within {timeout} s:\n{self.log_tail()}")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def rss_kib(self) -> int:
        """VmRSS of the daemon, in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """A read on the daemon's database from another connection (WAL: never blocks the daemon)."""
        with closing(sqlite3.connect(self.database, timeout=10)) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()

    def pending(self) -> int:
        return self.query("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")[0][0]

    def wait_drained(self, timeout: float = 30.0) -> float:
        """Until no outbox item is pending; returns the seconds it took."""
        started = time.monotonic()
        while self.pending():
            if self.proc.poll() is not None:
                raise AssertionError(f"alertd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{self.pending()} outbox items still pending after {timeout} s")
            time.sleep(0.1)
        return time.monotonic() - started

    def log_tail(self, lines: int = 40) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            return "\n".join(line if len(line) < 2000 else line[:1000] + " ... " + line[-800:] for line in tail)
        except OSError:
            return "(no log)"
