"""The rule set that is live: an immutable snapshot, swapped whole on reload."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

from alertd.rules.models import Rule, Template


@dataclass(frozen=True)
class RuleSet:
    """Rules that loaded cleanly, and what they refer to.

    - ``rules``: rule id -> Rule, in file order (files sorted by path).
    - ``templates``: named template -> Template (shared by all files).
    - ``files``: rule id -> the file it came from, as displayed in errors.
    - ``webhooks``: webhook name -> the rules listening on it, in rule order.
    - ``timezone``: the config's timezone, the default for every rule.

    Never mutated after construction: a reload builds a new one and swaps it,
    so a request evaluating against the old set is never half-updated.
    """

    rules: Mapping[str, Rule] = field(default_factory=dict)
    templates: Mapping[str, Template] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    webhooks: Mapping[str, tuple[Rule, ...]] = field(init=False)

    def __post_init__(self) -> None:
        hooks: dict[str, list[Rule]] = {}
        for rule in self.rules.values():
            if rule.source.webhook is not None:
                hooks.setdefault(rule.source.webhook, []).append(rule)
        # Read-only views: the set is shared across threads and requests.
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))
        object.__setattr__(self, "templates", MappingProxyType(dict(self.templates)))
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        object.__setattr__(self, "webhooks", MappingProxyType({k: tuple(v) for k, v in hooks.items()}))

    @classmethod
    def build(
        cls,
        rules: Iterable[tuple[Rule, str]],
        templates: Mapping[str, Template],
        timezone: str,
    ) -> RuleSet:
        """From (rule, file) pairs; ids must already be unique."""
        by_id: dict[str, Rule] = {}
        files: dict[str, str] = {}
        for rule, file in rules:
            by_id[rule.id] = rule
            files[rule.id] = file
        return cls(rules=by_id, templates=templates, files=files, timezone=timezone)

    def for_webhook(self, name: str) -> tuple[Rule, ...]:
        """The rules on ``/hooks/NAME``; () when none (the caller answers 404)."""
        return self.webhooks.get(name, ())

    def timezone_of(self, rule: Rule) -> str:
        return rule.timezone(self.timezone)

    def __len__(self) -> int:
        return len(self.rules)
