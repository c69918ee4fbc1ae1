"""alertd run: the daemon in the foreground."""
from __future__ import annotations

import signal

from .load import load_config


def cmd_run(args) -> int:
    cfg = load_config(args)
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
