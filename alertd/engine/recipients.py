"""Who a notification goes to: ``to`` entries resolved to E.164 numbers.

An entry is a contact, a group (members may be contacts, numbers, rotations
or other groups), a rotation (kept as a name: who is on call is decided at
send time, which may be later than evaluation), a phone number, or a Jinja2
template that renders to one of those. Numbers are merged in first-seen
order. Problems are appended to ``errors`` as sentences, never raised.

A template's result is looked up as a name only when the template writes
that name itself (``{{ 'oncall' if event.critical else 'manager' }}``): a
value from event data must be a phone number. A shop's webhook whose customer
phone is "oncall" would otherwise text the on-call engineers whatever the
customer typed as a first name. ``to_names_from_event: true`` on the rule
lifts this, for event sources that are trusted (docs/rules.md).
"""
from __future__ import annotations

from typing import Any, Collection, Mapping

from alertd.engine.templating import RenderError, literal_strings, render
from alertd.phones import normalize
from alertd.rules.types import recipient_kind


class Recipients:
    """Resolves ``to`` entries: contact, group, rotation, number or template of one."""

    def __init__(self, contacts: Mapping[str, str], groups: Mapping[str, Any], rotations: Collection[str]):
        self.contacts, self.groups, self.rotations = contacts, groups, rotations

    def resolve(self, entries: list[str], ctx: dict[str, Any], key: str, errors: list[str], *,
                names_from_event: bool = False) -> tuple[list[str], list[str]]:
        numbers: dict[str, None] = {}  # a dict keeps order and merges duplicates
        rotations: dict[str, None] = {}
        for entry in entries:
            value = entry
            if recipient_kind(entry) == "template":
                try:
                    value = render(entry, ctx).strip()
                except RenderError as exc:
                    errors.append(f"{key}: '{entry}' failed to render: {exc.message}")
                    continue
                if not value:
                    errors.append(f"{key}: '{entry}' rendered empty")
                    continue
                if (recipient_kind(value) == "name" and not names_from_event
                        and value not in literal_strings(entry)):
                    errors.append(f"{key}: '{value}' (from '{entry}') is not a phone number; a name is looked up"
                                  " only when the rule writes it (to_names_from_event: true lifts this)")
                    continue
            self._add(value, entry, key, numbers, rotations, errors, seen=set())
        return list(numbers), list(rotations)

    def _add(self, value: str, entry: str, key: str, numbers: dict, rotations: dict, errors: list[str], seen: set) -> None:
        if value in self.contacts:
            numbers[self.contacts[value]] = None
        elif value in self.groups:
            if value in seen:  # a group that contains itself: ignore the loop
                return
            seen.add(value)
            for member in self.groups[value]:
                self._add(str(member), entry, key, numbers, rotations, errors, seen)
        elif value in self.rotations:
            rotations[value] = None
        elif recipient_kind(value) == "number":
            try:
                numbers[normalize(value)] = None
            except ValueError:
                origin = "" if value == entry else f" (from '{entry}')"
                errors.append(f"{key}: '{value}'{origin} is not a valid phone number")
        elif value == entry:
            errors.append(f"{key}: unknown contact '{value}'")
        else:
            errors.append(f"{key}: '{value}' (from '{entry}') is neither a phone number nor a known contact")
