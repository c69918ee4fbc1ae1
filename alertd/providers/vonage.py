"""Vonage: calls through the Voice API (POST /v1/calls with an NCCO), SMS
through the Messages API (POST /v1/messages), both with the application's
JWT (RS256, made with PyJWT from the application id and private key).

REST with aiohttp: Vonage's Python SDK is synchronous (requests). The JWT is
made once and reused for TOKEN_REUSE seconds, from the key parsed once: on
the 2-core test machine an RS256 signature took 3 ms and parsing the PEM
with it 147 ms, against about 1 ms of CPU for the rest of a send.

The NCCO says the message ``repeat`` times with bargeIn, then the press-1
prompt, then waits for one DTMF digit: a key pressed during the message
ends it and counts. Webhooks are signed: a JWT (HS256, the account's
signature secret) in Authorization whose ``payload_hash`` is the SHA-256 of
the body; event and input URLs also carry the row's token.
"""
from __future__ import annotations

import hashlib
import hmac
import time
import uuid
import warnings

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.warnings import InsecureKeyLengthWarning
import orjson

from . import Outgoing, ProviderError
from .common import CallbackRefused, Hooks, Inbound, Reply, RestProvider, check_token, classify, number, retry_after
from .speech import prompts

TOKEN_REUSE = 300  # seconds a JWT is reused; it is valid for twice that
TOLERANCE = 300  # seconds: an older signed webhook is refused
CALL_STATUS = {"started": "initiated", "ringing": "ringing", "answered": "in-progress", "completed": "completed",
               "busy": "busy", "cancelled": "canceled", "failed": "failed", "rejected": "failed",
               "timeout": "no-answer", "unanswered": "no-answer"}
SMS_STATUS = {"submitted": "sent", "delivered": "delivered", "read": "read", "rejected": "failed",
              "undeliverable": "undelivered"}


def _digits(number: str) -> str:
    return number.lstrip("+")  # Vonage writes E.164 without the plus


def private_key(pem: str):
    """The application's private key, parsed. Raises ProviderError."""
    try:
        return load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ProviderError(f"private_key: not a PEM private key ({exc})", None, status=401) from None


def application_jwt(application_id: str, key, now: float) -> str:
    """The application's JWT (RS256), valid for 2 * TOKEN_REUSE seconds from ``now``: the
    Bearer token of the Voice and Messages APIs and of a recording's download."""
    return jwt.encode({"application_id": application_id, "iat": int(now), "exp": int(now) + 2 * TOKEN_REUSE,
                       "jti": str(uuid.uuid4())}, key, algorithm="RS256")


def ncco(out: Outgoing) -> list[dict]:
    talk = {"action": "talk", "text": out.message, "bargeIn": out.gather}
    if out.language:
        talk["language"] = out.language
    if out.repeat > 1:
        talk["loop"] = out.repeat
    if not out.gather:
        return [talk]
    ask = {"action": "talk", "text": prompts(out.language)[0], "bargeIn": True}
    return [talk, ask, {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1, "timeOut": 8},
                        "eventUrl": [out.gather_action], "eventMethod": "POST"}]


