"""Load every rule file under a folder, with amtool-style errors.

``load_rules`` never raises for a problem in a rule file: each problem is one
line ``<file>:<line>: rule '<id>': <what> in <key>[: <hint>]`` in
``LoadResult.errors``, the file is listed in ``failed_files``, and its rules
are left out of the rule set while every other file loads. Whether a single
error should block a reload (all files or none) is the caller's decision.
"""
from __future__ import annotations

import gc
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping

from pydantic import ValidationError

from alertd import yamlfile
from alertd.envsubst import substitute
from alertd.rules.checks import Names, check_rule, check_template_fields, dig
from alertd.rules.errors import describe, did_you_mean
from alertd.rules.heartbeat import check_unique as check_heartbeats_unique
from alertd.rules.models import Rule, Template
from alertd.rules.ruleset import RuleSet
from alertd.rules.types import RULE_ID, TEMPLATE_NAME, TPL_ID
from alertd.yamlfile import Loc, YamlError

TOP_KEYS = ("templates", "rules")


@dataclass
class LoadResult:
    """``ruleset`` holds only the files that loaded cleanly."""

    ruleset: RuleSet
    errors: list[str]
    failed_files: list[str]
    files: list[str]  # every file looked at, as displayed

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _File:
    display: str
    located: yamlfile.Located | None = None
    templates: dict[str, Template] = field(default_factory=dict)
    rules: list[tuple[int, Rule]] = field(default_factory=list)  # those that validated
    raw_rules: list[tuple[int, dict, str]] = field(default_factory=list)  # (index, mapping, label)
    problems: list[tuple[int, str]] = field(default_factory=list)

    def add(self, loc: Loc, text: str) -> None:
        line = self.located.line(loc) if self.located else 1
        self.problems.append((line, text))

    def where(self, loc: Loc) -> str:
        return f"{self.display}:{self.located.line(loc) if self.located else 1}"


