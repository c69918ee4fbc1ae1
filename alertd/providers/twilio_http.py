"""The twilio library's HTTP layer on aiohttp, for alertd/providers/twilio.py.

A module of its own because ``twilio.http`` imports requests and urllib3
(about 10 MB of memory): TwilioProvider imports it when it starts, so a
daemon on another provider never loads them.
"""
from __future__ import annotations

import base64
import contextvars
import functools
from urllib.parse import quote_plus

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

# the Retry-After of the last answer, per task: concurrent sends each see their own
retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar("retry_after", default=None)


@functools.lru_cache(maxsize=4)
def _basic_auth(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


# the same values (TwiML, caller ID, callback events) come back request after request
_quote = functools.lru_cache(maxsize=1024)(quote_plus)


def _form(data: dict) -> bytes:
    """urlencode(data, doseq=True), with each value's quoting cached."""
    parts = []
    for key, value in data.items():
        for v in (value if isinstance(value, (list, tuple)) else (value,)):
            parts.append(f"{_quote(key)}={_quote(v if isinstance(v, str) else str(v))}")
    return "&".join(parts).encode()


class HttpClient(AsyncTwilioHttpClient):
    """Adds what the stock client lacks: a real aiohttp timeout, and the
    Retry-After header of the last answer, per task (concurrent sends each
    see their own)."""

    def __init__(self, timeout: float, max_concurrency: int):
        super().__init__(pool_connections=False, timeout=timeout)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_concurrency * 2, ttl_dns_cache=300))
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(self, method, url, params=None, data=None, headers=None, auth=None,
                      timeout=None, allow_redirects=False):
        headers = dict(headers or {})
        if auth:  # aiohttp 3.14 deprecates BasicAuth objects; the header is the same thing
            headers["Authorization"] = _basic_auth(auth)
        if isinstance(data, dict):
            # encode the form ourselves: aiohttp's FormData path costs ~10% of a notify's CPU
            data = _form(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(method.upper(), url, params=params, data=data, headers=headers,
                                        timeout=self._client_timeout,
                                        allow_redirects=allow_redirects) as resp:
            text = await resp.text()
            value = resp.headers.get("Retry-After")
            try:
                retry_after.set(float(value) if value is not None else None)
            except ValueError:
                retry_after.set(None)
            return Response(resp.status, text, resp.headers)
