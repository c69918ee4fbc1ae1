"""alertd check | test-rule: the config and the rule files, checked; one rule tried on a sample event."""
from __future__ import annotations

import sys
from pathlib import Path

from .. import config as config_mod
from ..clock import SystemClock
from ..directory import Directory
from ..engine.preview import dry_run, read_event
from ..rules.loader import load_configured
from .load import load_config


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
    """Every problem in the rule files (empty when there are none)."""
    if not cfg.rules.exists():
        return []
    return list(load_configured(cfg, Directory(cfg)).errors)


def cmd_test_rule(args) -> int:
    """Evaluate one rule against a sample event; prints what would be sent, sends nothing."""
    cfg = load_config(args)
    names = Directory(cfg)
    result = load_configured(cfg, names)
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
    lines, ok = dry_run(rule, event, SystemClock().now(), names=names, ruleset=result.ruleset,
                        resolved=args.resolved)
    print("\n".join(lines))
    return 0 if ok else 1


def add_parsers(sub, common) -> None:
    sub.add_parser("check", parents=[common], help="validate the config and every rule file"
                   ).set_defaults(func=cmd_check)
    tr = sub.add_parser("test-rule", parents=[common], help="evaluate one rule against a sample event; sends nothing")
    tr.add_argument("rule_id")
    tr.add_argument("--event", help="a JSON file with the event, or - for standard input")
    tr.add_argument("--resolved", action="store_true", help="evaluate as the resolved notification")
    tr.set_defaults(func=cmd_test_rule)
