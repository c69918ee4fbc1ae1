"""Cross-reference checks: what a rule or template refers to outside its keys.

Contacts, groups and rotations named in ``to``, phone numbers, and Jinja2
syntax. They run on the raw mapping, not the validated model, so a rule with
a typo elsewhere still gets these checked: one run of ``alertd check`` shows
every problem. Values of the wrong type are left to the model's errors.
Each problem is reported through ``sink.add(loc, text)``, where the sink is
the loader's per-file collector.
"""
from __future__ import annotations

from typing import Any, Collection, Mapping, Protocol

from alertd import yamlfile
from alertd.engine.templating import RenderError, check_expression, check_template
from alertd.phones import normalize
from alertd.rules.errors import did_you_mean
from alertd.rules.models import Template
from alertd.rules.types import recipient_kind
from alertd.yamlfile import Loc


class Sink(Protocol):
    def add(self, loc: Loc, text: str) -> None: ...


class Names:
    """The contact, group and rotation names of the config (one namespace)."""

    def __init__(self, contacts: Mapping[str, str], groups: Mapping[str, Any], rotations: Collection[str]):
        self.known = set(contacts) | set(groups) | set(rotations)

    def problem(self, entry: str, key: str) -> str | None:
        """Why a ``to`` entry is wrong, or None."""
        kind = recipient_kind(entry)
        if kind == "template":
            try:
                check_template(entry)
            except RenderError as exc:
                return f"invalid Jinja2 in {key}: {exc.reason}"
        elif kind == "number":
            try:
                normalize(entry)
            except ValueError:
                return f"invalid phone number '{entry}' in {key}: write it as +15551234567 or 5551234567"
        elif entry not in self.known:
            return f"unknown contact '{entry}' in {key}{did_you_mean(entry, self.known)}"
        return None


def dig(raw: Any, *path: str | int) -> Any:
    """``raw[p0][p1]...``, or None where the path does not exist or has the wrong type."""
    for key in path:
        if isinstance(raw, dict):
            raw = raw.get(key)
        elif isinstance(raw, list) and isinstance(key, int) and key < len(raw):
            raw = raw[key]
        else:
            return None
    return raw


def _entries(value: Any) -> list[tuple[int | None, str]]:
    """``to`` as (index, entry); index None when it was written as one string."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [(None, str(value))]
    if isinstance(value, list):
        return [(j, str(v)) for j, v in enumerate(value) if isinstance(v, (str, int)) and not isinstance(v, bool)]
    return []


def check_rule(f: Sink, index: int, raw: dict, label: str, names: Names) -> None:
    """What rule ``index`` (a raw mapping, shown as ``label``) refers to."""
    base: Loc = ("rules", index)

    def bad(loc: Loc, text: str) -> None:
        f.add(base + loc, f"{label}: {text}")

    def jinja(loc: Loc) -> None:
        source = dig(raw, *loc)
        if isinstance(source, str):
            try:
                check_template(source)
            except RenderError as exc:
                bad(loc, f"invalid Jinja2 in {yamlfile.format_loc(loc)}: {exc.reason}")

    def recipients(loc: Loc) -> None:
        key = yamlfile.format_loc(loc)
        for j, entry in _entries(dig(raw, *loc)):
            if (text := names.problem(entry, key)) is not None:
                bad(loc + ((j,) if j is not None else ()), text)

    when = raw.get("when")
    if isinstance(when, str):
        try:
            check_expression(when)
        except RenderError as exc:
            bad(("when",), f"invalid Jinja2 expression in when: {exc.reason}")
    for loc in (("dedup_key",), ("notify", "message"), ("notify", "at")):
        jinja(loc)
    recipients(("notify", "to"))
    sender = dig(raw, "notify", "from")
    if isinstance(sender, (str, int)) and _bad_number(str(sender)):
        bad(("notify", "from"), f"invalid phone number '{sender}' in notify.from")
    steps = dig(raw, "notify", "escalate")
    for k, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, dict):
            jinja(("notify", "escalate", k, "message"))
            recipients(("notify", "escalate", k, "to"))


def _bad_number(value: str) -> bool:
    try:
        normalize(value)
    except ValueError:
        return True
    return False


def check_template_fields(f: Sink, name: str, tpl: Template) -> None:
    """A named template's message compiles and its from is a number."""
    loc: Loc = ("templates", name)
    try:
        check_template(tpl.message)
    except RenderError as exc:
        f.add(loc + ("message",), f"template '{name}': invalid Jinja2 in message: {exc.reason}")
    if tpl.from_ is not None and _bad_number(tpl.from_):
        f.add(loc + ("from",), f"template '{name}': invalid phone number '{tpl.from_}' in from")
