"""Providers send what the outbox hands them. One error type says whether a retry can help."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class ProviderError(Exception):
    """A send that failed. ``permanent`` means retrying cannot help (invalid
    number, unsubscribed); otherwise the outbox retries, not before
    ``retry_after`` seconds when the provider said so."""

    def __init__(self, message: str, code: int | str | None = None, *, permanent: bool = False,
                 retry_after: float | None = None, status: int | None = None, timeout: bool = False):
        super().__init__(message)
        self.message, self.code, self.permanent, self.retry_after = message, code, permanent, retry_after
        # the HTTP status, when there was an answer; timeout: the request may have been carried out
        self.status, self.timeout = status, timeout
        self.provider: str | None = None  # the name of the provider that failed last (set by the router)

    @property
    def provider_fault(self) -> bool:
        """Whether another provider could do better: anything transient, and a
        refusal of our credentials or account (401, 403). A refusal of the
        recipient (an invalid number) is the same everywhere."""
        return not self.permanent or self.status in (401, 403)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Outgoing:
    """One channel of one log row, ready to send."""

    log_id: int
    channel: str  # call | sms
    to: str
    from_: str
    message: str
    voice: str = "alice"
    language: str | None = None
    repeat: int = 1
    gather: bool = False
    status_callback: str | None = None  # URL, carries the log id
    gather_action: str | None = None  # URL for the press of 1, carries the log id
    twiml_url: str | None = None  # where the TwiML can be fetched when too long to send inline
    machine_detection: bool = False
    callback_base: str | None = None  # {public_url}/providers/{name}: set by the router per provider
    token: str = ""  # unguessable per row and provider, for callback URLs a provider does not sign


class Sent(str):
    """A provider's sid, and the name of the provider that carried the send."""

    provider: str | None = None

    @classmethod
    def of(cls, sid: str, provider: str | None) -> "Sent":
        sent = cls(sid)
        sent.provider = provider
        return sent


class Provider(Protocol):
    configured: bool

    async def start(self) -> None: ...

    async def send(self, out: Outgoing) -> str:
        """Returns the provider's sid (CA... or SM...). Raises ProviderError."""

    async def close(self) -> None: ...
