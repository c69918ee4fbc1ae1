"""``source: heartbeat:`` in rule files: a check that something keeps pinging.

    source:
      heartbeat:
        uuid: 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278   # optional; made (random) and stored when left out
        slug: nightly-backup                          # optional; /ping/PING_KEY/nightly-backup
        cron: "0 2 * * *"                              # or every: 1h
        grace: 30m                                     # default 1h

The checks here fit one rule; ``check_unique`` (called by the loader) finds a
uuid or slug that two rules claim, with both places.
"""
from __future__ import annotations

import re
import uuid as uuid_mod
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from alertd.rules.types import Cron, PositiveDuration, problem, short

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
# keys of a rule that mean nothing for a heartbeat: refused rather than ignored
NOT_FOR_HEARTBEATS = {
    "when": "a heartbeat notifies on its own flips; there is no event to test",
    "dedup_key": "a heartbeat is one check with one state",
    "group_by": "a heartbeat is one check with one state",
    "repeat_every": "use notify.escalate to call again while it stays down",
    "cooldown": "a heartbeat notifies only when it flips to down",
}


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uuid: str | None = None
    slug: str | None = None
    every: PositiveDuration | None = None
    cron: Cron | None = None
    grace: PositiveDuration = timedelta(hours=1)

    @field_validator("uuid", mode="before")
    @classmethod
    def _uuid(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return str(uuid_mod.UUID(str(value)))  # lower case with dashes, as Healthchecks shows it
        except ValueError:
            raise problem(f"invalid uuid {short(value)}",
                          hint="write it like 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278, or leave it out") from None

    @field_validator("slug", mode="before")
    @classmethod
    def _slug(cls, value: Any) -> Any:
        if value is not None and not (isinstance(value, str) and SLUG.fullmatch(value)):
            raise problem(f"invalid slug {short(value)}",
                          hint="use lower-case letters, digits, '-' and '_' (it is a URL path segment)")
        return value

    @model_validator(mode="after")
    def _period(self) -> Heartbeat:
        if self.every is not None and self.cron is not None:
            raise problem("both every and cron", key="cron", hint="set only one")
        if self.every is None and self.cron is None:
            raise problem("no every or cron",
                          hint="say how often it pings, e.g. every: 1h or cron: '0 2 * * *'")
        return self


def rule_problem(rule: Any) -> None:
    """Raise problem(...) for a rule key a heartbeat rule cannot use."""
    for key, why in NOT_FOR_HEARTBEATS.items():
        value = getattr(rule, key)
        if value:
            raise problem(f"{key} on a heartbeat rule", key=key, hint=why)


def check_unique(files: list) -> None:
    """Two rules with one uuid, or one slug, would share pings: both files are told where the other is.

    ``files``: the loader's per-file collectors (``rules``, ``add``, ``where``)."""
    seen: dict[tuple[str, str], tuple[Any, int]] = {}
    for f in files:
        for index, rule in f.rules:
            spec = rule.source.heartbeat
            if spec is None:
                continue
            for key in ("uuid", "slug"):
                value = getattr(spec, key)
                if value is None:
                    continue
                loc = ("rules", index, "source", "heartbeat", key)
                if (key, value) in seen:
                    other, other_index = seen[(key, value)]
                    where = other.where(("rules", other_index, "source", "heartbeat", key))
                    f.add(loc, f"rule '{rule.id}': {key} {value!r} is used by another heartbeat (first at {where})")
                else:
                    seen[(key, value)] = (f, index)
