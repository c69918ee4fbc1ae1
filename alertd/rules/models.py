"""The shape of a rule file, as pydantic models.

Every model forbids unknown keys: a typo such as ``tmeplate:`` must fail the
file, not silently drop the template. Values are normalised on the way in
(durations to timedelta, times to ``datetime.time``, weekdays to numbers, a
single ``to`` to a list; see ``types``) so the engine never parses text at
evaluation time.

Checks that need something outside the file (contact names, other files,
Jinja2 compilation) live in ``loader``; checks that fit one value or one
model live here.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from alertd.rules.heartbeat import Heartbeat, rule_problem
from alertd.rules.types import (
    RULE_ID,
    ActionType,
    ClockTime,
    Cron,
    Days,
    Duration,
    PositiveDuration,
    Repeat,
    StrList,
    Text,
    TimeZoneName,
    Voice,
    short,
    problem,
)


class Strict(BaseModel):
    # defer_build: the validators are built when the first rule file is read, not at import
    # (a daemon or a command that reads no rule file never builds them)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


# --- notify ----------------------------------------------------------------------

class Retry(Strict):
    """Extra attempts of an unanswered call: ``times: 2`` means at most 3 calls."""

    times: Annotated[int, Field(ge=0, le=10)]
    every: PositiveDuration


class _Delivery(Strict):
    """What a notification and an escalation step have in common."""

    to: StrList
    action_type: ActionType | None = None
    message: Text | None = None
    voice: Voice | None = None
    language: str | None = None
    repeat: Repeat | None = None
    gather: bool | None = None
    retry: Retry | None = None
    # a ``to`` template's result from event data is looked up as a contact, group or rotation name:
    # only for trusted event sources (alertd/engine/recipients.py)
    to_names_from_event: bool = False

    @field_validator("to")
    @classmethod
    def _to_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise problem("no recipient", hint="list contacts, groups, rotations or numbers")
        return value


class EscalateStep(_Delivery):
    """Runs when the trigger is still unacknowledged ``after`` the first attempt.

    Unset fields inherit from the notification.
    """

    after: Duration


class Notify(_Delivery):
    template: str | None = None
    from_: Text | None = Field(None, alias="from")
    delay: Duration | None = None
    at: Text | None = None
    escalate: list[EscalateStep] = []

    @model_validator(mode="after")
    def _consistent(self) -> Notify:
        if self.message is None and self.template is None:
            raise problem("no message or template", hint="set notify.message or notify.template")
        if self.delay is not None and self.at is not None:
            raise problem("both delay and at", key="at", hint="set only one")
        return self


class Template(Strict):
    """A named template: the fields of the API's templates."""

    message: Text
    action_type: ActionType | None = None
    voice: Voice | None = None
    repeat: Repeat | None = None
    gather: bool | None = None
    language: str | None = None
    from_: Text | None = Field(None, alias="from")
    source: Annotated[str, Field(max_length=100)] | None = None


# --- sources ---------------------------------------------------------------------

def _one_of_every_cron(model: Any) -> None:
    if model.every is not None and model.cron is not None:
        raise problem("both every and cron", key="cron", hint="set only one")
    if model.every is None and model.cron is None:
        raise problem("no every or cron", hint="say how often, e.g. every: 5m or cron: '*/5 * * * *'")


