"""config.yaml's ``providers:`` and ``routing:``.

    providers:
      - {name: main, kind: twilio, account_sid: ..., auth_token: ..., numbers: [...]}
      - {name: tx, kind: telnyx, api_key: ${TELNYX_API_KEY}, public_key: ..., application_id: ...}
    routing: {call: [main, tx], sms: [tx, main], by_prefix: {"+44": [tx, main]}}

The older ``provider:`` (one mapping) is a list of one, named after its kind.
Every secret has a ``*_file`` twin (a path, or a bare name in
$CREDENTIALS_DIRECTORY) and takes ${VAR} like any value. A provider with a
missing credential is an error that names the provider and the key.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from . import credentials, phones
from .durations import parse_duration

KINDS = ("twilio", "signalwire", "telnyx", "vonage", "plivo", "simulator")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _duration(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)


class _Entry(BaseModel):
    """What every provider has. Subclasses list their credentials in REQUIRED
    and which of them are secrets (with a ``*_file`` field) in SECRETS."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    SECRETS: ClassVar[tuple[str, ...]] = ()
    MULTILINE: ClassVar[tuple[str, ...]] = ("private_key",)

    name: str = ""
    numbers: list[str] = Field(default_factory=list)
    max_concurrency: int = Field(10, ge=1, le=1000)
    timeout: timedelta = timedelta(seconds=10)
    machine_detection: bool = False
    _norm_timeout = field_validator("timeout", mode="before")(_duration)

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        return [phones.normalize(n) for n in v]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not _NAME.match(v):
            raise ValueError("must be lower-case letters, digits, - or _ (at most 32), like 'backup'")
        return v

    @model_validator(mode="after")
    def _secrets(self, info: ValidationInfo) -> "_Entry":
        ctx = info.context or {}
        mode = ctx.get("secrets", "read")
        label = f"provider '{self.name or self.kind}' ({self.kind})"
        for key in self.SECRETS:
            source = getattr(self, f"{key}_file")
            if not source:
                continue
            if getattr(self, key):
                raise ValueError(f"{label}: set {key} or {key}_file, not both")
            if credentials.wanted(source, mode):
                try:
                    if key in self.MULTILINE:  # a PEM key: the file whole
                        value = credentials.resolve(source, base=ctx.get("base")).read_text().strip()
                    else:
                        value = credentials.read(source, base=ctx.get("base"))
                    setattr(self, key, value)
                except (OSError, ValueError) as exc:
                    raise ValueError(f"{label}: {key}_file: {exc}") from None
        missing = [k for k in self.REQUIRED if not getattr(self, k)
                   and not (k in self.SECRETS and getattr(self, f"{k}_file"))]
        if missing and not ctx.get("lenient_credentials"):
            keys = ", ".join(f"{k}" + (f" (or {k}_file)" if k in self.SECRETS else "") for k in missing)
            raise ValueError(f"{label}: missing {keys}")
        return self

    def unread_files(self, mode: credentials.Mode) -> list[str]:
        """The ``*_file`` keys whose files are not read in this mode (systemd credentials under check)."""
        return [f"{k}_file" for k in self.SECRETS
                if getattr(self, f"{k}_file") and not credentials.wanted(getattr(self, f"{k}_file"), mode)]


class TwilioEntry(_Entry):
    kind: Literal["twilio"]
    REQUIRED: ClassVar = ("account_sid", "auth_token")
    SECRETS: ClassVar = ("account_sid", "auth_token")
    account_sid: str = ""
    auth_token: str = ""
    account_sid_file: str | None = None
    auth_token_file: str | None = None
    api_base_url: str = "https://api.twilio.com"


class SignalWireEntry(_Entry):
    kind: Literal["signalwire"]
    REQUIRED: ClassVar = ("project_id", "api_token", "signing_key", "api_base_url")
    SECRETS: ClassVar = ("api_token", "signing_key")
    project_id: str = ""
    api_token: str = ""
    signing_key: str = ""
    api_token_file: str | None = None
    signing_key_file: str | None = None
    api_base_url: str = ""  # https://SPACE.signalwire.com: the space is the account's own


