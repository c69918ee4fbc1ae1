"""Twilio: calls and SMS out, through the twilio library (with twilio_http.py, its HTTP layer on
aiohttp, loaded when this provider starts; inbound_twiml.py, beside it, builds the TwiML of inbound
calls with the same library; nothing else imports it).

The two create requests go through the library's client, its API domain and
its 2010-04-01 version: the same method, URL, headers, form and error
handling (TwilioRestException) as ``client.calls.create_async`` and
``client.messages.create_async``, which tests/test_twilio_requests.py
checks request for request. Not through those two: ``client.api`` loads the
resource classes of the whole account tree (about 7 MiB held for the
daemon's life), and each answer would be parsed into an instance of 40
fields (three dates among them) of which alertd reads the sid.

Calls carry their TwiML inline (one request fewer before the phone rings);
a message too long for the 4,000-character Twiml parameter is fetched from
our /twilio/twiml URL instead. Status and gather URLs carry the log id, since
a callback can arrive before Twilio's answer to the create request is stored.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from . import Outgoing, ProviderError
from .speech import prompts, voice_for

if TYPE_CHECKING:
    from twilio.base.version import Version
    from twilio.rest import Client

TWIML_INLINE_MAX = 4000
# transient: the request may succeed later (rate limit, Twilio trouble, our credentials being fixed)
_TRANSIENT_CODES = {20429, 20003, 20500, 20503}
# the headers the library's create methods send with the form (the client adds its User-Agent and the rest)
_CREATE_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
_CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]

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


class TwilioProvider:
    twilio_hosts = True  # the API is Twilio's own: its edge and region settings apply

    def __init__(self, account_sid: str, auth_token: str, api_base_url: str, *, timeout: float = 10.0,
                 max_concurrency: int = 10):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout, self.max_concurrency = timeout, max_concurrency
        self.configured = bool(account_sid and auth_token)
        self.client: Client | None = None
        self._api: Version | None = None
        self._failed: tuple[type[BaseException], ...] = (asyncio.TimeoutError, ConnectionError)  # start() adds aiohttp's

    async def start(self) -> None:
        # the REST client and its HTTP layer (requests, urllib3: ~10 MB) load only when
        # this provider is the one configured; the TwiML and signature helpers above are light
        from twilio.base.domain import Domain
        from twilio.base.version import Version
        from twilio.rest import Client
        from .twilio_http import HttpClient, retry_after  # as above: it imports twilio.http
        import aiohttp  # as above: a daemon on another provider, polling nothing, never loads it (8 MiB)
        self._failed = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)
        self._retry_after = retry_after
        http = HttpClient(self.timeout, self.max_concurrency)
        self.client = Client(self.account_sid or "AC-unset", self.auth_token or "unset", http_client=http)
        if not self.twilio_hosts:  # TWILIO_EDGE/TWILIO_REGION would rewrite another host's name
            self.client.edge = self.client.region = None
        # what client.api.v2010 is, without the account tree (see the module's docstring)
        self._api = Version(Domain(self.client, self.api_base_url), "2010-04-01")
        account = f"/Accounts/{self.client.account_sid}"
        self._uris = {"call": account + "/Calls.json", "sms": account + "/Messages.json"}

    def _refused(self, status, code, message: str | None) -> ProviderError:
        """Twilio's refusal: permanent for a 4xx other than rate limits and the transient codes."""
        status = status if isinstance(status, int) else None
        transient = status is None or status == 429 or status >= 500 or code in _TRANSIENT_CODES
        return ProviderError(message or f"HTTP {status}", code or status, permanent=not transient,
                             retry_after=self._retry_after.get(), status=status)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.http_client.close()

    async def send(self, out: Outgoing) -> str:
        """Returns the sid. Raises ProviderError (permanent for 4xx other than rate limits)."""
        assert self._api is not None, "start() first"
        self._retry_after.set(None)
        # the form in the order of the library's create methods (its values.of drops what is unset)
        if out.channel == "sms":
            data = {"To": out.to}
            if out.status_callback:
                data["StatusCallback"] = out.status_callback
            data["From"] = out.from_
            data["Body"] = out.message
        else:
            data = {"To": out.to, "From": out.from_}
            if out.status_callback:
                data["StatusCallback"] = out.status_callback
                data["StatusCallbackEvent"] = _CALL_EVENTS
            if out.machine_detection:
                data["MachineDetection"] = "Enable"
            twiml = call_twiml(out)
            if len(twiml) <= TWIML_INLINE_MAX or not out.twiml_url:
                data["Twiml"] = twiml
            else:
                data["Url"] = out.twiml_url
        try:
            payload = await self._api.create_async("POST", self._uris[out.channel], data=data,
                                                   headers=dict(_CREATE_HEADERS))
            return payload.get("sid")
        except TwilioRestException as exc:
            # the library prefixes Twilio's own message with "Unable to create record: "
            message = (exc.msg or "").partition("Unable to create record: ")[2] or exc.msg
            raise self._refused(exc.status, exc.code, message) from None
        except TwilioServiceException as exc:
            # an answer in RFC 9457's shape (type, title, status, code): the library raises this
            # instead, and it is no TwilioRestException; read as one, not as an adapter's bug
            raise self._refused(exc.status, exc.code, exc.detail or exc.title) from None
        except self._failed as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc}".rstrip(": "), None,
                                timeout=isinstance(exc, asyncio.TimeoutError)) from None
