"""The command line: one parser; each command lives in its own module with its ``add_parsers``.

    run (run.py)  check, test-rule (rules.py)  keys (keys.py)  log, backup (history.py)
    oncall, silence (ops.py)  users (users.py)  heartbeats (heartbeats.py)  providers (providers.py)

Exit codes: 0 ok, 1 problems found, 2 usage.
"""
from __future__ import annotations

import argparse

from . import heartbeats, history, keys, ops, providers, rules, run, users

COMMANDS = (run, rules, keys, history, ops, users, heartbeats, providers)  # in the order --help lists them


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
    return args.func(args)
