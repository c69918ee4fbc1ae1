"""sd_notify against a real unix datagram socket, with the real daemon as a subprocess.

The test plays systemd: it binds NOTIFY_SOCKET (a path, or an abstract @name),
starts `alertd run`, and reads what arrives, with the sender's credentials
(SO_PASSCRED) so it can check the messages come from the main process, which
is what `NotifyAccess=main` accepts.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from alertd.runtime.sdnotify import Notifier, keep_alive
from alertd.runtime.service import loops_problem, stalled_after
from conftest import free_socket, write_config
from sd_listener import NotifySocket


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request):
    sock = NotifySocket(abstract=request.param == "abstract")
    yield sock
    sock.close()


class Service:
    """`alertd run` as systemd starts it: a subprocess with NOTIFY_SOCKET (and WATCHDOG_USEC)."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        sock = free_socket()
        self.port = sock.getsockname()[1]
        sock.close()
        config = write_config(tmp_path, self.port)
        self.out_path = tmp_path / "alertd.out"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_", "ALERTD_"))}
        with self.out_path.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "alertd", "run", "-c", str(config)],
                                         stdout=out, stderr=subprocess.STDOUT, env={**base, **env})

    def output(self) -> str:
        return self.out_path.read_text()

    def accepts_connections(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def service(tmp_path):
    started: list[Service] = []

    def start(env: dict[str, str]) -> Service:
        started.append(Service(tmp_path, env))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def test_ready_comes_once_listening_and_stopping_on_sigterm(notify_socket, service):
    svc = service({"NOTIFY_SOCKET": notify_socket.env_value})
    ready, sender, before = notify_socket.wait_for("READY")
    # READY=1 means "clients may connect now": the port must already accept them
    assert svc.accepts_connections(), svc.output()
    assert requests.get(f"http://127.0.0.1:{svc.port}/healthz", timeout=5).status_code == 200
    assert before == [ready], "nothing is announced before READY=1"
    assert ready["READY"] == "1"
    assert ready["STATUS"] == f"listening on 127.0.0.1:{svc.port}; 0 rules loaded"
    assert sender == svc.proc.pid  # the main process itself: NotifyAccess=main accepts it

    svc.proc.send_signal(signal.SIGTERM)
    stopping, sender, _ = notify_socket.wait_for("STOPPING", timeout=10)
    assert stopping == {"STOPPING": "1", "STATUS": "stopping"} and sender == svc.proc.pid
    assert svc.proc.wait(15) == 0, svc.output()
    assert notify_socket.receive(0.05) is None, "no WATCHDOG=1 without WATCHDOG_USEC"


def test_watchdog_pings_at_half_of_watchdog_usec(notify_socket, service):
    svc = service({"NOTIFY_SOCKET": notify_socket.env_value, "WATCHDOG_USEC": "400000"})
    notify_socket.wait_for("READY")
    started = time.monotonic()
    for _ in range(3):
        ping, sender, seen = notify_socket.wait_for("WATCHDOG", timeout=2)
        assert ping == {"WATCHDOG": "1"} and sender == svc.proc.pid and len(seen) == 1
    # three pings 0.2 s apart; well under what three 0.4 s periods would take
    assert time.monotonic() - started < 1.2
    svc.proc.send_signal(signal.SIGTERM)
    notify_socket.wait_for("STOPPING", timeout=10)
    assert svc.proc.wait(15) == 0, svc.output()


# --- the pieces, in-process --------------------------------------------------------------

@pytest.mark.parametrize("environ, expected", [
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}, 15.0),
    ({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid())}, 0.2),
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "soon"}, None),
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "0"}, None),
    ({"NOTIFY_SOCKET": "/run/systemd/notify"}, None),
    ({"WATCHDOG_USEC": "30000000"}, None),  # nobody to ping
])
def test_watchdog_interval_follows_the_environment(environ, expected):
    assert Notifier(environ).watchdog_interval() == expected


def test_outside_systemd_notifying_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("up") is False and notifier.watchdog() is False


def test_an_unreachable_notify_socket_is_reported_not_raised(tmp_path):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert notifier.ready() is False
    assert notifier.stopping() is False
    notifier.close()


def test_a_status_is_one_line(notify_socket):
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.env_value})
    assert notifier.status("two\nlines")
    assert notify_socket.receive(1)[0] == {"STATUS": "two lines"}
    notifier.close()


def test_keep_alive_withholds_the_ping_while_a_loop_is_unwell(notify_socket):
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.env_value})
    answers = [None, "the dispatcher loop has not turned for 300s", "the dispatcher loop has not turned for 300s",
               None]

    async def run() -> None:
        task = asyncio.current_task()

        def problem():
            if not answers:
                task.cancel()
                return "done"
            return answers.pop(0)

        with pytest.raises(asyncio.CancelledError):
            await keep_alive(notifier, problem, 0.001)

    asyncio.run(run())
    messages = []
    while (got := notify_socket.receive(0.05)) is not None:
        messages.append(got[0])
    assert messages == [
        {"WATCHDOG": "1"},
        {"STATUS": "unhealthy: the dispatcher loop has not turned for 300s"},  # once, not per tick
        {"WATCHDOG": "1"}, {"STATUS": "running"},
        {"STATUS": "unhealthy: done"},
    ]
    notifier.close()


def test_loops_problem_names_a_stalled_or_ended_dispatcher(daemon):
    d = daemon.daemon
    assert loops_problem(d) is None
    limit = stalled_after(d.config)
    later = d.dispatcher.last_loop_at + limit + 5
    assert loops_problem(d, now=later) == f"the dispatcher loop has not turned for {limit + 5:.0f}s"
    d.scheduler.shutdown()  # AsyncIOScheduler stops on its own loop: soon, not at once
    daemon.wait_until(lambda: loops_problem(d) == "the scheduler is not running", what="the scheduler to stop")
    d.dispatcher.stop()
    daemon.wait_until(lambda: d._worker.done(), what="the dispatcher task to end")
    assert loops_problem(d) == "the dispatcher task has ended"


def test_a_long_burst_against_a_slow_provider_is_not_a_hang():
    from alertd.config import Config
    config = Config.model_validate({"provider": {"timeout": "10s", "max_concurrency": 10}})
    # 200 items, 10 at a time, 10 s each: 200 s of legitimate work in one turn of the loop
    assert stalled_after(config) == 230.0
    assert stalled_after(Config()) == 230.0
    assert stalled_after(Config.model_validate({"provider": {"timeout": "1s", "max_concurrency": 100}})) == 60.0