class VonageProvider(RestProvider):
    TOKEN_IN_URL = True

    def __init__(self, name: str, application_id: str, private_key: str, signature_secret: str, *,
                 api_base_url: str = "https://api.nexmo.com", timeout: float = 10.0, max_concurrency: int = 10,
                 clock):
        self.name, self.application_id, self.private_key = name, application_id, private_key
        self.signature_secret = signature_secret
        self.api = api_base_url.rstrip("/")
        self.clock = clock  # has timestamp(): how old a signed token is
        super().__init__(timeout, max_concurrency)
        self._jwt: tuple[float, str] | None = None
        self._key = None  # the parsed private key: parsing a PEM costs ~50x a signature
        self.configured = bool(application_id and private_key and signature_secret)

    @property
    def token_secret(self) -> str:
        return self.signature_secret

    def headers(self) -> dict:
        now = time.time()  # a real clock: Vonage checks iat against its own
        if self._jwt is None or now - self._jwt[0] > TOKEN_REUSE:
            if self._key is None:
                self._key = private_key(self.private_key)
            self._jwt = (now, application_jwt(self.application_id, self._key, now))
        return {"Authorization": f"Bearer {self._jwt[1]}", "Accept": "application/json"}

    async def send(self, out: Outgoing) -> str:
        """Returns the call's uuid or the message's uuid. Raises ProviderError."""
        if out.channel == "sms":
            body = {"message_type": "text", "channel": "sms", "to": _digits(out.to), "from": _digits(out.from_),
                    "text": out.message}
            if out.status_callback:
                body["webhook_url"] = out.status_callback
            return (await self._post("/v1/messages", body)).get("message_uuid", "")
        body = {"to": [{"type": "phone", "number": _digits(out.to)}],
                "from": {"type": "phone", "number": _digits(out.from_)},
                "ncco": ncco(out), "event_url": [out.status_callback], "event_method": "POST"}
        if out.machine_detection:
            body["machine_detection"] = "continue"
        return (await self._post("/v1/calls", body)).get("uuid", "")

    def error(self, status: int, body: dict, headers) -> ProviderError:
        message = body.get("detail") or body.get("title") or body.get("error_title") or ""
        return classify(status, str(body.get("type", "")).rpartition("#")[2] or None, message,
                        retry_after=retry_after(headers))

    # --- callbacks -------------------------------------------------------
    def verify(self, inbound: Inbound) -> dict:
        """The claims of the webhook's JWT; CallbackRefused(403) unless it is
        signed with the signature secret, recent, and hashes this body."""
        auth = inbound.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        try:
            with warnings.catch_warnings():
                # the secret's length is Vonage's choice, not the user's: no warning per webhook
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                claims = jwt.decode(token, self.signature_secret, algorithms=["HS256"],
                                    options={"verify_exp": False, "verify_iat": False})
        except jwt.PyJWTError:
            raise CallbackRefused(403, "invalid Vonage signature") from None
        if not hmac.compare_digest(str(claims.get("payload_hash", "")), hashlib.sha256(inbound.body).hexdigest()):
            raise CallbackRefused(403, "invalid Vonage signature: the body does not match")
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or abs(self.clock.timestamp() - iat) > TOLERANCE:
            raise CallbackRefused(403, "stale Vonage signature")
        return claims

    async def callback(self, what: str, inbound: Inbound, hooks: Hooks, prepare) -> Reply:
        self.verify(inbound)
        data = inbound.json() or {}
        if what == "sms":  # an inbound message: the number's webhook, set in the dashboard
            if data.get("channel", "sms") == "sms" and data.get("text") is not None:
                sender = "+" + str(data.get("from", "")).lstrip("+")
                ours = "+" + str(data.get("to", "")).lstrip("+")
                self.reply(sender, ours, await hooks.inbound_sms(sender, str(data["text"])))
            return Reply("", "text/plain")
        log_id = check_token(self.signature_secret, self.name, inbound)
        if what == "status" and inbound.query.get("channel") == "sms":
            code = str((data.get("error") or {}).get("type", "")).rpartition("/")[2]
            raw = str(data.get("status", ""))
            await hooks.sms_status(log_id, data.get("message_uuid"), SMS_STATUS.get(raw, "sent"),
                             number(code), provider_status=raw)
        elif what == "status":
            status = data.get("status", "")
            if status in ("machine", "human"):  # answering-machine detection's verdict
                await hooks.call_status(log_id, data.get("uuid"), "in-progress",
                                  "machine_start" if status == "machine" else "human", provider_status=status)
            elif status in CALL_STATUS:
                await hooks.call_status(log_id, data.get("uuid"), CALL_STATUS[status], provider_status=status)
        elif what == "gather":
            digits = str((data.get("dtmf") or {}).get("digits") or "")
            acked = await hooks.digits(log_id, digits, "+" + str(data.get("from", "")).lstrip("+"))
            out = await hooks.outgoing(log_id)
            if out is None:
                return Reply("[]", "application/json")
            out = prepare(out)
            ask, thanks, _ = prompts(out.language)
            if acked or digits.strip() == "1":
                reply = [{"action": "talk", "text": thanks}]
            else:
                reply = [{"action": "talk", "text": ask, "bargeIn": True},
                         {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1, "timeOut": 8},
                          "eventUrl": [out.gather_action], "eventMethod": "POST"}]
            return Reply(orjson.dumps(reply).decode(), "application/json")
        else:
            raise CallbackRefused(404, f"no callback '{what}'")
        return Reply("", "text/plain")


def build(entry, timeout: float, clock) -> VonageProvider:
    return VonageProvider(entry.name, entry.application_id, entry.private_key, entry.signature_secret,
                          api_base_url=entry.api_base_url, timeout=timeout, max_concurrency=entry.max_concurrency,
                          clock=clock)
