"""No route reads a body past server.max_body_bytes: a real `alertd run` gets
50 MB chunked to every route that reads a body, over a plain socket, and its
peak RSS (VmHWM, reset before each request through /proc/PID/clear_refs) stays
within a few MiB of where it was, each answered with the 413 envelope.
"""
from __future__ import annotations

import json
import socket

import pytest

from daemon_process import DaemonProcess, unlimited

SENT = 50 * 1024 * 1024
CHUNK = 256 * 1024
MIB = 1024  # VmRSS is in KiB
GROWTH_LIMIT = 6 * MIB

RULE = """
rules:
  - id: door
    source: {webhook: door}
    notify: {to: [manager], message: "Door {{ event.state }}", action_type: sms}
"""
FORM = "application/x-www-form-urlencoded"
ROUTES = [  # (path, content type, needs the API key, body prefix)
    ("/api/v1/calls/notify", "application/json", True, b'{"message": "'),
    ("/api/v1/calls/templates", "application/json", True, b'{"name": "'),
    ("/api/v1/silences", "application/json", True, b'{"reason": "'),
    ("/hooks/door", "application/json", True, b'{"state": "'),
    ("/hooks/door", FORM, True, b"state="),
    ("/twilio/status?log_id=1", FORM, False, b"CallStatus="),
    ("/twilio/gather?log_id=1", FORM, False, b"Digits="),
    ("/twilio/sms", FORM, False, b"Body="),
    ("/twilio/twiml?log_id=1", FORM, False, b"x="),
    ("/ui/login", FORM, False, b"username="),
]


def hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def read_response(sock: socket.socket) -> tuple[int, dict | str]:
    """(status, JSON body or text) of one HTTP/1.1 answer with a Content-Length."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        got = sock.recv(65536)
        if not got:
            break
        raw += got
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        got = sock.recv(65536)
        if not got:
            break
        rest += got
    try:
        return status, json.loads(rest)
    except ValueError:
        return status, rest.decode(errors="replace")[:300]


def send_chunked(port: int, path: str, ctype: str, headers: dict, prefix: bytes) -> tuple[int, dict | str]:
    """POSTs prefix + SENT bytes of 'x', chunked; returns (status, JSON body or text)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {ctype}",
                "Transfer-Encoding: chunked"] + [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        block = b"x" * CHUNK
        sock.sendall(b"%x\r\n%s\r\n" % (len(prefix), prefix))
        for _ in range(SENT // CHUNK):
            sock.sendall(b"%x\r\n%s\r\n" % (CHUNK, block))
        sock.sendall(b"0\r\n\r\n")
        return read_response(sock)
    finally:
        sock.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    folder = tmp_path_factory.mktemp("body-limits")
    (folder / "rules").mkdir()
    (folder / "rules" / "door.yaml").write_text(RULE)
    d = DaemonProcess(folder, unlimited()).start()
    yield d
    d.stop()


@pytest.mark.parametrize("path,ctype,keyed,prefix", ROUTES, ids=[f"{r[0]}-{r[1]}" for r in ROUTES])
def test_a_50_mb_chunked_body_is_refused_with_413_and_memory_stays_flat(daemon, path, ctype, keyed, prefix):
    pid = daemon.proc.pid
    before = daemon.rss_kib()
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS: the peak this request causes is what is read next
    status, body = send_chunked(daemon.port, path, ctype, daemon.headers if keyed else {}, prefix)
    grown = hwm_kib(pid) - before
    assert grown < GROWTH_LIMIT, f"{path}: peak RSS grew {grown} KiB for a refused body ({status} {body})"
    assert status == 413, (status, body)
    assert isinstance(body, dict) and body["ok"] is False and body["code"] == 413, body
    assert body["error"] == "Request body too large (limit 1048576 bytes).", body
    assert daemon.proc.poll() is None


def test_a_declared_content_length_over_the_limit_is_refused_before_the_body_is_read(daemon):
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    try:  # declares 1 GB and sends nothing of it: the answer comes anyway
        sock.sendall(b"POST /twilio/status?log_id=1 HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode()
                     + b"\r\nContent-Length: 1000000000\r\n\r\n")
        status, body = read_response(sock)
    finally:
        sock.close()
    assert status == 413 and body["code"] == 413 and body["error"] == "Request body too large (limit 1048576 bytes).", (status, body)
