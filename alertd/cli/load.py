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


async def store_of(cfg) -> Store:
    """The config's store, open (a PostgreSQL one connected and migrated)."""
    store = open_store(cfg.database)
    await store.open()
    return store
