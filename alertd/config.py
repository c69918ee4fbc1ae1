"""config.yaml: pydantic models, ${VAR} substitution, strict keys, file:line errors."""
from __future__ import annotations

import os
import socket
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from . import credentials, dburl, phones, provider_config, yamlfile
from .envsubst import substitute
from .durations import parse_duration
from .oncall_config import InboundNumber, ShiftNotice, reach_problems

DEFAULT_PATH = "/etc/alertd/config.yaml"


class ConfigError(Exception):
    """One or more problems, each a ``file:line: message`` line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _duration(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)


class MetricsConfig(Strict):
    """GET /metrics: on the API's own listener (default 127.0.0.1), without a key unless asked."""

    enabled: bool = True
    require_key: bool = False


class RateLimitConfig(Strict):
    """A token bucket per API key: bursts of up to ``requests``, refilled at ``requests`` per ``per``."""

    # 6,000 a minute: a burst of 1,000 triggers from one integration is accepted at once
    # (storm control folds what one number cannot take), a runaway loop is still stopped within seconds
    requests: int = Field(6000, ge=1)
    per: timedelta = timedelta(minutes=1)
    _norm_per = field_validator("per", mode="before")(_duration)

    @field_validator("per")
    @classmethod
    def _per(cls, v: timedelta) -> timedelta:
        if v.total_seconds() < 1:
            raise ValueError("must be at least 1s (write it like 1m)")
        return v


