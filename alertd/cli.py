"""alertd run | check | keys | log | test-rule | oncall | silence | backup | providers.

Exit codes: 0 ok, 1 problems found, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path

from . import config as config_mod
from .clock import SystemClock, from_timestamp, iso


def _load(args) -> config_mod.Config:
    try:
        # only the daemon reads the secret files: keys, log, silence... never reach the provider
        secrets = "read" if getattr(args, "cmd", None) in ("run", "providers") else "skip"
        cfg, warnings = config_mod.load(args.config, secrets=secrets)
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
    logconf.configure(cfg.log.level, cfg.log.format, cache=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with
    # the handler that was in place before it started: without this one, the
    # process would end "killed by SIGTERM" instead of exiting 0 (issue 2, systemd)
    signal.signal(signal.SIGTERM, _exit_0)
    signal.signal(signal.SIGINT, _exit_0)  # Ctrl-C: the same clean stop, no traceback
    return serve(cfg)


def _exit_0(signum, frame) -> None:
    raise SystemExit(0)


def cmd_check(args) -> int:
    path = args.config or config_mod.os.environ.get("ALERTD_CONFIG") or config_mod.DEFAULT_PATH
    try:
        cfg, warnings = config_mod.load(path, secrets="check")
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
    result = load_rules(cfg.rules, contacts=cfg.contact_numbers(), groups=cfg.groups,
                        rotations=tuple(getattr(cfg, "rotations", {}) or ()), timezone=cfg.timezone,
                        display_root=cfg.path.parent if cfg.path else None)
    return list(result.errors)


def cmd_test_rule(args) -> int:
    """Evaluate one rule against a sample event; prints what would be sent, sends nothing."""
    cfg = _load(args)
    from .engine.preview import dry_run, read_event
    from .rules.loader import load_rules
    result = load_rules(cfg.rules, contacts=cfg.contact_numbers(), groups=cfg.groups,
                        rotations=tuple(getattr(cfg, "rotations", {}) or ()), timezone=cfg.timezone,
                        display_root=cfg.path.parent if cfg.path else None)
    for line in result.errors:
        print(f"warning: {line}", file=sys.stderr)
    rule = result.ruleset.rules.get(args.rule_id)
    if rule is None:
        print(f"no rule '{args.rule_id}' (loaded: {', '.join(result.ruleset.rules) or 'none'})", file=sys.stderr)
        return 1
    event: object = {}
    if args.event:
        try:
            event = read_event(sys.stdin.read() if args.event == "-" else Path(args.event).read_text("utf-8"))
        except ValueError as exc:
            print(f"{args.event}: {exc}", file=sys.stderr)
            return 1
    lines, ok = dry_run(rule, event, SystemClock().now(), config=cfg, ruleset=result.ruleset,
                        resolved=args.resolved)
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_keys(args) -> int:
    cfg = _load(args)
    store = _store(cfg)
    clock = SystemClock()
    if args.keys_cmd == "create":
        from .api import scopes
        from .api.auth import generate_key
        try:
            granted = scopes.parse(args.scope or [])
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        key, prefix, digest = generate_key()
        key_id = store.create_key(args.name, prefix, digest, clock.timestamp(), scopes=granted)
        print(key)
        print(f"(key {key_id} '{args.name}', scopes {granted}: shown once; only its hash is stored)",
              file=sys.stderr)
        return 0
    if args.keys_cmd == "list":
        print(f"{'ID':>4}  {'NAME':<20} {'PREFIX':<14} {'CREATED':<25} {'LAST USED':<25} {'SCOPES':<20} STATE")
        for r in store.list_keys():
            state = "revoked" if r["revoked_at"] else "active"
            print(f"{r['id']:>4}  {r['name']:<20} {r['prefix'] + '...':<14} "
                  f"{iso(from_timestamp(r['created_at'])):<25} {iso(from_timestamp(r['last_used_at'])) or '-':<25} "
                  f"{r['scopes'].replace(' ', ','):<20} {state}")
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
    print(f"{'LOG':>6}  {'CREATED':<24} {'TO':<16} {'TYPE':<5} {'STATUS':<10} {'CALL':<11} {'SMS':<11} ACK  SOURCE  PROVIDER")
    for r in rows:
        ack = "yes" if r["acknowledged"] else "-"
        print(f"{r['log_id']:>6}  {r['created_at']:<24} {r['to']:<16} {r['type']:<5} {r['status']:<10} "
              f"{r['call_status'] or '-':<11} {r['sms_status'] or '-':<11} {ack:<4} {r['source'] or '-'}  {r.get('provider') or '-'}")
        if r["error"]:
            print(f"{'':>8}error {r['error'].get('code')}: {r['error'].get('message')}")
    return 0


def cmd_backup(args) -> int:
    """A consistent online copy of the database; safe while the daemon runs."""
    cfg = _load(args)
    from .store.backup import BackupError, backup
    try:
        done = backup(cfg.database, args.path, force=args.force)
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup: {done['path']} ({done['bytes']} bytes, schema v{done['schema']}, {done['logs']} log rows,"
          " integrity ok)")
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
    tr = sub.add_parser("test-rule", parents=[common], help="evaluate one rule against a sample event; sends nothing")
    tr.add_argument("rule_id")
    tr.add_argument("--event", help="a JSON file with the event, or - for standard input")
    tr.add_argument("--resolved", action="store_true", help="evaluate as the resolved notification")
    tr.set_defaults(func=cmd_test_rule)
    keys = sub.add_parser("keys", parents=[common], help="manage API keys")
    ks = keys.add_subparsers(dest="keys_cmd", required=True)
    create = ks.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", metavar="SCOPE",
                        help="admin (the default), notify, read, hooks:NAME or hooks:*; repeat for several")
    ks.add_parser("list", parents=[common], help="list keys (never the key itself)")
    revoke = ks.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("id", type=int)
    keys.set_defaults(func=cmd_keys)
    lg = sub.add_parser("log", parents=[common], help="the trigger log, newest first")
    lg.add_argument("--limit", type=int, default=20)
    lg.add_argument("--source")
    lg.add_argument("--json", action="store_true", help="one JSON object per line")
    lg.set_defaults(func=cmd_log)
    bk = sub.add_parser("backup", parents=[common], help="copy the database, consistently, while alertd runs")
    bk.add_argument("path", help="the copy to write (mode 0600); an existing file needs --force")
    bk.add_argument("--force", action="store_true", help="replace PATH if it exists")
    bk.set_defaults(func=cmd_backup)
    from . import cli_ops
    cli_ops.add_parsers(sub, common)
    from . import cli_users
    cli_users.add_parsers(sub, common)
    from . import cli_providers
    cli_providers.add_parsers(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
