"""``${VAR}`` and ``${VAR:-default}``: the one substitution of the environment into YAML values.

Used by config.yaml (every value) and by rule files (a poll's url, headers
and body only). A substituted value is a secret as far as logs go: it is
never echoed back in an error.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(value: Any, loc: tuple, unset: list[tuple], environ: Mapping[str, str] | None = None) -> Any:
    """``value`` (a string, or dicts and lists of them) with every variable
    replaced. A variable neither set nor given a default becomes "" and
    (its location, its name) is appended to ``unset``."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        def repl(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is None:
                unset.append((loc, name))
            return default or ""
        return VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute(v, loc + (k,), unset, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, loc + (i,), unset, env) for i, v in enumerate(value)]
    return value
