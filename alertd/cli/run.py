"""alertd run: the daemon in the foreground."""
from __future__ import annotations

import signal
import sys

from .load import load_config


def cmd_run(args) -> int:
    cfg = load_config(args)
    # FastAPI asks of every route parameter whether it is a pydantic v1 model, importing
    # pydantic.v1 to find out: 1.5 MiB of memory and ~75 ms of start-up for a daemon that has
    # no v1 model. FastAPI reads a pydantic.v1 that cannot be imported as "no v1 model" (as
    # it will be once pydantic drops it), so the daemon's process does without it
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]  # None: `import` raises ImportError
    # the daemon's dependencies (uvicorn, FastAPI, twilio) load only for `run`: every other command starts faster
    from ..runtime import logconf
    from ..runtime.daemon import serve
    logconf.configure(cfg.log.level, cfg.log.format, cache=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with
    # the handler that was in place before it started: without this one, the
    # process would end "killed by SIGTERM" instead of exiting 0 (systemd)
    signal.signal(signal.SIGTERM, _exit_0)
    signal.signal(signal.SIGINT, _exit_0)  # Ctrl-C: the same clean stop, no traceback
    return serve(cfg)


def _exit_0(signum, frame) -> None:
    raise SystemExit(0)


def add_parsers(sub, common) -> None:
    sub.add_parser("run", parents=[common], help="run the daemon in the foreground").set_defaults(func=cmd_run)
