"""A real HTTP server on 127.0.0.1 standing in for what poll rules check
(a timeclock, a health endpoint), and addresses that fail the ways a real
one does: a refused connection, a server that never answers.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """Answers every request with ``status`` and ``body`` (JSON unless a str),
    both settable at any time, as is ``content_type`` (default: by the body);
    ``requests`` records (method, path, headers)."""

    def __init__(self, status: int = 200, body=None, content_type: str | None = None):
        self.status, self.body, self.content_type = status, body, content_type
        self.requests: list[tuple[str, str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.requests.append((self.command, self.path, dict(self.headers)))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                is_text = isinstance(server.body, str)
                payload = (server.body if is_text else json.dumps(server.body)).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", server.content_type
                                 or ("text/plain" if is_text else "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def refused_url(path: str = "/") -> str:
    """A URL on a port nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class SilentServer:
    """Listens but never answers: the kernel completes the TCP handshake, no
    HTTP response ever comes, so a client can only time out."""

    def __enter__(self) -> SilentServer:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        return self

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __exit__(self, *exc) -> None:
        self.sock.close()
