"""structlog, configured once: JSON lines when not on a terminal, readable on one.

Never pass an API key, a ?key= value or an auth token to a logger: request
lines carry the path only, never the query string.
"""
from __future__ import annotations

import logging
import sys

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _dumps(obj, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure(level: str = "info", fmt: str = "auto", stream=None, *, cache: bool = False) -> None:
    """``cache``: loggers bind once, on first use (the daemon; tests reconfigure, so they do not)."""
    stream = stream or sys.stdout
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    if console:
        renderer, factory = structlog.dev.ConsoleRenderer(), structlog.PrintLoggerFactory(file=stream)
    else:
        # orjson renders a line in a fraction of json.dumps' time: two lines per notify add up
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        factory = structlog.PrintLoggerFactory(file=stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=cache,
    )
    # libraries log through the standard library: keep them quiet and key-free
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("uvicorn.access", "twilio", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