class ServerConfig(Strict):
    listen: str = "127.0.0.1:8080"
    public_url: str | None = None  # where Twilio reaches us; default http://{listen}
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    # on by default, far above what a monitoring system sends; null turns it off
    rate_limit: RateLimitConfig | None = Field(default_factory=RateLimitConfig)
    # /healthz fails when an outbox item has been due for longer than this
    health_max_outbox_age: timedelta = timedelta(minutes=10)
    _norm_health = field_validator("health_max_outbox_age", mode="before")(_duration)
    # a connection that has not sent its whole request head by then is closed (alertd/api/head_timeout.py)
    request_head_timeout: timedelta = timedelta(seconds=10)
    _norm_head = field_validator("request_head_timeout", mode="before")(_duration)

    @field_validator("request_head_timeout")
    @classmethod
    def _head_timeout(cls, v: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= v <= timedelta(minutes=5):
            raise ValueError("request_head_timeout must be between 1s and 5m")
        return v

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen must be HOST:PORT, e.g. 127.0.0.1:8080")
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"


class ProviderConfig(Strict):
    kind: Literal["twilio", "simulator"] = "simulator"
    account_sid: str = ""
    auth_token: str = ""
    # or from a file: a path, or a bare name in $CREDENTIALS_DIRECTORY (systemd's LoadCredential=)
    account_sid_file: str | None = None
    auth_token_file: str | None = None
    api_base_url: str = "https://api.twilio.com"
    numbers: list[str] = Field(default_factory=list)
    max_concurrency: int = Field(10, ge=1, le=1000)
    timeout: timedelta = timedelta(seconds=10)
    machine_detection: bool = False
    # the simulator's own outcome for every call: completed + a press of 1 when gather
    simulate_press: bool = True
    _norm_timeout = field_validator("timeout", mode="before")(_duration)

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        return [phones.normalize(n) for n in v]

    @field_validator("account_sid_file", "auth_token_file")
    @classmethod
    def _secret_file(cls, v: str | None, info: ValidationInfo) -> str | None:
        # checked here, at the key's own line; read into the inline field in _read_secret_files
        if not v:
            return None
        inline = info.field_name.removesuffix("_file")
        if info.data.get(inline):
            raise ValueError(f"set {inline} or {info.field_name}, not both")
        ctx = info.context or {}
        if credentials.wanted(v, ctx.get("secrets", "read")):
            credentials.read(v, base=ctx.get("base"))
        return v

    @model_validator(mode="after")
    def _read_secret_files(self, info: ValidationInfo) -> "ProviderConfig":
        ctx = info.context or {}
        for inline in ("account_sid", "auth_token"):
            source = getattr(self, f"{inline}_file")
            if source and credentials.wanted(source, ctx.get("secrets", "read")):
                setattr(self, inline, credentials.read(source, base=ctx.get("base")))
        return self


class DispatchConfig(Strict):
    max_attempts: int = Field(10, ge=1, le=100)
    backoff_base: timedelta = timedelta(seconds=1)
    backoff_max: timedelta = timedelta(minutes=5)
    _norm = field_validator("backoff_base", "backoff_max", mode="before")(_duration)


class PerNumberLimits(Strict):
    """At most ``calls`` calls and ``sms`` messages to one number in any ``per``;
    a channel left out is not limited. What exceeds is folded (alertd/dispatch/storm.py)."""

    calls: int | None = Field(None, ge=1)
    sms: int | None = Field(None, ge=1)
    per: timedelta = timedelta(minutes=15)
    _norm_per = field_validator("per", mode="before")(_duration)

    @field_validator("per")
    @classmethod
    def _per(cls, v: timedelta) -> timedelta:
        if v.total_seconds() < 1:
            raise ValueError("must be at least 1s (write it like 15m)")
        return v


class LimitsConfig(Strict):
    per_number: PerNumberLimits | None = None  # None: no limit, as the reference API


class DeadmanConfig(Strict):
    """Tell ``to`` (a contact or a number) when no provider request has
    succeeded, and at least one failed, for ``after`` (alertd/dispatch/deadman.py)."""

    to: str
    after: timedelta = timedelta(minutes=10)
    action_type: Literal["call", "sms", "both"] = "call"
    _norm_after = field_validator("after", mode="before")(_duration)

    @field_validator("after")
    @classmethod
    def _after(cls, v: timedelta) -> timedelta:
        if v.total_seconds() < 60:
            raise ValueError("must be at least 1m (write it like 10m)")
        return v


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class UIConfig(Strict):
    """The dashboard (alertd/ui): served by the daemon under ``path``; users from ``alertd users add``."""

    enabled: bool = True
    path: str = "/ui"

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        v = "/" + v.strip("/")
        if v == "/" or v.startswith(("/api", "/twilio", "/hooks", "/providers")):
            raise ValueError("must be a path of its own, like /ui")
        return v


class Contact(Strict):
    phone: str
    name: str | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        return phones.normalize(v)


class Rotation(Strict):
    """An on-call rotation: ``members`` take turns of ``shift``, handing over at
    ``start``'s wall-clock time in the config timezone (see alertd/oncall.py)."""

    members: list[str] = Field(min_length=1)
    shift: timedelta
    start: datetime  # naive = the config timezone; an explicit offset is kept
    notify_shift: ShiftNotice | None = None  # text each person before their shift (alertd/dispatch/shift_notices.py)
    _norm_shift = field_validator("shift", mode="before")(_duration)

    @field_validator("shift")
    @classmethod
    def _shift(cls, v: timedelta) -> timedelta:
        if v.total_seconds() < 60:
            raise ValueError("must be at least 1m (write it like 12h, 1d or 1w)")
        return v

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        # YAML reads an unquoted 2026-01-05T09:00:00 as a datetime and 2026-01-05
        # as a date, but 2026-01-05T09:00 (no seconds) as a string: take all three
        if isinstance(v, datetime):
            return v
        if isinstance(v, date):
            return datetime.combine(v, time())
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            except ValueError:
                pass
        raise ValueError(f"{v!r} is not a date-time like 2026-01-05T09:00")


class ClusterConfig(Strict):
    """Several nodes on one PostgreSQL database (docs/ops.md); ignored on SQLite."""

    node_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1,
                         max_length=200)
    # how long the leader's lease lasts unrenewed: a dead leader is replaced within about this
    lease: timedelta = timedelta(seconds=10)
    _norm_lease = field_validator("lease", mode="before")(_duration)

    @field_validator("lease")
    @classmethod
    def _lease(cls, v: timedelta) -> timedelta:
        if not 2 <= v.total_seconds() <= 600:
            raise ValueError("must be between 2s and 10m (write it like 10s)")
        return v


