"""Clients that never finish a request head are closed, so they cannot take
every file descriptor: a real `alertd run` whose open-file limit is lowered to
256 (prlimit on the running process) gets a bounded slowloris of 300
connections over loopback (silent ones and ones sending a header byte now and
then), and /healthz and notify still answer.

Bounded: 300 connections, at most ATTACK_SECONDS of dribbling, loopback only.
"""
from __future__ import annotations

import resource
import socket
import threading
import time

import requests

from daemon_process import DaemonProcess, unlimited

CONNECTIONS = 300
NOFILE = 256
HEAD_TIMEOUT = "2s"
ATTACK_SECONDS = 40.0
DEADLINE = 30.0  # seconds for health and notify to answer; the guard needs about two head timeouts


def open_slow_clients(port: int, n: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """``n`` connections: (silent ones, ones that started a valid request head)."""
    silent, slow = [], []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 2:
            s.sendall(b"POST /api/v1/calls/notify HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        else:
            silent.append(s)
    return silent, slow


def dribble(socks: list[socket.socket], stop: threading.Event) -> None:
    """One byte of a valid header line per connection every half second, until ``stop`` or
    ATTACK_SECONDS: the head grows, and never ends."""
    line = b"X-Slow: a\r\n"
    ends = time.monotonic() + ATTACK_SECONDS
    k = 0
    while not stop.is_set() and time.monotonic() < ends:
        for s in socks:
            try:
                s.send(line[k % len(line):k % len(line) + 1])
            except OSError:
                pass  # closed by the server: what the guard is for
        k += 1
        stop.wait(0.5)


def until_answered(call, deadline: float):
    last = None
    while time.monotonic() < deadline:
        try:
            r = call()
            if r.status_code < 500:
                return r
            last = r.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"no answer before the deadline; last: {last}")


def test_slow_and_silent_clients_are_closed_and_health_and_notify_keep_answering(tmp_path):
    d = DaemonProcess(tmp_path, unlimited({"server": {"request_head_timeout": HEAD_TIMEOUT}})).start()
    socks: list[socket.socket] = []
    stop = threading.Event()
    try:
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        silent, slow = open_slow_clients(d.port, CONNECTIONS)
        socks = silent + slow
        attacker = threading.Thread(target=dribble, args=(slow, stop), daemon=True)
        attacker.start()
        deadline = time.monotonic() + DEADLINE
        health = until_answered(lambda: requests.get(d.base_url + "/healthz", timeout=3), deadline)
        assert health.status_code == 200, health.text
        sent = until_answered(lambda: requests.post(d.base_url + "/api/v1/calls/notify", headers=d.headers,
                                                    json={"to": "+15551234567", "message": "still here"},
                                                    timeout=3), deadline)
        assert sent.status_code == 200 and sent.json()["calls"][0]["status"] != "failed", sent.text
        assert d.proc.poll() is None
        assert attacker.is_alive()  # the attack was still going on while they answered
    finally:
        stop.set()
        for s in socks:
            s.close()
        d.stop()
