"""Jinja2 for rule files: one sandboxed environment, one error type.

Rule authors write ``message``, ``to``, ``at`` and ``dedup_key`` as Jinja2
templates and ``when`` as a Jinja2 expression. The values come from the
outside world (webhook bodies), so everything runs in the sandbox, and only
strings written in rule files are ever compiled: event data is passed in as
context, never treated as template source.

Contract:
- ``check_template`` / ``check_expression`` raise RenderError on a syntax
  error or an unknown filter/test (used at load time; they parse without
  compiling, compilation happens on first render and is cached).
- ``render`` returns a string; ``evaluate_expression`` returns a value.
- Every failure (syntax, sandbox violation, a type error in the template,
  arithmetic on missing data) raises ``RenderError(message)``, never anything
  else, so callers record it on the trigger log instead of crashing.
- Missing data is forgiving: ``{{ event.customer.phone }}`` on an event with
  no ``customer`` renders as an empty string, and ``None`` renders as ``""``
  rather than ``"None"``. ``when`` on missing data is falsy (see
  ``evaluate_condition``).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, MutableMapping

import jinja2
from jinja2 import meta, nodes
from jinja2.lexer import newline_re
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment


class RenderError(Exception):
    """A template or expression that could not be compiled or rendered.

    ``message`` is a full sentence; ``reason`` is the part after "invalid
    Jinja2:" for syntax errors (the loader words its own sentence around it).
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or message


def _finalize(value: Any) -> Any:
    # A JSON null in an event should read as nothing on a phone call, not "None".
    return "" if value is None else value


class _Environment(SandboxedEnvironment):
    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # Jinja2 gives each template a ChainMap over the environment's globals,
        # so that a global added later still shows, and every render and `when`
        # then copies that ChainMap into a new context: two thirds of the time
        # of evaluating a typical `when`. Nothing adds globals to ENV after
        # this module is imported, so a plain dict has the same keys and values.
        return {**self.globals, **(d or {})}


# ChainableUndefined: `event.customer.phone` on a missing `customer` stays
# undefined all the way down and renders as "" instead of raising.
ENV = _Environment(
    autoescape=False,
    undefined=jinja2.ChainableUndefined,
    finalize=_finalize,
    keep_trailing_newline=False,
)


def _syntax_message(exc: jinja2.TemplateSyntaxError) -> str:
    where = f" (line {exc.lineno} of the template)" if exc.lineno and exc.lineno > 1 else ""
    return f"{exc.message}{where}"


# Compiling generates Python code and costs about 0.4 ms, so it happens once
# per distinct text, on first render. Rule sets are reloaded as files change:
# the cache is bounded rather than keeping every version ever seen.
@lru_cache(maxsize=32768)
def _template(source: str) -> jinja2.Template:
    try:
        return ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        reason = _syntax_message(exc)
        raise RenderError(f"invalid Jinja2: {reason}", reason) from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"invalid Jinja2: {exc}", str(exc)) from None


@lru_cache(maxsize=4096)
def literal_strings(source: str) -> frozenset[str]:
    """The text a template writes itself: its string constants and the text outside its tags,
    each stripped. What is not among them came, at least in part, from the data it was given.
    Empty for a template that does not parse (rendering it reports why)."""
    try:
        tree = ENV.parse(source)
    except jinja2.TemplateError:
        return frozenset()
    found = {n.value.strip() for n in tree.find_all(nodes.Const) if isinstance(n.value, str)}
    found |= {n.data.strip() for n in tree.find_all(nodes.TemplateData)}
    return frozenset(found)


@lru_cache(maxsize=32768)
def _expression(source: str) -> Callable[..., Any]:
    try:
        return ENV.compile_expression(source, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        reason = _syntax_message(exc)
        raise RenderError(f"invalid Jinja2 expression: {reason}", reason) from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"invalid Jinja2 expression: {exc}", str(exc)) from None


def _check_names(tree: nodes.Node) -> None:
    # Jinja2 reports an unknown filter or test only when it generates code
    # (or, inside an {% if %}, only when rendering); check the names here so
    # a load-time check finds `| upercase` without paying for compilation.
    kinds = (nodes.Filter, nodes.Test)
    found = [tree] if isinstance(tree, kinds) else []  # find_all skips the root
    for node in found + list(tree.find_all(kinds)):
        table, what = (ENV.filters, "filter") if isinstance(node, nodes.Filter) else (ENV.tests, "test")
        if node.name not in table:
            reason = f"no {what} named '{node.name}'"
            raise RenderError(f"invalid Jinja2: {reason}", reason)


@lru_cache(maxsize=32768)
def check_template(source: str) -> None:
    """Raise RenderError if ``source`` is not a valid template (syntax, filter and test names).

    Parses without compiling: loading 10,000 rules must stay fast, and the
    compiled form is built on first render.
    """
    if not any(mark in source for mark in ("{{", "{%", "{#")):
        return  # plain text: nothing Jinja2 could object to
    skeleton = _skeleton(source)
    if skeleton is not None and skeleton != source:
        try:
            _check_parse(skeleton)
            return
        except RenderError:
            pass  # say it about the template itself, with its own line numbers
    _check_parse(source)


