"""Twilio: calls and SMS out, through the twilio library (inbound_twiml.py, beside
it, builds the TwiML of inbound calls with the same library; nothing else imports it).

Calls carry their TwiML inline (one request fewer before the phone rings);
a message too long for the 4,000-character Twiml parameter is fetched from
our /twilio/twiml URL instead. Status and gather URLs carry the log id, since
a callback can arrive before Twilio's answer to the create request is stored.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import contextvars
import logging
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from . import Outgoing, ProviderError
from .speech import prompts, voice_for

TWIML_INLINE_MAX = 4000
# transient: the request may succeed later (rate limit, Twilio trouble, our credentials being fixed)
_TRANSIENT_CODES = {20429, 20003, 20500, 20503}

_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar("retry_after", default=None)
logging.getLogger("twilio").setLevel(logging.WARNING)  # it logs request headers at INFO


def _say(target, text: str, out: Outgoing, loop: int = 1) -> None:
    kwargs = {"voice": voice_for(out.voice, out.language)}
    if out.language:
        kwargs["language"] = out.language
    if loop > 1:
        kwargs["loop"] = loop
    target.say(text, **kwargs)


def call_twiml(out: Outgoing) -> str:
    """The TwiML of an alert call: the message ``repeat`` times; with gather, all
    of it inside <Gather numDigits=1> so a press during the message counts."""
    twiml = _call_twiml(out.message, out.voice, out.language, out.repeat, out.gather)
    if out.gather:  # the action URL is the one part that differs per call
        twiml = twiml.replace(_ACTION, escape(out.gather_action or "", _ATTR), 1)
    return twiml


_ACTION = "urn:alertd:gather-action"
_ATTR = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#09;"}  # as ElementTree writes an attribute


@functools.lru_cache(maxsize=256, typed=True)
def _call_twiml(message: str, voice: str, language: str | None, repeat: int, gather: bool) -> str:
    # alerts repeat their messages: building the XML is 6% of a notify's CPU, so it is built once
    out = Outgoing(log_id=0, channel="call", to="", from_="", message=message, voice=voice, language=language,
                   repeat=repeat, gather=gather, gather_action=_ACTION)
    response = VoiceResponse()
    if gather:
        ask, _, nothing = prompts(language)
        element = Gather(num_digits=1, action=_ACTION, method="POST", timeout=8)
        _say(element, message, out, repeat)
        _say(element, ask, out)
        response.append(element)
        _say(response, nothing, out)
    else:
        _say(response, message, out, repeat)
    return str(response)


def gather_reply_twiml(out: Outgoing, pressed_one: bool) -> str:
    """What the caller hears after pressing a key."""
    ask, thanks, _ = prompts(out.language)
    response = VoiceResponse()
    if pressed_one:
        _say(response, thanks, out)
    else:
        gather = Gather(num_digits=1, action=out.gather_action, method="POST", timeout=8)
        _say(gather, ask, out)
        response.append(gather)
    return str(response)


def signature_valid(auth_token: str, url: str, params: dict, signature: str) -> bool:
    if not auth_token or not signature:
        return False
    return RequestValidator(auth_token).validate(url, params, signature)


def compute_signature(auth_token: str, url: str, params: dict) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


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


class _HttpClient(AsyncTwilioHttpClient):
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
                _retry_after.set(float(value) if value is not None else None)
            except ValueError:
                _retry_after.set(None)
            return Response(resp.status, text, resp.headers)


class TwilioProvider:
    def __init__(self, account_sid: str, auth_token: str, api_base_url: str, *, timeout: float = 10.0,
                 max_concurrency: int = 10):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout, self.max_concurrency = timeout, max_concurrency
        self.configured = bool(account_sid and auth_token)
        self.client: Client | None = None

    async def start(self) -> None:
        http = _HttpClient(self.timeout, self.max_concurrency)
        self.client = Client(self.account_sid or "AC-unset", self.auth_token or "unset", http_client=http)
        self.client.api.base_url = self.api_base_url

    async def close(self) -> None:
        if self.client is not None:
            await self.client.http_client.close()

    async def send(self, out: Outgoing) -> str:
        """Returns the sid. Raises ProviderError (permanent for 4xx other than rate limits)."""
        assert self.client is not None, "start() first"
        _retry_after.set(None)
        try:
            if out.channel == "sms":
                kwargs = {"to": out.to, "from_": out.from_, "body": out.message}
                if out.status_callback:
                    kwargs["status_callback"] = out.status_callback
                msg = await self.client.messages.create_async(**kwargs)
                return msg.sid
            kwargs = {"to": out.to, "from_": out.from_}
            twiml = call_twiml(out)
            if len(twiml) <= TWIML_INLINE_MAX or not out.twiml_url:
                kwargs["twiml"] = twiml
            else:
                kwargs["url"] = out.twiml_url
            if out.status_callback:
                kwargs["status_callback"] = out.status_callback
                kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
            if out.machine_detection:
                kwargs["machine_detection"] = "Enable"
            call = await self.client.calls.create_async(**kwargs)
            return call.sid
        except TwilioRestException as exc:
            transient = exc.status == 429 or exc.status >= 500 or exc.code in _TRANSIENT_CODES
            # the library prefixes Twilio's own message with "Unable to create record: "
            message = (exc.msg or "").partition("Unable to create record: ")[2] or exc.msg
            raise ProviderError(message or f"HTTP {exc.status}", exc.code or exc.status,
                                permanent=not transient, retry_after=_retry_after.get(), status=exc.status) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc}".rstrip(": "), None,
                                timeout=isinstance(exc, asyncio.TimeoutError)) from None
