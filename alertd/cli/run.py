"""alertd run: the daemon in the foreground."""
from __future__ import annotations

import gc
import signal
import sys

from .load import load_config


def cmd_run(args) -> int:
    # Start-up makes ~75,000 objects that live as long as the daemon (modules, schemas, the
    # app), and the collector walked them all several times while they were made: about 4%
    # of the time to ready (paired start-ups, bench/results.md). Off until the daemon has started; Daemon.start then
    # freezes what was made and turns it back on. The few cycles start-up leaves unreachable
    # (about 1,500 objects, measured) are frozen with the rest: a bounded, one-time cost.
    gc.disable()
    cfg = load_config(args)
    # FastAPI asks of every route parameter whether it is a pydantic v1 model, importing
    # pydantic.v1 to find out: 1.5 MiB of memory and ~75 ms of start-up for a daemon that has
    # no v1 model. FastAPI reads a pydantic.v1 that cannot be imported as "no v1 model" (as
    # it will be once pydantic drops it), so the daemon's process does without it
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]  # None: `import` raises ImportError
    import_fastapi_deferred()
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


def import_fastapi_deferred() -> None:
    """Import FastAPI with its pydantic models' schemas left to be built when first used.

    FastAPI defines about 40 pydantic models for the OpenAPI document (fastapi.openapi.models)
    and builds each one's validator as it imports, at every start-up, for a document made
    only when /openapi.json or /docs is first asked for: the largest of the start-up costs
    deferred here (bench/results.md, sixth sitting). pydantic's ``defer_build`` postpones
    that build to a model's first use; set on BaseModel's config while FastAPI imports, it
    is inherited by FastAPI's models alone (alertd's own are defined after), and BaseModel's
    config is left as it was found. A deferred model validates as it would have. A pydantic
    whose BaseModel config cannot be changed gets FastAPI imported as usual."""
    if "fastapi" in sys.modules:
        return
    import pydantic
    config = pydantic.BaseModel.model_config
    added = "defer_build" not in config
    if added:
        try:
            config["defer_build"] = True
        except TypeError:
            added = False
    try:
        import fastapi  # noqa: F401
    finally:
        if added:
            del config["defer_build"]


def _exit_0(signum, frame) -> None:
    raise SystemExit(0)


def add_parsers(sub, common) -> None:
    sub.add_parser("run", parents=[common], help="run the daemon in the foreground").set_defaults(func=cmd_run)