class Config(Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    # a SQLite file, or postgresql://user:password@host:5432/name for several nodes
    database: Path | str = Path("/var/lib/alertd/alertd.db")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    rules: Path = Path("/etc/alertd/rules")
    timezone: str = "UTC"
    provider: ProviderConfig = Field(default_factory=ProviderConfig)
    # several providers and failover (alertd/provider_config.py); empty: `provider:` as a list of one
    providers: list[provider_config.ProviderEntry] = Field(default_factory=list)
    routing: provider_config.RoutingConfig = Field(default_factory=provider_config.RoutingConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    ui: UIConfig = Field(default_factory=UIConfig)
    contacts: dict[str, Contact] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    rotations: dict[str, Rotation] = Field(default_factory=dict)
    retention: timedelta = timedelta(days=90)  # log rows, outbox items and events older than this are pruned
    deadman: DeadmanConfig | None = None  # off unless configured
    inbound: dict[str, InboundNumber] = Field(default_factory=dict)  # live call routing (alertd/inbound)
    path: Path | None = Field(None, exclude=True)  # where it was loaded from
    _provider_problems: list = PrivateAttr(default_factory=list)

    @field_validator("contacts", mode="before")
    @classmethod
    def _contacts(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: {"phone": c} if isinstance(c, (str, int)) else c for k, c in v.items()}
        return v

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, v: Any) -> Any:
        if dburl.is_postgres(v):
            return dburl.check(v)
        return Path(v) if isinstance(v, str) else v

    @property
    def postgres(self) -> bool:
        """Whether the database is PostgreSQL (several nodes) rather than a SQLite file."""
        return isinstance(self.database, str)

    @property
    def database_label(self) -> str:
        """The database as logs and answers may show it (a URL's password hidden)."""
        return dburl.redact(self.database) if isinstance(self.database, str) else str(self.database)

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, v: Any) -> timedelta:
        v = _duration(v)
        # shorter would prune a trigger still being escalated or retried
        if v < timedelta(days=1):
            raise ValueError("must be at least 1d (write it like 30d or 52w)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (use an IANA name like America/New_York)") from None
        return v

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        contacts = info.data.get("contacts") or {}
        for name, members in v.items():
            if name in contacts:
                raise ValueError(f"group '{name}' has the name of a contact; names are shared")
            for m in members:
                if m not in contacts:
                    raise ValueError(f"group '{name}': unknown contact '{m}'")
        return v

    @model_validator(mode="after")
    def _providers(self) -> "Config":
        if self.providers and "provider" in self.model_fields_set:
            raise ValueError("set provider (one) or providers (a list), not both")
        # reported with the other cross-references, each at its own line (name_problems)
        self._provider_problems = provider_config.reconcile(self)
        return self

    @model_validator(mode="after")
    def _names(self, info: ValidationInfo) -> "Config":
        # load() reports these itself, each at its own line; this catches Config built directly
        if not (info.context or {}).get("names_checked_by_loader"):
            problems = self.name_problems()
            if problems:
                raise ValueError("; ".join(f"{yamlfile.format_loc(loc)}: {msg}" for loc, msg in problems))
        return self

    def name_problems(self) -> list[tuple[tuple, str]]:
        """Cross-references of rotations: (key path, message) per problem.

        Contact, group and rotation names share one namespace, because a name
        in a rule's ``to`` may be any of the three.
        """
        problems: list[tuple[tuple, str]] = list(self._provider_problems)
        for name, rot in self.rotations.items():
            for kind, names in (("contact", self.contacts), ("group", self.groups)):
                if name in names:
                    problems.append((("rotations", name), f"'{name}' is already a {kind};"
                                     " contact, group and rotation names share one namespace"))
            for i, member in enumerate(rot.members):
                if member not in self.contacts:
                    problems.append((("rotations", name, "members", i), f"unknown contact '{member}'"))
        if self.deadman is not None and self.deadman.to not in self.contacts:
            try:
                phones.normalize(self.deadman.to)
            except ValueError:
                problems.append((("deadman", "to"), f"unknown contact '{self.deadman.to}'"
                                 " (a contact's name or a number like +15551230001)"))
        return problems + reach_problems(self)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _loc(err: dict) -> tuple:
    return provider_config.strip_tag(
        tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))))


