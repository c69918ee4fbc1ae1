"""What every command shares: the config, read and reported as the CLI reports it, and the store."""
from __future__ import annotations

import sys

from .. import config as config_mod
from ..store import Store, open_store


def load_config(args) -> config_mod.Config:
    """The config of ``-c`` (or $ALERTD_CONFIG); its problems printed and exit 1 when it is broken."""
    try:
        # only the daemon and `providers test` read the secret files: keys, log, silence... never reach a provider
        secrets = "read" if getattr(args, "cmd", None) in ("run", "providers") else "skip"
        cfg, warnings = config_mod.load(args.config, secrets=secrets)
    except config_mod.ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        raise SystemExit(1)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return cfg


# The stores the running command opened; main() closes them when the command is done,
# however it ends: a PostgreSQL pool left open would outlive the command's event loop,
# its connections held on the server until the garbage collector came by.
_opened: list[Store] = []


async def store_of(cfg) -> Store:
    """The config's store, open (a PostgreSQL one connected and migrated); closed by
    ``close_stores()`` once the command has returned."""
    store = open_store(cfg.database)
    _opened.append(store)
    await store.open()
    return store


async def close_stores() -> None:
    """Close every store ``store_of`` opened (on the loop the command ran on)."""
    while _opened:
        store = _opened.pop()
        await store.disconnect()
        store.close()