@lru_cache(maxsize=32768)
def _check_parse(source: str) -> None:
    try:
        tree = ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        reason = _syntax_message(exc)
        raise RenderError(f"invalid Jinja2: {reason}", reason) from None
    _check_names(tree)


# Parsing costs about 0.1 ms a template, most of the time of loading 10,000
# rules, although their messages differ mostly in the text between the tags:
# "Door {{ event.sensor }} open at store 12" and "... at store 13". The text
# between tags cannot make a template invalid, so such templates share one
# parse of their skeleton: the tags verbatim, the text between them reduced to
# its line breaks. This holds because Jinja2's lexer reads text up to the first
# "{{", "{%" or "{#", then a tag up to its end; _skeleton gives up (None: parse
# the template itself) wherever a tag's end could be in doubt: a brace, or a
# quote with a backslash or a brace, inside a tag; "{#" or "raw"; text ending
# in "{". A skeleton that fails to parse proves nothing: the template itself is
# parsed then, so an error is always about the template as written.
_TAG = re.compile(r"""
    \{\{ (?: [^'"{}] | '[^'\\{}]*' | "[^"\\{}]*" )* \}\}
  | \{% (?: [^'"{}%] | '[^'\\{}]*' | "[^"\\{}]*" )* %\}
""", re.VERBOSE)


def _text_between(text: str) -> str | None:
    if "{{" in text or "{%" in text or "{#" in text or text.endswith("{"):
        return None
    return "\n" * len(newline_re.findall(text))


def _skeleton(source: str) -> str | None:
    if ENV.line_statement_prefix is not None or ENV.line_comment_prefix is not None:
        return None
    parts: list[str] = []
    pos = 0
    for match in _TAG.finditer(source):
        between = _text_between(source[pos:match.start()])
        tag = match.group()
        if between is None or (tag[1] == "%" and "raw" in tag):
            return None
        parts += (between, tag)
        pos = match.end()
    between = _text_between(source[pos:])
    if between is None:
        return None
    parts.append(between)
    return "".join(parts)


@lru_cache(maxsize=32768)  # by the text as written: each evaluation looks it up
def compile_expression(source: str) -> Callable[..., Any]:
    """Compile a ``when`` expression (no ``{{ }}``); raises RenderError on a syntax error."""
    return _expression(_strip_braces(source))


@lru_cache(maxsize=32768)
def check_expression(source: str) -> None:
    """Raise RenderError if ``source`` is not a valid expression. Parses without compiling."""
    try:
        parser = Parser(ENV, _strip_braces(source), state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise jinja2.TemplateSyntaxError(
                f"unexpected '{token.value}' after the expression", token.lineno
            )
    except jinja2.TemplateSyntaxError as exc:
        reason = _syntax_message(exc)
        raise RenderError(f"invalid Jinja2 expression: {reason}", reason) from None
    _check_names(tree)


def _strip_braces(source: str) -> str:
    # People often write `when: "{{ event.x > 3 }}"` out of habit; a single
    # pair of braces around the whole expression is unambiguous, so accept it.
    text = source.strip()
    if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
        return text[2:-2].strip()
    return source


def render(source: str, context: dict[str, Any]) -> str:
    """Render a template string. Raises RenderError for any failure."""
    template = _template(source)
    try:
        return template.render(context)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"missing data: {exc.message}") from None
    except jinja2.TemplateError as exc:  # SecurityError included
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a template may raise anything (1/0, int('x'))
        raise RenderError(f"{type(exc).__name__}: {exc}") from None


def evaluate_expression(source: str, context: dict[str, Any]) -> Any:
    """The value of an expression. Raises RenderError for any failure, missing data included."""
    expr = compile_expression(source)
    try:
        return expr(**context)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"missing data: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001
        raise RenderError(f"{type(exc).__name__}: {exc}") from None


def evaluate_condition(source: str | None, context: dict[str, Any]) -> bool:
    """Whether a ``when`` holds. None (no condition) holds.

    Missing data counts as false, not as an error: ``event.body.count == 0``
    on an event without a body does not hold, and neither does
    ``event.temp > 30`` without ``temp`` (comparing undefined raises inside
    Jinja; we read that as "the condition is not met"). Other failures (a
    sandbox violation, comparing a string with a number) raise RenderError.
    """
    if source is None:
        return True
    expr = compile_expression(source)
    try:
        value = expr(**context)
    except jinja2.UndefinedError:
        return False
    except jinja2.TemplateError as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    if isinstance(value, jinja2.Undefined):
        return False
    try:
        return bool(value)
    except Exception as exc:  # noqa: BLE001 - an object whose truth value is ambiguous
        raise RenderError(f"{type(exc).__name__}: {exc}") from None


@lru_cache(maxsize=32768)
def uses_variable(source: str, name: str) -> bool:
    """Whether a template refers to the top-level variable ``name`` (e.g. ``group``)."""
    try:
        return name in meta.find_undeclared_variables(ENV.parse(source))
    except jinja2.TemplateError:
        return False
