"""Jinja2 templates shipped in the package, and how values are shown in them."""
from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..clock import from_timestamp

HERE = Path(__file__).parent  # the package's folder: templates/ and static/

# Twilio's codes in words: an error code alone tells the on-call engineer nothing at 3 a.m.
PROVIDER_ERRORS = {
    21211: "invalid 'To' number", 21214: "'To' number cannot be reached", 21215: "geographic permission missing",
    21216: "number is blocklisted", 21217: "not a valid phone number", 21610: "recipient replied STOP",
    21612: "this 'To' number cannot be reached from the 'From' number", 21614: "not a mobile number",
    13224: "invalid phone number", 30003: "unreachable handset", 30005: "unknown destination",
    30006: "landline or unreachable carrier", 30007: "carrier filtered the message",
    30004: "message blocked", 30008: "unknown error from the carrier", 30034: "sender number not registered (A2P 10DLC)",
}

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)


def when(ts: float | None, tz, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    if ts is None:
        return ""
    return from_timestamp(ts, tz).strftime(fmt)


def error_text(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        err = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(err, dict):
        return str(err)
    code = err.get("code")
    words = PROVIDER_ERRORS.get(code) if isinstance(code, int) else None
    return " ".join(p for p in (f"{code}:" if code else "", words and f"{words} —", err.get("message") or "") if p)


def code_text(code: int | None) -> str:
    """A provider error code with its meaning: "30003: unreachable handset"."""
    if code is None:
        return ""
    return f"{code}: {PROVIDER_ERRORS[code]}" if code in PROVIDER_ERRORS else f"error {code}"


def page(name: str, **ctx) -> str:
    return env.get_template(name).render(**ctx)
