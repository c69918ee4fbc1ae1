"""The receiving end of sd_notify, as systemd holds it: for tests/test_sdnotify.py and test_systemd_unit.py."""
from __future__ import annotations

import array
import os
import socket
import struct
import tempfile
import time
import uuid


class NotifySocket:
    """The receiving end systemd would hold."""

    def __init__(self, abstract: bool):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = f"alertd-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            # a short folder: a unix socket path is limited to 107 bytes
            self.folder = tempfile.mkdtemp(prefix="sd-", dir="/tmp")
            self.env_value = os.path.join(self.folder, "notify")
            self.sock.bind(self.env_value)

    def receive(self, timeout: float) -> tuple[dict[str, str], int] | None:
        """One message as {KEY: VALUE} and the sender's PID; None on timeout."""
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        except TimeoutError:
            return None
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = array.array("i", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        return fields, pid

    def wait_for(self, key: str, timeout: float = 20) -> tuple[dict[str, str], int, list[dict]]:
        """Read until a message carries ``key``; returns it, its sender and all messages read."""
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.receive(max(0.01, deadline - time.monotonic()))
            if got is None:
                break
            seen.append(got[0])
            if key in got[0]:
                return got[0], got[1], seen
        raise AssertionError(f"no {key} from alertd within {timeout}s; got {seen}")

    def close(self) -> None:
        self.sock.close()
        if hasattr(self, "folder"):
            os.unlink(self.env_value)
            os.rmdir(self.folder)
