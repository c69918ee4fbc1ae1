"""The sd_notify protocol, without libsystemd: one datagram per message.

systemd (``Type=notify``) hands the service ``$NOTIFY_SOCKET``, a unix datagram
socket: a filesystem path, or an abstract name written with a leading ``@``
(on the wire a leading NUL byte). A message is newline-separated
``KEY=VALUE`` fields: ``READY=1``, ``STOPPING=1``, ``STATUS=...``,
``WATCHDOG=1``. With ``WatchdogSec=`` systemd also sets ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``) and restarts the service when no ``WATCHDOG=1`` arrives in
time; the convention is to ping at half that period.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a cheap no-op, so the
daemon calls it unconditionally.
"""
from __future__ import annotations

import asyncio
import os
import socket
from typing import Callable, Mapping

import structlog

log = structlog.get_logger("alertd.systemd")


class Notifier:
    """Sends sd_notify messages to ``environ["NOTIFY_SOCKET"]``, if set.

    Never raises: systemd being unreachable must not take the daemon down;
    a failed send is logged once and reported as False.
    """

    def __init__(self, environ: Mapping[str, str] = os.environ):
        self.environ = environ
        address = environ.get("NOTIFY_SOCKET", "")
        # "@name" is Linux's abstract namespace: the kernel's name starts with NUL
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *fields: str) -> bool:
        """Send one message made of ``fields`` (e.g. ``"READY=1", "STATUS=up"``)."""
        if not self.address:
            return False
        # STATUS is one line: a newline would start a field systemd reads as a command
        message = "\n".join(f.replace("\n", " ") for f in fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self.address)
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot reach systemd's notify socket", socket=self.environ.get("NOTIFY_SOCKET"),
                            error=str(exc))
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of $WATCHDOG_USEC), or None when no watchdog
        is asked of this process (unset, malformed, or meant for another PID)."""
        try:
            usec = int(self.environ.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        pid = self.environ.get("WATCHDOG_PID")
        if usec <= 0 or not self.enabled or (pid and pid != str(os.getpid())):
            return None
        return usec / 2 / 1_000_000

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def keep_alive(notifier: Notifier, problem: Callable[[], str | None], interval: float) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds while ``problem()`` is None.

    ``problem()`` names what is wrong (a stalled loop, a dead task). Then the
    ping is withheld, so systemd's watchdog restarts the service: a daemon that
    answers /healthz but no longer dispatches is worse than a restart. The
    problem goes to the log and to ``systemctl status`` (STATUS=) once per
    change. That this coroutine runs at all proves the event loop is not
    blocked. Runs until cancelled.
    """
    reported: str | None = None
    while True:
        what = problem()
        if what is None:
            notifier.watchdog()
            if reported is not None:
                log.info("watchdog: alertd's loops are alive again", was=reported)
                notifier.status("running")
        elif what != reported:
            log.error("watchdog: withholding the ping; systemd will restart alertd", problem=what)
            notifier.status(f"unhealthy: {what}")
        reported = what
        await asyncio.sleep(interval)
