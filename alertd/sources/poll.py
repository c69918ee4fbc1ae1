"""Poll checks: one HTTP request -> one event, never an exception.

event = {status: int or None, body: parsed JSON or text, elapsed_ms, error: text or None}.
A refused connection or a timeout is an event with ``error`` set, so a rule
can alert on "the timeclock is down" as easily as on "nobody clocked in".
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

MAX_BODY = 1024 * 1024


def session() -> "aiohttp.ClientSession":
    """The session poll checks share, made at the first check."""
    import aiohttp  # here, not at the top: a daemon that never makes an outgoing HTTP request never loads aiohttp (8 MiB)
    return aiohttp.ClientSession()


async def check(session: "aiohttp.ClientSession", *, url: str, method: str = "GET", headers: dict | None = None,
                body: Any = None, timeout: float = 10.0) -> dict:
    import aiohttp  # here, not at the top: a daemon that never makes an outgoing HTTP request never loads aiohttp (8 MiB)
    started = time.perf_counter()
    event: dict[str, Any] = {"status": None, "body": None, "elapsed_ms": None, "error": None, "url": url}
    kwargs: dict[str, Any] = {"headers": headers or {}, "timeout": aiohttp.ClientTimeout(total=timeout)}
    if body is not None:
        kwargs["json" if isinstance(body, (dict, list)) else "data"] = body
    try:
        async with session.request(method, url, **kwargs) as resp:
            raw = await resp.content.read(MAX_BODY)
            event["status"] = resp.status
            try:
                text = raw.decode(resp.charset or "utf-8", errors="replace")
            except LookupError:  # a charset Python does not know: read UTF-8 rather than lose the check
                text = raw.decode("utf-8", errors="replace")
            try:
                event["body"] = json.loads(text) if text.strip() else None
            except ValueError:
                event["body"] = text
    except asyncio.TimeoutError:
        event["error"] = f"timeout after {timeout:g}s"
    except aiohttp.ClientError as exc:
        event["error"] = f"{type(exc).__name__}: {exc}"
    except (OSError, ValueError) as exc:
        event["error"] = f"{type(exc).__name__}: {exc}"
    event["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return event
