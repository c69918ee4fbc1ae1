"""YAML loading that remembers where every value came from.

Ops people edit config and rule files by hand, so every error has to name the
file, the line and the key (``rules/door.yaml:12: rule 'door-open': ...``).
PyYAML forgets positions once it builds Python objects; we compose the node
tree ourselves, record the line of every key path, then construct the data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]
# libyaml's parser, where installed, is ~5x faster; positions and errors are the same
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(Exception):
    """A file that could not be parsed; ``str()`` is ``file:line: message``."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Located:
    """Parsed data plus the line of each key path (1-based)."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def where(self, loc: Loc) -> str:
        return f"{self.path}:{self.line(loc)}"


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: str) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlError(path, line, f"duplicate key '{key}' (first at line {seen[key]})")
            seen[key] = line
            _walk(value_node, loc + (key,), lines, path)
            # the key's own line is the most useful place to point at
            lines[loc + (key,)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, loc + (i,), lines, path)


def parse(text: str, path: str) -> Located:
    """Parse one YAML document. Raises YamlError naming the line."""
    # Anchors (and so aliases and recursion) are the one thing the one-pass
    # build below does not reproduce: without an '&' there are none.
    if "&" not in text:
        try:
            return _parse_plain(text, path)
        except Exception:  # noqa: BLE001 - whatever it was, the full path says it the usual way
            pass
    return _parse_full(text, path)


def _parse_full(text: str, path: str) -> Located:
    """Any document: record the lines, then let PyYAML construct the data."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return Located(path, None, {(): 1})
            lines: dict[Loc, int] = {}
            _walk(node, (), lines, path)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlError(path, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlError(path, 1, f"invalid YAML: {exc}") from None
    return Located(path, data, lines)


# --- the common case, in one pass --------------------------------------------------
# A rule file is string-keyed mappings, lists and scalars. For those, walking
# the node tree once to record lines and once more (in PyYAML's constructor,
# which is written for the general case) to build the data cost more than
# composing it in C; _build does both in one walk and gives the same data and
# lines. Anything else (a merge key, a non-string key, an explicit tag such as
# !!set, a duplicate key, an error of any kind) raises, and parse() starts
# over on the full path, so errors and odd files behave exactly as there.
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_SCALARS = {tag: yaml.SafeLoader.yaml_constructors[tag] for tag in (
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")}


class _Unusual(Exception):
    pass


class _PlainLoader(_Loader):  # type: ignore[misc, valid-type]
    # The C composer calls resolve() back in Python for every scalar; a plain
    # scalar's tag depends on its text alone (there are no path resolvers), so
    # remember it for the short texts that repeat: keys, names, durations.
    _tags: dict[str, str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0] and not self.yaml_path_resolvers:
            tag = self._tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(value) <= 40 and len(self._tags) < 100_000:
                    self._tags[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


def _parse_plain(text: str, path: str) -> Located:
    loader = _PlainLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(path, None, {(): 1})
        lines: dict[Loc, int] = {}
        data = _build(loader, node, (), node.start_mark.line + 1, lines)
    finally:
        loader.dispose()
    return Located(path, data, lines)


def _build(loader: Any, node: yaml.Node, loc: Loc, line: int, lines: dict[Loc, int]) -> Any:
    """The data of ``node``; records ``line`` for ``loc`` and the lines below it as _walk does."""
    lines[loc] = line
    kind, tag = node.__class__, node.tag
    if kind is yaml.ScalarNode:
        if tag == _STR:
            return node.value
        constructor = _SCALARS.get(tag)
        if constructor is None:
            raise _Unusual(tag)
        return constructor(loader, node)
    if kind is yaml.MappingNode and tag == _MAP:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not yaml.ScalarNode or key_node.tag != _STR:
                raise _Unusual(key_node.tag)
            key = key_node.value
            if key in out:
                raise _Unusual("duplicate key")
            # the key's own line is the most useful place to point at
            out[key] = _build(loader, value_node, loc + (key,), key_node.start_mark.line + 1, lines)
        return out
    if kind is yaml.SequenceNode and tag == _SEQ:
        return [_build(loader, item, loc + (i,), item.start_mark.line + 1, lines)
                for i, item in enumerate(node.value)]
    raise _Unusual(tag)


def load(path: str | Path, display: str | None = None) -> Located:
    """Read and parse ``path``; ``display`` is the name used in messages."""
    name = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError(name, 1, f"cannot read: {exc}") from None
    return parse(text, name)


def format_loc(loc: Loc) -> str:
    """('notify', 'to', 2) -> 'notify.to[2]'"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
