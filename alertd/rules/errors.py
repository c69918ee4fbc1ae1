"""pydantic validation errors, rewritten for the person who edits the YAML.

pydantic says ``Extra inputs are not permitted`` at ``('notify', 'tmeplate')``;
an ops person wants ``unknown key 'tmeplate' in notify (did you mean
'template'?)`` on the line of that key.
"""
from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from alertd.yamlfile import Loc, format_loc


def did_you_mean(word: str, choices: Any) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists, else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at ``loc`` (for 'did you mean'); [] when unknown."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {f.alias or name: f for name, f in tp.model_fields.items()}
            if part not in fields:
                return []
            tp = fields[part].annotation
        elif get_origin(tp) in (list, tuple, dict):
            tp = get_args(tp)[-1] if get_args(tp) else Any
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or name for name, f in tp.model_fields.items()]
    return []


# pydantic's words for types, in the words of someone editing YAML
_PLAIN = {
    "a valid string": "text",
    "a valid integer": "a whole number",
    "a valid integer, unable to parse string as an integer": "a whole number",
    "a valid boolean": "true or false",
    "a valid boolean, unable to interpret input": "true or false",
    "a valid dictionary": "a mapping of keys",
    "a valid list": "a list",
}


def _got(value: Any) -> str:
    text = repr(value)
    return f" (got {text if len(text) <= 60 else text[:57] + '...'})"


def describe(exc: ValidationError, model: type[BaseModel]) -> list[tuple[Loc, str]]:
    """Each error as (the loc whose line to show, one readable sentence)."""
    out = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        kind, ctx, msg = err["type"], err.get("ctx") or {}, err["msg"]
        where = format_loc(loc)
        if kind == "alertd":
            text = ctx["text"]
            if where and where != "id":  # "invalid rule id 'X' in id" says it twice
                text += f" in {where}"
            if ctx.get("hint"):
                text += f": {ctx['hint']}"
            out.append((loc + ((ctx["key"],) if ctx.get("key") else ()), text))
        elif kind == "extra_forbidden":
            parent = format_loc(loc[:-1])
            text = f"unknown key '{loc[-1]}'" + (f" in {parent}" if parent else "")
            out.append((loc, text + did_you_mean(loc[-1], _keys_at(model, loc[:-1]))))
        elif kind == "missing":
            parent = format_loc(loc[:-1])
            out.append((loc[:-1], f"missing key '{loc[-1]}'" + (f" in {parent}" if parent else "")))
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            out.append((loc, f"{where} must be a mapping of keys{_got(err['input'])}"))
        elif kind in ("list_type", "tuple_type"):
            out.append((loc, f"{where} must be a list{_got(err['input'])}"))
        elif msg.startswith("Input should be"):
            wanted = msg[len("Input should be "):]
            wanted = _PLAIN.get(wanted, wanted)
            out.append((loc, f"{where} must be {wanted}{_got(err['input'])}"))
        else:
            msg = msg.removeprefix("Value error, ")
            out.append((loc, f"{where}: {msg[:1].lower()}{msg[1:]}{_got(err['input'])}"))
    return out
