"""What the provider modules share: the HTTP client, error classification,
callback requests and replies, and per-row callback tokens.

A provider module speaks its own REST API through ``JsonClient`` and turns
each answer that is not a success into a ProviderError with ``classify``, so
transient and permanent mean the same thing for every provider.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import structlog

from . import Outgoing, ProviderError

if TYPE_CHECKING:
    import aiohttp

log = structlog.get_logger("alertd.providers")


@dataclass(frozen=True)
class Inbound:
    """One callback request, as the provider sent it: verified before it is read."""

    method: str
    url: str  # the public URL the provider was given: server.public_url + path + query
    headers: dict[str, str]  # lower-case names
    body: bytes
    query: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise CallbackRefused(400, "the body is not JSON") from None

    def log_id(self) -> int:
        log_id = number(self.query.get("log_id", ""), 18)
        if log_id is None:
            raise CallbackRefused(400, "log_id: missing from the callback URL, or not a log id")
        return log_id


@dataclass(frozen=True)
class Reply:
    body: str = ""
    media_type: str = "application/xml"


class CallbackRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Hooks(Protocol):
    """What a provider's callbacks may do to alertd (alertd/api/provider_hooks.py)."""

    async def call_status(self, log_id: int, sid: str | None, status: str, answered_by: str | None = None,
                          error_code: int | None = None, provider_status: str | None = None) -> bool: ...

    async def sms_status(self, log_id: int, sid: str | None, status: str, error_code: int | None = None,
                         provider_status: str | None = None) -> bool: ...

    async def digits(self, log_id: int, digits: str, from_: str | None = None) -> bool: ...

    async def inbound_sms(self, sender: str, body: str) -> str:
        """An SMS reply; the text to answer with."""

    async def outgoing(self, log_id: int) -> Outgoing | None:
        """The call as it was sent, to serve its instructions again."""


def number(text: str, max_digits: int = 9) -> int | None:
    """``text`` as an int when it is ASCII digits only, at most ``max_digits`` of them; else None.
    isdigit() alone lets "²" through (int() refuses it), and an INTEGER column holds 64 bits."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= max_digits else None


def row_token(secret: str, name: str, log_id: int) -> str:
    """An unguessable token of one log row for one provider, derived from that
    provider's own secret: nothing to store, and still valid after a restart."""
    return hmac.new(secret.encode(), f"{name}:{log_id}".encode(), hashlib.sha256).hexdigest()[:32]


def check_token(secret: str, name: str, inbound: Inbound) -> int:
    """The log id of a callback whose URL carries the row's token; CallbackRefused(403) otherwise."""
    log_id = inbound.log_id()
    if not hmac.compare_digest(inbound.query.get("t", ""), row_token(secret, name, log_id)):
        raise CallbackRefused(403, "invalid callback token")
    return log_id


def classify(status: int, code: Any, message: str, *, permanent_codes: frozenset = frozenset(),
             transient_codes: frozenset = frozenset(), retry_after: float | None = None) -> ProviderError:
    """An HTTP error answer as a ProviderError: 429, 5xx, 401 and 403 (our
    credentials or account) are transient; other 4xx are about the request or
    its recipient, so permanent; a provider's own codes override both ways."""
    transient = status == 429 or status >= 500 or status in (401, 403)
    if code is not None and str(code) in transient_codes:
        transient = True
    if code is not None and str(code) in permanent_codes:
        transient = False
    return ProviderError(message or f"HTTP {status}", code if code is not None else status,
                         permanent=not transient, retry_after=retry_after, status=status)


def retry_after(headers) -> float | None:
    try:
        value = headers.get("Retry-After")
        return float(value) if value is not None else None
    except ValueError:
        return None


class RestProvider:
    """A provider spoken to with JSON POSTs: ``api`` + path, ``headers()``,
    and ``error(status, body, headers)`` turning a refusal into a ProviderError."""

    api = ""

    def __init__(self, timeout: float, max_concurrency: int):
        self.http = JsonClient(timeout, max_concurrency)
        self._replies: set[asyncio.Task] = set()

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        for task in list(self._replies):
            task.cancel()
        await self.http.close()

    async def send(self, out: Outgoing) -> str:
        raise NotImplementedError

    def reply(self, to: str, from_: str, text: str) -> None:
        """Answer an SMS reply with ``text``, for providers whose webhook answer
        cannot carry one: a send of its own, after the webhook is answered."""
        if not (to and from_ and text):
            return
        out = Outgoing(log_id=0, channel="sms", to=to, from_=from_, message=text)
        task = asyncio.get_running_loop().create_task(self._reply(out))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _reply(self, out: Outgoing) -> None:
        try:
            await self.send(out)
        except ProviderError as exc:
            log.warning("could not answer an SMS reply", to=out.to, error=exc.as_dict())

    def headers(self) -> dict:
        raise NotImplementedError

    def error(self, status: int, body: dict, headers) -> ProviderError:
        raise NotImplementedError

    async def _post(self, path: str, body: dict) -> dict:
        status, data, headers = await self.http.request("POST", self.api + path, json=body, headers=self.headers())
        if status < 300:
            return data or {}
        raise self.error(status, data if isinstance(data, dict) else {}, headers)


class JsonClient:
    """One aiohttp session per provider, with a total timeout per request.
    Connection failures and timeouts become transient ProviderErrors (a
    timeout flagged: the provider may have acted on it)."""

    def __init__(self, timeout: float, max_concurrency: int):
        self.timeout: "aiohttp.ClientTimeout | float" = timeout  # the library's ClientTimeout once started
        self.limit = max_concurrency * 2
        self.session: "aiohttp.ClientSession | None" = None
        self._failed: tuple[type[BaseException], ...] = (ConnectionError,)

    async def start(self) -> None:
        import aiohttp  # here, not at the top: a daemon that never makes an outgoing HTTP request never loads aiohttp (8 MiB)
        self.timeout = aiohttp.ClientTimeout(total=self.timeout)
        self._failed = (aiohttp.ClientError, ConnectionError)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.limit, ttl_dns_cache=300),
                                             json_serialize=lambda o: orjson.dumps(o).decode())

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def request(self, method: str, url: str, *, headers: dict, json: Any = None,
                      data: Any = None) -> tuple[int, Any, Any]:
        """(status, parsed JSON body or None, headers). Raises ProviderError when there is no answer."""
        assert self.session is not None, "start() first"
        try:
            async with self.session.request(method, url, json=json, data=data, headers=headers,
                                            timeout=self.timeout, allow_redirects=False) as resp:
                raw = await resp.read()
                try:
                    body = orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    body = None
                return resp.status, body, resp.headers
        except asyncio.TimeoutError:
            raise ProviderError(f"no answer within {self.timeout.total:g}s", None, timeout=True) from None
        except self._failed as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc}".rstrip(": "), None) from None