class TelnyxEntry(_Entry):
    kind: Literal["telnyx"]

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, v: str) -> str:
        import base64
        import binascii
        try:
            raw = base64.b64decode(v, validate=True) if v else b""
        except (binascii.Error, ValueError):
            raw = b"?"
        if v and len(raw) != 32:
            raise ValueError("must be the base64 Ed25519 public key from the Telnyx portal (32 bytes)")
        return v

    REQUIRED: ClassVar = ("api_key", "public_key", "application_id")
    SECRETS: ClassVar = ("api_key",)
    api_key: str = ""
    api_key_file: str | None = None
    public_key: str = ""  # base64 Ed25519 key from the portal: not a secret, it verifies
    application_id: str = ""  # the TeXML application (connection) calls are placed through
    account_sid: str = ""  # optional: place calls at /texml/Accounts/{account_sid}/Calls instead
    messaging_profile_id: str = ""
    api_base_url: str = "https://api.telnyx.com"


class VonageEntry(_Entry):
    kind: Literal["vonage"]

    @model_validator(mode="after")
    def _pem(self) -> "VonageEntry":
        # checked here so that `alertd check` refuses a key the daemon could never sign with
        if self.private_key and not self.private_key.lstrip().startswith("-----BEGIN"):
            raise ValueError(f"provider '{self.name or 'vonage'}' (vonage): private_key: not a PEM private key"
                             " (the file the Vonage dashboard gave, -----BEGIN PRIVATE KEY-----)")
        return self

    REQUIRED: ClassVar = ("application_id", "private_key", "signature_secret")
    SECRETS: ClassVar = ("private_key", "api_secret", "signature_secret")
    application_id: str = ""
    private_key: str = ""  # PEM; usually private_key_file
    private_key_file: str | None = None
    api_key: str = ""
    api_secret: str = ""
    api_secret_file: str | None = None
    signature_secret: str = ""
    signature_secret_file: str | None = None
    api_base_url: str = "https://api.nexmo.com"


class PlivoEntry(_Entry):
    kind: Literal["plivo"]
    REQUIRED: ClassVar = ("auth_id", "auth_token")
    SECRETS: ClassVar = ("auth_id", "auth_token")
    auth_id: str = ""
    auth_token: str = ""
    auth_id_file: str | None = None
    auth_token_file: str | None = None
    api_base_url: str = "https://api.plivo.com"


class SimulatorEntry(_Entry):
    kind: Literal["simulator"]
    simulate_press: bool = True


ProviderEntry = Annotated[Union[TwilioEntry, SignalWireEntry, TelnyxEntry, VonageEntry, PlivoEntry, SimulatorEntry],
                          Field(discriminator="kind")]


class RoutingConfig(BaseModel):
    """Which providers, in which order. Default: every provider in list order."""

    model_config = ConfigDict(extra="forbid")
    call: list[str] | None = None
    sms: list[str] | None = None
    by_prefix: dict[str, list[str]] = Field(default_factory=dict)  # "+44": [...]; the longest match wins
    # a provider is skipped for circuit_cooldown after circuit_failures failures in a row, then probed once
    circuit_failures: int = Field(3, ge=1, le=1000)
    circuit_cooldown: timedelta = timedelta(seconds=30)
    # ... or when at least circuit_failure_rate of its requests in the last circuit_window failed
    # (counted once circuit_min_requests were made in it): a provider failing every other send
    circuit_failure_rate: float = Field(0.5, gt=0, le=1)
    circuit_window: timedelta = timedelta(seconds=60)
    circuit_min_requests: int = Field(10, ge=1, le=100000)
    # a 429 asking to wait at most this long is retried on the same provider later; longer fails over
    retry_after_budget: timedelta = timedelta(seconds=2)
    _norm = field_validator("circuit_cooldown", "circuit_window", "retry_after_budget", mode="before")(_duration)

    @field_validator("by_prefix")
    @classmethod
    def _prefixes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for prefix in v:
            if not re.fullmatch(r"\+[0-9]{1,15}", str(prefix)):
                raise ValueError(f"prefix {prefix!r} must be '+' and digits, like \"+44\"")
        return v

    def order(self, names: list[str], channel: str, to: str) -> list[str]:
        """The providers to try for ``to`` on ``channel``, first choice first."""
        best = max((p for p in self.by_prefix if to.startswith(p)), key=len, default=None)
        if best is not None:
            return self.by_prefix[best]
        chosen = self.call if channel == "call" else self.sms
        return chosen if chosen is not None else names


