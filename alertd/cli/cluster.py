"""alertd cluster | db copy: several nodes on one PostgreSQL database.

Exit codes as cli.py: 0 ok, 1 refused or failed, 2 usage.
"""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone

from .. import dburl
from ..clock import WARN_OFFSET, SyncedClock
from ..store import StoreError
from .load import load_config

# The PostgreSQL modules are imported inside the commands that use them: every command,
# `alertd run` on SQLite included, loads this module, and the driver costs ~5 MiB and 20 ms.


def _run(coro, what: str):
    """``coro``'s result; a StoreError is printed after ``what`` and exits 1."""
    try:
        return asyncio.run(coro)
    except StoreError as exc:
        print(f"{what}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def cmd_cluster(args) -> int:
    """The nodes seen in the last minutes, which one leads, and each one's last contact."""
    cfg = load_config(args)
    if not cfg.postgres:
        print(f"one node: the database is SQLite ({cfg.database}); several nodes need"
              " database: postgresql://... (docs/ops.md)")
        return 0
    seen, offset = _run(_nodes(cfg.database, args.within), f"cluster: {cfg.database_label}")
    if not seen:
        print(f"no node has been in contact with {cfg.database_label} in the last {args.within // 60} minutes")
        print(_clock_line(offset))
        return 0
    print(f"{'NODE':30} {'LEADER':6}  {'LAST CONTACT':>12}  STARTED (UTC)")
    for n in seen:
        started = datetime.fromtimestamp(n["started_at"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{n['node_id']:30} {'yes' if n['leader'] else 'no':6}  {n['ago']:>9.1f} s ago  {started}")
    if not any(n["leader"] for n in seen):
        print(f"no node leads now: schedules, polls and retention wait for one (within cluster.lease,"
              f" {cfg.cluster.lease.total_seconds():g}s, of a node being up)")
    print(_clock_line(offset))
    return 0


def _clock_line(offset: float) -> str:
    """How far this machine's clock is from the database's (a node on it follows the database's)."""
    way = "behind" if offset >= 0 else "ahead of"
    line = f"this machine's clock: {abs(offset):.3f} s {way} the database's"
    if abs(offset) > WARN_OFFSET:
        line += " (check its NTP: alertd on it follows the database's clock meanwhile)"
    return line


async def _nodes(url: str, within: int) -> tuple[list[dict], float]:
    """The nodes seen in the last ``within`` seconds, and this machine's clock offset."""
    import asyncpg  # see the note at the top

    from ..store.postgres import cluster, translated  # the same

    clock = SyncedClock()
    async with translated():
        conn = await asyncpg.connect(url)
        try:
            sent = clock.base.timestamp()
            db_now = await cluster.now(conn)
            clock.measured(sent, db_now, clock.base.timestamp())
            if not await conn.fetchval("SELECT to_regclass('cluster_nodes') IS NOT NULL"):
                return [], clock.offset
            return await cluster.nodes(conn, within), clock.offset
        finally:
            await conn.close()


def cmd_db(args) -> int:
    if not dburl.is_postgres(args.to):
        print("--to: a PostgreSQL URL like postgresql://alertd@db.example.com:5432/alertd"
              " (the password from PGPASSWORD or ~/.pgpass keeps it off the command line)", file=sys.stderr)
        return 2
    from ..store.postgres.copy import copy  # see the note at the top

    counts = _run(copy(args.source, args.to), "db copy")
    for table, n in counts.items():
        print(f"{table:20} {n:>10} rows")
    print(f"copied {sum(counts.values())} rows of {len(counts)} tables from {args.source} to {dburl.redact(args.to)}")
    return 0


def add_parsers(sub, common) -> None:
    cl = sub.add_parser("cluster", parents=[common],
                        help="the nodes on this PostgreSQL database: which leads, each one's last contact")
    cl.add_argument("--within", type=int, default=600, help="seconds: list the nodes seen since (default 600)")
    cl.set_defaults(func=cmd_cluster)
    db = sub.add_parser("db", parents=[common], help="move an install between databases")
    dbs = db.add_subparsers(dest="db_cmd", required=True)
    cp = dbs.add_parser("copy", help="copy every table of a SQLite database into an empty PostgreSQL one")
    cp.add_argument("--from", dest="source", required=True, help="the SQLite file (stop alertd first)")
    cp.add_argument("--to", required=True, help="postgresql://user@host:5432/name")
    db.set_defaults(func=cmd_db)
