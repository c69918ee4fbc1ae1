"""The command line: one parser; each command lives in its own module with its ``add_parsers``.

    run (run.py)  check, test-rule (rules.py)  keys (keys.py)  log, backup (history.py)
    oncall, silence (ops.py)  users (users.py)  heartbeats (heartbeats.py)  providers (providers.py)
    cluster, db copy (cluster.py)

Exit codes: 0 ok, 1 problems found, 2 usage.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect

from . import cluster, heartbeats, history, keys, ops, providers, rules, run, users
from .load import close_stores

# in the order --help lists them
COMMANDS = (run, rules, keys, history, ops, users, heartbeats, providers, cluster)


def parser() -> argparse.ArgumentParser:
    config_help = "config file (default: $ALERTD_CONFIG, then /etc/alertd/config.yaml)"
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a -c given before the subcommand is not overwritten by the subcommand's default
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    p = argparse.ArgumentParser(prog="alertd", description="Turns events into phone calls and text messages.")
    p.add_argument("-c", "--config", default=None, help=config_help)
    sub = p.add_subparsers(dest="cmd", required=True)
    for command in COMMANDS:
        command.add_parsers(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = args.func(args)
    # a command that reads the store is a coroutine: the store's methods are
    return asyncio.run(_closing(result)) if inspect.iscoroutine(result) else result


async def _closing(command):
    """The command's result, its stores closed once it is done (returned, failed or exited)."""
    try:
        return await command
    finally:
        await close_stores()
