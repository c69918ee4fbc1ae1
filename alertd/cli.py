"""alertd run | check | keys | log. Exit codes: 0 ok, 1 problems found, 2 usage."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from . import config as config_mod
from .clock import SystemClock, from_timestamp, iso


def _load(args) -> config_mod.Config:
    try:
        cfg, warnings = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        raise SystemExit(1)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return cfg


def _store(cfg):
    from .store import Store
    return Store(cfg.database)


def cmd_run(args) -> int:
    cfg = _load(args)
    from . import logconf
    from .daemon import serve
    logconf.configure(cfg.log.level, cfg.log.format)
    return serve(cfg)


def cmd_check(args) -> int:
    path = args.config or config_mod.os.environ.get("ALERTD_CONFIG") or config_mod.DEFAULT_PATH
    try:
        cfg, warnings = config_mod.load(path)
    except config_mod.ConfigError as exc:
        for line in exc.problems:
            print(line)
        print(f"FAILED: {path}: {len(exc.problems)} problem(s)")
        return 1
    for w in warnings:
        print(f"warning: {w}")
    problems = check_rules(cfg)
    for line in problems:
        print(line)
    if problems:
        print(f"FAILED: {len(problems)} problem(s)")
        return 1
    print(f"SUCCESS: {path}")
    return 0


def check_rules(cfg) -> list[str]:
    """Every problem in the rule files (empty when there are none or no rules module yet)."""
    try:
        from .rules.loader import load_rules
    except ImportError:
        return []
    if not cfg.rules.exists():
        return []
    result = load_rules(cfg.rules, contacts=cfg.contact_numbers(), groups=cfg.groups, timezone=cfg.timezone,
                        display_root=cfg.path.parent if cfg.path else None)
    return list(result.errors)


def cmd_keys(args) -> int:
    cfg = _load(args)
    store = _store(cfg)
    clock = SystemClock()
    if args.keys_cmd == "create":
        from .api.auth import generate_key
        key, prefix, digest = generate_key()
        key_id = store.create_key(args.name, prefix, digest, clock.timestamp())
        print(key)
        print(f"(key {key_id} '{args.name}': shown once; only its hash is stored)", file=sys.stderr)
        return 0
    if args.keys_cmd == "list":
        print(f"{'ID':>4}  {'NAME':<20} {'PREFIX':<14} {'CREATED':<25} {'LAST USED':<25} STATE")
        for r in store.list_keys():
            state = "revoked" if r["revoked_at"] else "active"
            print(f"{r['id']:>4}  {r['name']:<20} {r['prefix'] + '...':<14} "
                  f"{iso(from_timestamp(r['created_at'])):<25} {iso(from_timestamp(r['last_used_at'])) or '-':<25} "
                  f"{state}")
        return 0
    if args.keys_cmd == "revoke":
        if store.revoke_key(args.id, clock.timestamp()):
            print(f"revoked key {args.id}")
            return 0
        print(f"no active key with id {args.id}", file=sys.stderr)
        return 1
    return 2


def cmd_log(args) -> int:
    cfg = _load(args)
    from .api.logs import log_row
    rows = [log_row(r) for r in _store(cfg).list_logs(limit=args.limit, source=args.source)]
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'LOG':>6}  {'CREATED':<24} {'TO':<16} {'TYPE':<5} {'STATUS':<10} {'CALL':<11} {'SMS':<11} ACK  SOURCE")
    for r in rows:
        ack = "yes" if r["acknowledged"] else "-"
        print(f"{r['log_id']:>6}  {r['created_at']:<24} {r['to']:<16} {r['type']:<5} {r['status']:<10} "
              f"{r['call_status'] or '-':<11} {r['sms_status'] or '-':<11} {ack:<4} {r['source'] or '-'}")
        if r["error"]:
            print(f"{'':>8}error {r['error'].get('code')}: {r['error'].get('message')}")
    return 0


def parser() -> argparse.ArgumentParser:
    config_help = "config file (default: $ALERTD_CONFIG, then /etc/alertd/config.yaml)"
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a -c given before the subcommand is not overwritten by the subcommand's default
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    p = argparse.ArgumentParser(prog="alertd", description="Turns events into phone calls and text messages.")
    p.add_argument("-c", "--config", default=None, help=config_help)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", parents=[common], help="run the daemon in the foreground").set_defaults(func=cmd_run)
    sub.add_parser("check", parents=[common], help="validate the config and every rule file"
                   ).set_defaults(func=cmd_check)
    keys = sub.add_parser("keys", parents=[common], help="manage API keys")
    ks = keys.add_subparsers(dest="keys_cmd", required=True)
    create = ks.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--name", required=True)
    ks.add_parser("list", parents=[common], help="list keys (never the key itself)")
    revoke = ks.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("id", type=int)
    keys.set_defaults(func=cmd_keys)
    lg = sub.add_parser("log", parents=[common], help="the trigger log, newest first")
    lg.add_argument("--limit", type=int, default=20)
    lg.add_argument("--source")
    lg.add_argument("--json", action="store_true", help="one JSON object per line")
    lg.set_defaults(func=cmd_log)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
