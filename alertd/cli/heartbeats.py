"""alertd heartbeats [pause|resume NAME], and the ping keys of ``alertd keys --ping``.

They work on the database directly, like ``alertd keys``: a running daemon
reads a check's state at each ping and tick, and looks at its next deadline
again within 10 seconds, so a pause or resume applies at once.
Exit codes as main.py: 0 ok, 1 refused, 2 usage.
"""
from __future__ import annotations

import secrets
import sys

from ..clock import SystemClock, from_timestamp, iso
from ..engine import heartbeat as hb
from ..directory import Directory
from ..rules.loader import load_configured
from ..sources.heartbeat import set_paused
from .load import load_config, store_of

PING_KEY_PREFIX = "pk_"


def _specs(cfg) -> dict[str, hb.Spec]:
    result = load_configured(cfg, Directory(cfg))
    for line in result.errors:
        print(f"warning: {line}", file=sys.stderr)
    rs = result.ruleset
    return {rid: hb.Spec.of(r.source.heartbeat, rs.timezone_of(r)) for rid, r in rs.rules.items()
            if r.source.heartbeat is not None}


def cmd_heartbeats(args) -> int:
    cfg = load_config(args)
    store = store_of(cfg)
    action = getattr(args, "hb_cmd", None)
    if action in ("pause", "resume"):
        return _pause_resume(store, cfg, action, args.name)
    # the API's view of a check, shared with the dashboard (loads FastAPI only for this listing)
    from ..api.heartbeats import describe
    specs, now = _specs(cfg), SystemClock().timestamp()
    rows = [describe(r, specs.get(r["rule_id"]), now, cfg.server.base_url) for r in store.heartbeats.all()]
    print(f"{'NAME':<24} {'STATE':<9} {'LAST PING':<25} {'NEXT DEADLINE':<25} PING URL")
    for r in rows:
        print(f"{r['name']:<24} {r['state']:<9} {r['last_ping_at'] or '-':<25} {r['next_deadline'] or '-':<25} "
              f"{r['ping_url']}")
        if r["reason"]:
            print(f"{'':<24} down: {r['reason']}")
    return 0


def _pause_resume(store, cfg, action: str, name: str) -> int:
    spec = _specs(cfg).get(name) if action == "resume" else None
    try:
        flip = set_paused(store, name, action == "pause", spec, SystemClock().timestamp())
    except KeyError:
        print(f"no heartbeat '{name}' (see alertd heartbeats)", file=sys.stderr)
        return 1
    if flip is None:
        print(f"{name} is {'already paused' if action == 'pause' else 'not paused'}")
    else:
        print(f"{name}: {flip.old} -> {flip.new}")
    return 0


# --- ping keys ----------------------------------------------------------------------
def create_ping_key(store, name: str, from_stdin: bool) -> int:
    """Print a new ping key once; with ``from_stdin`` keep one brought from Healthchecks instead."""
    # FastAPI loads only for this subcommand, as for `alertd keys create`
    from ..api.auth import hash_key
    if from_stdin:
        key = sys.stdin.readline().strip()
        if len(key) < 16 or "/" in key or not key.isprintable():
            print("a ping key needs at least 16 characters and no '/'", file=sys.stderr)
            return 1
    else:
        key = PING_KEY_PREFIX + secrets.token_urlsafe(16)
    key_id = store.ping_keys.create(name, key[:6], hash_key(key), SystemClock().timestamp())
    if not from_stdin:
        print(key)
    print(f"(ping key {key_id} '{name}': {'shown once; ' if not from_stdin else ''}only its hash is stored."
          f" Ping URLs: /ping/KEY/SLUG)", file=sys.stderr)
    return 0


def list_ping_keys(store) -> None:
    for r in store.ping_keys.list():
        state = "revoked" if r["revoked_at"] else "active"
        print(f"{r['id']:>4}  {r['name']:<20} {r['prefix'] + '...':<14} {iso(from_timestamp(r['created_at'])):<25} "
              f"{'-':<25} {'ping':<20} {state}")


def add_parsers(sub, common) -> None:
    p = sub.add_parser("heartbeats", parents=[common], help="heartbeat checks: state, last ping, deadline, ping URL")
    hs = p.add_subparsers(dest="hb_cmd")
    for name, text in (("pause", "hold a check's notifications until resumed or its next success"),
                       ("resume", "resume a paused check; its period counts from now")):
        one = hs.add_parser(name, parents=[common], help=text)
        one.add_argument("name", help="the heartbeat rule's id")
    p.set_defaults(func=cmd_heartbeats)
