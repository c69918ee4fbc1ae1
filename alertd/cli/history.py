"""alertd log | backup: the trigger log, and a consistent copy of the database."""
from __future__ import annotations

import json
import sys

from ..store.sqlite.backup import BackupError, backup
from .load import load_config, store_of


async def cmd_log(args) -> int:
    cfg = load_config(args)
    # FastAPI loads only for this command: the others start without it
    from ..api.logs import log_row
    rows = [log_row(r) for r in await (await store_of(cfg)).logs.list(limit=args.limit, source=args.source)]
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'LOG':>6}  {'CREATED':<24} {'TO':<16} {'TYPE':<5} {'STATUS':<10} {'CALL':<11} {'SMS':<11} ACK  SOURCE"
          "  PROVIDER")
    for r in rows:
        ack = "yes" if r["acknowledged"] else "-"
        print(f"{r['log_id']:>6}  {r['created_at']:<24} {r['to']:<16} {r['type']:<5} {r['status']:<10} "
              f"{r['call_status'] or '-':<11} {r['sms_status'] or '-':<11} {ack:<4} {r['source'] or '-'}"
              f"  {r['provider'] or '-'}")
        if r["error"]:
            print(f"{'':>8}error {r['error'].get('code')}: {r['error'].get('message')}")
    return 0


def cmd_backup(args) -> int:
    """A consistent online copy of the database; safe while the daemon runs."""
    cfg = load_config(args)
    if cfg.postgres:  # a PostgreSQL database has its own tools, and its replication
        print(f"the database is PostgreSQL ({cfg.database_label}): back it up with pg_dump, e.g."
              " pg_dump --format=custom --file=alertd.dump DBNAME, or your service's backups;"
              " alertd backup copies SQLite files", file=sys.stderr)
        return 1
    try:
        done = backup(cfg.database, args.path, force=args.force)
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup: {done['path']} ({done['bytes']} bytes, schema v{done['schema']}, {done['logs']} log rows,"
          " integrity ok)")
    return 0


def add_parsers(sub, common) -> None:
    lg = sub.add_parser("log", parents=[common], help="the trigger log, newest first")
    lg.add_argument("--limit", type=int, default=20)
    lg.add_argument("--source")
    lg.add_argument("--json", action="store_true", help="one JSON object per line")
    lg.set_defaults(func=cmd_log)
    bk = sub.add_parser("backup", parents=[common], help="copy the database, consistently, while alertd runs")
    bk.add_argument("path", help="the copy to write (mode 0600); an existing file needs --force")
    bk.add_argument("--force", action="store_true", help="replace PATH if it exists")
    bk.set_defaults(func=cmd_backup)
