"""What the fakes of Telnyx, Vonage and Plivo share: an aiohttp server on
127.0.0.1 in a thread of its own, outcomes scripted per recipient, the
resources it created, and a requests session for the callbacks it sends
into the daemon (signed by each fake with its provider's real scheme).

Scripted outcomes, as in fake_twilio: ("ok",), ("http", status[, retry_after]),
("error", code) (a 400 about the recipient), ("timeout", seconds), ("drop",).
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests
from aiohttp import web


class LoopbackServer:
    """An aiohttp app (``routes``) served on 127.0.0.1 from a thread with its own loop."""

    name = "fake"
    port: int | None = None
    _loop = _thread = _runner = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self):
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"fake {self.name} failed to start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            pending = asyncio.all_tasks(loop)  # a scripted timeout still sleeping: ended, not abandoned
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        if self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Created:
    kind: str  # call | sms
    body: dict  # the JSON the client sent
    sid: str
    time: float = field(default_factory=time.monotonic)


class FakeProvider(LoopbackServer):
    name = "fake"

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []  # (kind, body) of every create request, answered or not
        self._arrivals: list[tuple[str, float]] = []  # (to, time.monotonic()) of every create request
        self.created: dict[str, Created] = {}
        self._scripts: dict[str, collections.deque] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._local = threading.local()
        self.recordings: dict[str, bytes] = {}  # name -> audio, served by each fake's recording route
        self.recording_headers: list[dict] = []  # the headers of every request for a recording

    # ---- controls and inspection ------------------------------------------
    def script(self, to: str, outcomes) -> None:
        with self._lock:
            self._scripts.setdefault(to, collections.deque()).extend(tuple(o) for o in outcomes)

    def arrivals(self) -> dict[str, list[float]]:
        """When each create request arrived, by recipient (time.monotonic: one clock for the machine)."""
        out: dict[str, list[float]] = {}
        with self._lock:
            for to, at in self._arrivals:
                out.setdefault(to, []).append(at)
        return out

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.created.clear()
            self._arrivals.clear()
            self._scripts.clear()

    def of_kind(self, kind: str) -> list[Created]:
        with self._lock:
            return sorted((c for c in self.created.values() if c.kind == kind), key=lambda c: c.time)

    def wait_for(self, n: int, kind: str, timeout: float = 10) -> list[Created]:
        with self._cond:
            if not self._cond.wait_for(lambda: sum(c.kind == kind for c in self.created.values()) >= n, timeout):
                raise AssertionError(f"{self.name}: expected {n} created {kind}")
        return self.of_kind(kind)

    # ---- recordings ------------------------------------------------------------
    def recording(self, request: web.Request, authorized: bool) -> web.Response:
        """A stored recording's audio, when the request is ``authorized``; 401 otherwise."""
        with self._lock:
            self.recording_headers.append(dict(request.headers))
        audio = self.recordings.get(request.match_info["name"])
        if not authorized:
            return self.error(401, None, "authentication failed")
        if audio is None:
            return self.error(404, None, "no such recording")
        return web.Response(body=audio, content_type="audio/mpeg")

    # ---- the REST side -----------------------------------------------------
    def error(self, status: int, code, message: str) -> web.Response:
        """The provider's own error body."""
        raise NotImplementedError

    async def create(self, request: web.Request, kind: str, body: dict, to: str,
                     answer) -> web.StreamResponse:
        """Apply the script for ``to``; on ok store the resource and return ``answer(sid)``."""
        arrived = time.monotonic()
        with self._lock:
            self.requests.append((kind, body))
            self._arrivals.append((to, arrived))
            queue = self._scripts.get(to)
            outcome = queue.popleft() if queue else ("ok",)
        what = outcome[0]
        if what == "timeout":
            await asyncio.sleep(outcome[1])
        elif what == "http":
            retry = outcome[2] if len(outcome) > 2 else None
            response = self.error(outcome[1], None, "scripted failure")
            if retry is not None:
                response.headers["Retry-After"] = str(retry)
            return response
        elif what == "error":
            return self.error(400, outcome[1], f"invalid destination {to}")
        elif what == "drop":
            request.transport.abort()
            raise asyncio.CancelledError()
        sid = str(uuid.uuid4())
        with self._cond:
            self.created[sid] = Created(kind, body, sid)
            self._cond.notify_all()
        return answer(sid)

    # ---- callbacks into the daemon (on the caller's thread) ---------------
    @property
    def http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session
