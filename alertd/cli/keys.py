"""alertd keys create | list | revoke: API keys, stored only as hashes."""
from __future__ import annotations

import sys

from ..clock import SystemClock, from_timestamp, iso
from .heartbeats import create_ping_key, list_ping_keys
from .load import load_config, store_of


def cmd_keys(args) -> int:
    cfg = load_config(args)
    store = store_of(cfg)
    clock = SystemClock()
    if args.keys_cmd == "create" and args.ping:
        return create_ping_key(store, args.name, args.stdin)
    if args.keys_cmd == "create":
        # FastAPI loads only for this subcommand: `keys list` and the others start without it
        from ..api import scopes
        from ..api.auth import generate_key
        try:
            granted = scopes.parse(args.scope or [])
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        key, prefix, digest = generate_key()
        key_id = store.keys.create(args.name, prefix, digest, clock.timestamp(), scopes=granted)
        print(key)
        print(f"(key {key_id} '{args.name}', scopes {granted}: shown once; only its hash is stored)",
              file=sys.stderr)
        return 0
    if args.keys_cmd == "list":
        print(f"{'ID':>4}  {'NAME':<20} {'PREFIX':<14} {'CREATED':<25} {'LAST USED':<25} {'SCOPES':<20} STATE")
        for r in store.keys.list():
            state = "revoked" if r["revoked_at"] else "active"
            print(f"{r['id']:>4}  {r['name']:<20} {r['prefix'] + '...':<14} "
                  f"{iso(from_timestamp(r['created_at'])):<25} {iso(from_timestamp(r['last_used_at'])) or '-':<25} "
                  f"{r['scopes'].replace(' ', ','):<20} {state}")
        list_ping_keys(store)
        return 0
    if args.keys_cmd == "revoke":
        table = store.ping_keys if args.ping else store.keys
        if table.revoke(args.id, clock.timestamp()):
            print(f"revoked key {args.id}")
            return 0
        print(f"no active key with id {args.id}", file=sys.stderr)
        return 1
    return 2


def add_parsers(sub, common) -> None:
    keys = sub.add_parser("keys", parents=[common], help="manage API keys")
    ks = keys.add_subparsers(dest="keys_cmd", required=True)
    create = ks.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", metavar="SCOPE",
                        help="admin (the default), notify, read, hooks:NAME or hooks:*; repeat for several")
    create.add_argument("--ping", action="store_true", help="a ping key, for /ping/KEY/SLUG (heartbeats); it"
                        " opens no API route")
    create.add_argument("--stdin", action="store_true", help="with --ping: keep the key read from standard input"
                        " (one brought from Healthchecks) instead of making one")
    ks.add_parser("list", parents=[common], help="list keys (never the key itself)")
    revoke = ks.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("id", type=int)
    revoke.add_argument("--ping", action="store_true", help="the id is a ping key's")
    keys.set_defaults(func=cmd_keys)