class Poll(Strict):
    """An HTTP check; ``headers`` may hold ${VAR}, substituted by the poll source."""

    url: str
    every: PositiveDuration | None = None
    cron: Cron | None = None
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, Text] = {}
    body: Any = None
    timeout: PositiveDuration = timedelta(seconds=10)
    # the url as the file has it, ${VAR} unexpanded: set by the loader, which substitutes before validation
    _url_as_written: str | None = PrivateAttr(None)

    def shown(self) -> dict:
        """This poll as the API shows it to any key: the url as written (${VAR} unexpanded) with its
        password hidden, and every header value and the body hidden: a token can be written there
        literally as well as through ${VAR}."""
        out = self.model_dump(mode="json")
        out["url"] = hide_password(self._url_as_written or self.url)
        out["headers"] = {name: "***" for name in self.headers}
        if self.body is not None:
            out["body"] = "***"
        return out

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"https?://", value):
            raise problem(f"invalid url {short(value)}", hint="it must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _schedule(self) -> Poll:
        _one_of_every_cron(self)
        return self


def hide_password(url: str) -> str:
    """``url`` with the password of its user info, if any, as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class Schedule(Strict):
    every: PositiveDuration | None = None
    cron: Cron | None = None

    @model_validator(mode="after")
    def _schedule(self) -> Schedule:
        _one_of_every_cron(self)
        return self


SOURCE_KINDS = ("webhook", "poll", "schedule", "heartbeat")


class Source(Strict):
    """Exactly one of ``webhook: NAME`` (with ``format``), ``poll: {...}``, ``schedule: {...}``,
    ``heartbeat: {...}`` (alertd/rules/heartbeat.py)."""

    webhook: str | None = None
    format: Literal["generic", "alertmanager", "grafana"] | None = None
    poll: Poll | None = None
    schedule: Schedule | None = None
    heartbeat: Heartbeat | None = None

    @field_validator("webhook")
    @classmethod
    def _hook_name(cls, value: str | None) -> str | None:
        # the name is a path segment: /hooks/NAME
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise problem(f"invalid webhook name {short(value)}", hint="use letters, digits, '.', '-' and '_'")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        present = [k for k in SOURCE_KINDS if getattr(self, k) is not None]
        if len(present) > 1:
            raise problem(
                f"{len(present)} sources ({' and '.join(present)})",
                key=present[1],
                hint="a rule has exactly one of webhook, poll, schedule, heartbeat",
            )
        if not present:
            raise problem("no webhook, poll, schedule or heartbeat", hint="a rule needs exactly one source")
        if self.format is not None and self.webhook is None:
            raise problem("format without webhook", key="format", hint="format only applies to webhook sources")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SOURCE_KINDS if getattr(self, k) is not None)

    @property
    def webhook_format(self) -> str:
        return self.format or "generic"

    @property
    def stateful(self) -> bool:
        """Poll and alertmanager/grafana webhooks flip between firing and resolved."""
        return self.poll is not None or (
            self.webhook is not None and self.webhook_format in ("alertmanager", "grafana")
        )


# --- rule ------------------------------------------------------------------------

class Active(Strict):
    """When a rule may notify; see ``alertd.engine.windows`` for the exact meaning."""

    days: Days | None = None
    from_: ClockTime | None = Field(None, alias="from")
    until: ClockTime | None = None
    timezone: TimeZoneName | None = None


class Rule(Strict):
    """One rule. ``timezone(default)`` is the zone of its window, cron and ``now``."""

    id: str
    description: str = ""
    source: Source
    when: Text | None = None
    active: Active | None = None
    notify: Notify
    cooldown: Duration | None = None
    dedup_key: Text | None = None
    repeat_every: PositiveDuration | None = None
    notify_resolved: bool = False
    group_by: StrList = []
    group_wait: Duration = timedelta(seconds=30)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if isinstance(value, str) and not RULE_ID.fullmatch(value):
            raise problem(
                f"invalid rule id {short(value)}",
                hint="use only lower-case letters, digits, '-' and '_'",
            )
        return value

    @field_validator("group_by")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", path):
                raise problem(f"invalid path {short(path)}", hint="write a dotted path like labels.alertname")
        return value

    @model_validator(mode="after")
    def _stateful_only(self) -> Rule:
        if self.source.heartbeat is not None:
            rule_problem(self)  # up and down are its states; notify_resolved says "it is back"
        elif not self.source.stateful:
            for key in ("repeat_every", "notify_resolved"):
                if getattr(self, key):
                    raise problem(
                        f"{key} on a {self.source.kind} rule",
                        key=key,
                        hint="it only applies to poll rules and alertmanager/grafana webhooks",
                    )
        return self

    def timezone(self, default: str) -> str:
        """The rule's timezone: ``active.timezone``, else the config's."""
        return (self.active.timezone if self.active else None) or default


class RuleFile(Strict):
    """A whole file, for schema export; the loader validates templates and rules one by one."""

    templates: dict[str, Template] = {}
    rules: list[Rule] = []
