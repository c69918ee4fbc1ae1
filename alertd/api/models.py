"""Request bodies of the reference API, as pydantic models (they also feed /openapi.json).

Unknown fields are ignored, as the hosted API does: integrations written for it
may send extra keys. Values are read leniently (Zapier sends "2" for 2).
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import phones
from ..durations import parse_duration

Voice = Literal["alice", "man", "woman"]
ActionType = Literal["call", "sms", "both"]
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


# defer_build: a model's validator is built at its first use (the first request of its
# route), not at every start-up; json_body below does the same for their OpenAPI schemas
class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    message: str | None = Field(None, max_length=4000, description="Text to speak or send. Max 4,000 chars.")
    action_type: ActionType | None = Field(None, description="call (default), sms, or both.")
    from_: str | None = Field(None, alias="from", description="Caller/sender ID: one of provider.numbers.")
    voice: str | None = Field(None, description="alice (default), man, woman; or a Polly./Google. voice name.")
    repeat: int | None = Field(None, ge=1, le=5, description="Times to repeat the message (call only).")
    gather: bool | None = Field(None, description="Ask the recipient to press 1 to acknowledge (call only).")
    language: str | None = Field(None, description="Language of <Say>, e.g. en-US, es-MX.")
    source: str | None = Field(None, max_length=100, description="Label for the trigger log.")

    @field_validator("voice")
    @classmethod
    def _voice(cls, v: str | None) -> str | None:
        if v is None or v in ("alice", "man", "woman") or re.fullmatch(r"(Polly|Google)\.[\w.-]+", v):
            return v
        raise ValueError("voice must be alice, man or woman")

    @field_validator("language")
    @classmethod
    def _language(cls, v: str | None) -> str | None:
        if v is not None and not _LANGUAGE.match(v):
            raise ValueError("language must be a language tag like en-US or es-MX")
        return v

    @field_validator("from_")
    @classmethod
    def _from(cls, v: str | None) -> str | None:
        return None if v is None else phones.normalize(str(v))


def _seconds(v: object) -> float:
    return parse_duration(v).total_seconds()  # type: ignore[arg-type]


class RetryIn(BaseModel):
    """alertd extension: place an unanswered call again."""
    model_config = ConfigDict(extra="forbid", defer_build=True)
    times: int = Field(..., ge=0, le=10, description="Extra attempts (times: 2 means at most 3 calls).")
    every: float = Field(..., description="Wait between attempts: 30s, 2m, ...")
    _every = field_validator("every", mode="before")(classmethod(lambda cls, v: _seconds(v)))


class EscalateIn(BaseModel):
    """alertd extension: who is called next while nobody has acknowledged."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)
    after: float = Field(..., description="Counted from the first attempt: 5m, 10m, ...")
    to: list[str] = Field(..., min_length=1, max_length=10,
                          description="Numbers, or contact, group or rotation names from the config.")
    action_type: ActionType | None = None
    message: str | None = Field(None, max_length=4000)
    voice: str | None = None
    language: str | None = None
    repeat: int | None = Field(None, ge=1, le=5)
    gather: bool | None = None
    retry: RetryIn | None = None
    _after = field_validator("after", mode="before")(classmethod(lambda cls, v: _seconds(v)))

    @field_validator("to", mode="before")
    @classmethod
    def _to(cls, v: object) -> object:
        return [v] if isinstance(v, (str, int)) else v


class NotifyRequest(_Common):
    to: str | int | list[str | int] = Field(..., description="Phone number(s): US 10-digit or E.164; up to 10.")
    template_id: str | None = Field(None, description="A saved template; inline parameters override it.")
    send_sms: bool | None = Field(None, description='Shorthand for action_type "both".')
    retry: RetryIn | None = Field(None, description="alertd extension: retries of unanswered calls.")
    escalate: list[EscalateIn] | None = Field(None, max_length=10, description="alertd extension: escalation steps.")

    @field_validator("to", mode="before")
    @classmethod
    def _to_shape(cls, v: object) -> object:
        # checked before the union so a null or an object gives one readable
        # error instead of pydantic's per-branch ones ("to.str: ...")
        items = v if isinstance(v, list) else [v]
        if any(isinstance(i, bool) or not isinstance(i, (str, int)) for i in items):
            raise ValueError("to must be a phone number or an array of 1 to 10 phone numbers")
        return v

    @field_validator("to")
    @classmethod
    def _to(cls, v: str | int | list) -> list[str]:
        items = v if isinstance(v, list) else [v]
        if not 1 <= len(items) <= 10:
            raise ValueError("to must hold 1 to 10 numbers")
        out: list[str] = []
        for item in items:
            number = phones.normalize(str(item))
            if number not in out:  # the same person is called once
                out.append(number)
        return out


class TemplateCreate(_Common):
    name: str = Field(..., min_length=1, max_length=100)
    message: str = Field(..., min_length=1, max_length=4000)

    def fields(self) -> dict:
        """What the store keeps of a template (TEMPLATE_FIELDS), defaults filled in."""
        return {"message": self.message, "action_type": self.action_type or "call", "from": self.from_,
                "voice": self.voice or "alice", "repeat": self.repeat or 1, "gather": bool(self.gather),
                "language": self.language, "source": self.source}


class TemplateDelete(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    action: Literal["delete"]
    template_id: str


TEMPLATE_FIELDS = ("message", "action_type", "from", "voice", "repeat", "gather", "language", "source")


# json_body's marker in a route's openapi_extra, replaced by the body's schema when the
# OpenAPI document is made (App.openapi): the name of an entry of _BODIES
BODY_KEY = "x-alertd-json-body"
_BODIES: dict[str, tuple[type[BaseModel], ...]] = {}


def json_body(*models: type[BaseModel]) -> dict:
    """openapi_extra for an endpoint that reads its body itself: a JSON body of one of
    ``models``. Only names them: the schema is made with the OpenAPI document, when
    /openapi.json or /docs is first asked for (request_body). Made here, at import, the
    schemas cost every start-up a few per cent of its time to ready (bench/results.md)."""
    name = "|".join(f"{m.__module__}.{m.__qualname__}" for m in models)
    _BODIES[name] = models
    return {BODY_KEY: name}


def request_body(name: str) -> dict:
    """The OpenAPI requestBody json_body(...) named. Each schema is made self-contained:
    pydantic points nested models at "#/$defs/...", which resolves against the root of
    /openapi.json, where there is no $defs, so clients and fuzzers saw no usable body at all."""
    def inline(value, defs):
        if isinstance(value, dict):
            ref = value.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")], defs)
            return {k: inline(v, defs) for k, v in value.items()}
        if isinstance(value, list):
            return [inline(v, defs) for v in value]
        return value

    schemas = []
    for model in _BODIES[name]:
        schema = model.model_json_schema()
        schemas.append(inline(schema, schema.pop("$defs", {})))
    schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
    return {"required": True, "content": {"application/json": {"schema": schema}}}