def strip_tag(loc: tuple) -> tuple:
    """pydantic puts the union's tag in an error's path (providers.1.telnyx.api_key); the file has no such key."""
    if len(loc) > 2 and loc[0] == "providers" and isinstance(loc[1], int) and loc[2] in KINDS:
        return loc[:2] + loc[3:]
    return loc


def reconcile(config) -> list[tuple[tuple, str]]:
    """Fill ``config.providers`` from ``provider:`` when not given, check names
    and routing; returns (key path, message) problems. ``config.provider``
    then summarises the list for code that asks one provider's questions
    (numbers, concurrency, timeout)."""
    problems: list[tuple[tuple, str]] = []
    if not config.providers:
        p = config.provider
        data = {"name": p.kind, "kind": p.kind, "numbers": p.numbers, "max_concurrency": p.max_concurrency,
                "timeout": p.timeout, "machine_detection": p.machine_detection}
        if p.kind == "twilio":
            entry = TwilioEntry.model_construct(**data, account_sid=p.account_sid, auth_token=p.auth_token,
                                                api_base_url=p.api_base_url, account_sid_file=p.account_sid_file,
                                                auth_token_file=p.auth_token_file)
        else:
            entry = SimulatorEntry.model_construct(**data, simulate_press=p.simulate_press)
        config.__dict__["providers"] = [entry]  # not marked as set: the file did not say `providers:`
        return problems
    seen: dict[str, int] = {}
    for i, entry in enumerate(config.providers):
        if not entry.name:
            entry.name = entry.kind if entry.kind not in seen else f"{entry.kind}{i + 1}"
        if entry.name in seen:
            problems.append((("providers", i, "name"), f"'{entry.name}' is already provider {seen[entry.name] + 1}"))
        seen.setdefault(entry.name, i)
    names = list(seen)
    r = config.routing
    lists = [(("routing", "call"), r.call), (("routing", "sms"), r.sms),
             *((("routing", "by_prefix", k), v) for k, v in r.by_prefix.items())]
    for loc, chosen in lists:
        for j, name in enumerate(chosen or []):
            if name not in seen:
                problems.append((loc + (j,), f"unknown provider '{name}' (providers are: {', '.join(names)})"))
        if chosen is not None and not chosen:
            problems.append((loc, "must name at least one provider"))
    numbers = [n for e in config.providers for n in e.numbers]
    first_twilio = next((e for e in config.providers if e.kind == "twilio"), None)
    summary = {"kind": config.providers[0].kind if config.providers[0].kind in ("twilio", "simulator") else "twilio",
               "numbers": list(dict.fromkeys(numbers)),
               "max_concurrency": max(e.max_concurrency for e in config.providers),
               "timeout": max(e.timeout for e in config.providers),
               "machine_detection": config.providers[0].machine_detection,
               "account_sid": first_twilio.account_sid if first_twilio else "",
               "auth_token": first_twilio.auth_token if first_twilio else "",
               "simulate_press": next((e.simulate_press for e in config.providers if e.kind == "simulator"), True)}
    config.provider = type(config.provider).model_construct(**{**config.provider.model_dump(), **summary})
    return problems