def _describe(err: dict) -> str:
    loc = _loc(err)
    key = yamlfile.format_loc(loc)
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc[-1]}'" + (f" in {yamlfile.format_loc(loc[:-1])}" if loc[:-1] else "")
    msg = err["msg"].removeprefix("Value error, ")
    return f"{key}: {msg}" if key else msg


def load(path: str | Path | None = None, *, secrets: credentials.Mode = "read") -> tuple[Config, list[str]]:
    """Load and validate a config file. Returns (config, warnings).

    ``secrets``: whether the ``*_file`` secrets are read (alertd/credentials.py).
    Raises ConfigError with one ``file:line: message`` per problem.
    """
    path = Path(path or os.environ.get("ALERTD_CONFIG") or DEFAULT_PATH)
    try:
        doc = yamlfile.load(path)
    except yamlfile.YamlError as exc:
        raise ConfigError([str(exc)]) from None
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: the config must be a mapping of keys"])
    unset: list[tuple] = []
    data = substitute(data, (), unset)
    warnings = [f"{doc.where(loc)}: {yamlfile.format_loc(loc)}: environment variable {name} is not set"
                for loc, name in unset]
    try:
        config = Config.model_validate(data, context={"names_checked_by_loader": True, "secrets": secrets,
                                                      "base": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError([f"{doc.where(_loc(e))}: {_describe(e)}" for e in exc.errors()]) from None
    names = config.name_problems()
    if names:
        raise ConfigError([f"{doc.where(loc)}: {yamlfile.format_loc(loc)}: {msg}" for loc, msg in names])
    base = path.resolve().parent
    config.path = path.resolve()
    if isinstance(config.database, Path) and not config.database.is_absolute():
        config.database = base / config.database
    config.rules = config.rules if config.rules.is_absolute() else base / config.rules
    unread = [f for f in ("account_sid_file", "auth_token_file")
              if getattr(config.provider, f) and not credentials.wanted(getattr(config.provider, f), secrets)]
    if secrets == "check":
        warnings += [f"{doc.where(('provider', f))}: provider.{f}: not checked: '{getattr(config.provider, f)}'"
                     " is read from $CREDENTIALS_DIRECTORY when alertd runs under systemd" for f in unread]
    if secrets == "check" and "providers" in config.model_fields_set:
        warnings += [f"{doc.where(('providers', i, f))}: providers.{i}.{f}: not checked: it is read from"
                     " $CREDENTIALS_DIRECTORY when alertd runs under systemd"
                     for i, e in enumerate(config.providers) for f in e.unread_files(secrets)]
    p = config.provider
    if "providers" in config.model_fields_set:
        pass  # each entry's credentials were checked by its own model
    elif p.kind == "twilio" and not ((p.account_sid or p.account_sid_file) and (p.auth_token or p.auth_token_file)):
        warnings.append(f"{path}: provider: Twilio credentials are not configured; notify answers 503")
    if any(e.kind != "simulator" for e in config.providers) and not config.server.public_url:
        warnings.append(f"{path}: server.public_url is not set; providers cannot reach the status and press-1"
                        " callbacks")
    return config, warnings