def find_rule_files(folder: str | Path) -> list[Path]:
    """Every *.yaml / *.yml under ``folder``, recursively, sorted.

    Hidden files and folders (editor swap and lock files, .git) are skipped.
    """
    root = Path(folder)
    found = [
        p
        for pattern in ("*.yaml", "*.yml")
        for p in root.rglob(pattern)
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(found)


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _rule_label(raw: Any, index: int) -> str:
    rid = raw.get("id") if isinstance(raw, dict) else None
    return f"rule '{rid}'" if isinstance(rid, str) and RULE_ID.fullmatch(rid) else f"rule #{index + 1}"


def _yaml_hint(path: Path, line: int) -> str:
    # The classic: `message: {{ event.x }}` unquoted is a YAML flow mapping,
    # and PyYAML's complaint about it does not say so.
    try:
        text = path.read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""
    if re.search(r"(:|-)\s+\{\{", text):
        return ': a value that starts with {{ must be quoted, e.g. message: "{{ event.x }}"'
    return ""


def _substitute_poll(raw: dict, environ: Mapping[str, str]) -> tuple[dict, list[tuple[Loc, str]]]:
    """${VAR} and ${VAR:-default} in a poll's url, headers and body, as in config.yaml.

    Only there: a secret belongs in a header, and substituting in messages
    would let the environment inject Jinja2. Returns (new raw, unset vars).
    """
    poll = dig(raw, "source", "poll")
    if not isinstance(poll, dict):
        return raw, []
    unset: list[tuple[Loc, str]] = []
    base: Loc = ("source", "poll")
    poll = {k: substitute(v, base + (k,), unset, environ) if k in ("url", "headers", "body") else v for k, v in poll.items()}
    return {**raw, "source": {**raw["source"], "poll": poll}}, unset


def _parse(path: Path, display: str, environ: Mapping[str, str]) -> _File:
    """Phase 1: syntax and shape of one file, on its own."""
    f = _File(display)
    try:
        f.located = yamlfile.load(path, display)
    except YamlError as exc:
        f.problems.append((exc.line, exc.message + _yaml_hint(path, exc.line)))
        return f
    data = f.located.data
    if data is None:
        return f  # empty or only comments: nothing to load, nothing wrong
    if not isinstance(data, dict):
        found = "a list" if isinstance(data, list) else f"{type(data).__name__} {data!r}"[:60]
        f.add((), f"a rule file must be a mapping with 'rules:' and/or 'templates:', found {found}")
        return f
    for key in data:
        if key not in TOP_KEYS:
            f.add((key,), f"unknown key '{key}' at the top of the file{did_you_mean(key, TOP_KEYS)}")

    templates = data.get("templates") or {}
    if not isinstance(templates, dict):
        f.add(("templates",), "templates must be a mapping of name -> template")
        templates = {}
    for name, raw in templates.items():
        label = f"template '{name}'"
        if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
            f.add(("templates", name), f"invalid template name '{name}': use letters, digits, '-' and '_'")
            continue
        try:
            f.templates[name] = Template.model_validate(raw)
        except ValidationError as exc:
            for loc, text in describe(exc, Template):
                f.add(("templates", name) + loc, f"{label}: {text}")

    rules = data.get("rules") or []
    if not isinstance(rules, list):
        f.add(("rules",), "rules must be a list, each item starting with '- id: ...'")
        rules = []
    for i, raw in enumerate(rules):
        label = _rule_label(raw, i)
        if not isinstance(raw, dict):
            f.add(("rules", i), f"{label}: a rule must be a mapping of keys (id, source, notify, ...)")
            continue
        f.raw_rules.append((i, raw, label))
        written_url = dig(raw, "source", "poll", "url")
        raw, unset = _substitute_poll(raw, environ)
        for loc, name in unset:
            f.add(("rules", i) + loc, f"{label}: environment variable {name} is not set in "
                  f"{yamlfile.format_loc(loc)}: set it, or write ${{{name}:-default}}")
        try:
            rule = Rule.model_validate(raw)
            if rule.source.poll is not None and isinstance(written_url, str):
                rule.source.poll._url_as_written = written_url  # what the API shows (Poll.shown)
            f.rules.append((i, rule))
        except ValidationError as exc:
            for loc, text in describe(exc, Rule):
                f.add(("rules", i) + loc, f"{label}: {text}")
    return f


@contextmanager
def _no_cyclic_gc():
    # A load builds a few hundred thousand small objects that stay alive, and
    # the cyclic collector would walk the growing heap over and over (16 full
    # passes for 10,000 rules: half the load time) to find almost nothing.
    # Reference counting frees garbage as usual meanwhile; the collector is
    # back on when the load returns, however it returns.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_no_cyclic_gc()
def load_rules(
    folder: str | Path,
    *,
    contacts: Mapping[str, str],
    groups: Mapping[str, list[str]],
    rotations: Collection[str] = (),
    timezone: str,
    display_root: str | Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> LoadResult:
    """Load and check every rule file under ``folder``.

    ``contacts`` maps names to E.164 numbers, ``groups`` names to members;
    ``rotations`` are the names of on-call rotations. File names in errors are
    relative to ``display_root`` (default: the folder's parent, so a folder
    ``/etc/alertd/rules`` shows as ``rules/door.yaml``). ``environ`` supplies
    ${VAR} in poll url/headers/body; an unset variable without a default is
    an error.
    """
    folder = Path(folder)
    root = Path(display_root) if display_root is not None else folder.parent
    if not folder.is_dir():
        shown = _display(folder, root)
        return LoadResult(RuleSet(timezone=timezone), [f"{shown}: rules folder not found"], [shown], [])
    files = [_parse(path, _display(path, root), environ) for path in find_rule_files(folder)]
    names = Names(contacts, groups, rotations)

    # Named templates are shared by all files; the first definition wins.
    template_home: dict[str, _File] = {}
    for f in files:
        for name, tpl in f.templates.items():
            if name in template_home:
                first = template_home[name]
                f.add(("templates", name), f"template '{name}' is defined twice (first at {first.where(('templates', name))})")
            else:
                template_home[name] = f
            check_template_fields(f, name, tpl)

    first_seen: dict[str, tuple[_File, int]] = {}
    for f in files:
        for index, raw, label in f.raw_rules:
            rid = raw.get("id")
            if isinstance(rid, str) and RULE_ID.fullmatch(rid):
                if rid in first_seen:
                    other, other_index = first_seen[rid]
                    where = other.where(("rules", other_index, "id"))
                    f.add(("rules", index, "id"), f"{label}: duplicate rule id (first defined at {where})")
                else:
                    first_seen[rid] = (f, index)
            check_rule(f, index, raw, label, names)

    check_heartbeats_unique(files)

    def template_refs(f: _File):
        for index, raw, label in f.raw_rules:
            name = dig(raw, "notify", "template")
            if isinstance(name, str) and not TPL_ID.fullmatch(name):
                yield ("rules", index, "notify", "template"), label, name

    for f in files:
        for loc, label, name in template_refs(f):
            if name not in template_home:
                hint = did_you_mean(name, template_home)
                f.add(loc, f"{label}: unknown template '{name}' in notify.template{hint}")

    # A rule may use a template from another file only if that file loads:
    # repeat until no more files fail, since each failure can orphan others.
    while True:
        good = {f.display for f in files if not f.problems}
        newly_failed = False
        for f in files:
            if f.display not in good:
                continue
            for loc, label, name in template_refs(f):
                home = template_home[name]
                if home.display not in good:
                    newly_failed = True
                    f.add(loc, f"{label}: template '{name}' in notify.template is in {home.display}, which has errors")
        if not newly_failed:
            break

    errors: list[str] = []
    failed: list[str] = []
    for f in files:
        if f.problems:
            failed.append(f.display)
            errors.extend(f"{f.display}:{line}: {text}" for line, text in sorted(f.problems, key=lambda p: p[0]))
    ok = [f for f in files if not f.problems]
    ruleset = RuleSet.build(
        ((rule, f.display) for f in ok for _, rule in f.rules),
        {name: tpl for f in ok for name, tpl in f.templates.items()},
        timezone,
    )
    return LoadResult(ruleset, errors, failed, [f.display for f in files])


def load_configured(config, names, folder: str | Path | None = None) -> LoadResult:
    """The rule files of ``config.rules`` (or ``folder``), checked against the
    config's names (``names``: alertd/directory.py's Directory), with paths shown
    relative to the config's folder."""
    return load_rules(config.rules if folder is None else folder, contacts=names.contacts, groups=names.groups,
                      rotations=names.rotations, timezone=config.timezone,
                      display_root=config.path.parent if config.path else None)
