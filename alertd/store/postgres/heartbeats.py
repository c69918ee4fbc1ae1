"""Heartbeats on PostgreSQL: each check's state and deadline, its newest pings, its flips;
and ping keys (alertd/store/sqlite/heartbeats.py says what each method does).

What several nodes add: a ping reads its check ``FOR UPDATE``, so two pings of one check
(on two nodes, or in two of one node's group commits) take turns and neither loses the
other's count or state; a deadline fires once because its flip is stored only while the
deadline is still the one read (``expect_down_at``), whichever node ticks it; the rows of
a reload are claimed under a lock, so two nodes starting together keep one uuid per
check; and an owed flip is leased to the node that notifies it, so it is sent once (a
node that dies holding one leaves it to the others when the lease runs out).
"""
from __future__ import annotations

import uuid as uuid_mod
from typing import Any, Callable

from . import DB_NOW
from ..queries import FLIP, KEEP_FLIPS, TRIM_FLIPS, flip_args, save_check
from .claims import lock_key
from .connection import Conn, Table

KEEP_PINGS = 100   # per check, as on SQLite
COUNTERS = {"success": "n_success", "fail": "n_fail", "start": "n_start", "log": "n_log"}
OWED_LEASE = 60.0  # seconds an owed flip stays the notifying node's


class Heartbeats(Table):
    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``await fn(tx, *args)`` in a transaction of its own, committed when it returns; its result."""
        async with self.tx() as c:
            return await fn(c, *args)

    # --- checks ----------------------------------------------------------------------
    async def get(self, rule_id: str):
        return await self.fetchrow("SELECT * FROM heartbeats WHERE rule_id = ?", rule_id)

    @staticmethod
    async def read(tx: Conn, rule_id: str):
        """The check's row, locked until ``tx`` ends: what is read here is still so when it is saved."""
        return await tx.fetchrow("SELECT * FROM heartbeats WHERE rule_id = ? FOR UPDATE", rule_id)

    async def all(self, *, present_only: bool = True) -> list:
        return await self.fetch("SELECT * FROM heartbeats" + (" WHERE present = 1" if present_only else "")
                                + " ORDER BY rule_id")

    @staticmethod
    async def claim(tx: Conn, wanted: dict[str, tuple[str | None, str | None]], now: float) -> dict[str, str]:
        """As on SQLite. Two nodes claiming at once take turns: the second keeps the uuids the
        first made."""
        await lock_key(tx.raw, "heartbeats", "claim")
        held = {r["rule_id"]: r["uuid"] for r in await tx.fetch("SELECT rule_id, uuid FROM heartbeats")}
        uuids = {rid: u or held.get(rid) or str(uuid_mod.uuid4()) for rid, (u, _) in wanted.items()}
        await _free(tx, uuids, held)
        await tx.execute("UPDATE heartbeats SET slug = NULL")  # slugs may move between rules in one reload
        gone = [rid for rid in held if rid not in wanted]
        if gone:
            await tx.execute("UPDATE heartbeats SET present = 0, down_at = NULL WHERE rule_id = ANY(?::text[])", gone)
        for rid, (_, slug) in wanted.items():
            await tx.execute("INSERT INTO heartbeats (rule_id, uuid, slug, created_at) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT (rule_id) DO UPDATE SET uuid = excluded.uuid, slug = excluded.slug,"
                             " present = 1", rid, uuids[rid], slug, now)
        return uuids

    @staticmethod
    async def save(tx: Conn, rule_id: str, check: Any, down_at: float | None, flip: Any = None, *,
                   owed: bool = False, event: dict | None = None, expect_down_at: Any = ...) -> bool:
        """As on SQLite: with ``expect_down_at``, only while the stored deadline is still that one
        (a second node ticking the same deadline waits for the first's row lock, then finds it moved)."""
        sql, args = save_check(rule_id, check, down_at, flip, expect_down_at, "IS NOT DISTINCT FROM")
        if await tx.execute(sql, *args) != 1:
            return False
        if flip is not None:
            await tx.execute(FLIP, *flip_args(rule_id, flip, owed, event))
            await tx.execute(TRIM_FLIPS, rule_id, rule_id, KEEP_FLIPS)
        return True

    @staticmethod
    async def clear_deadline(tx: Conn, rule_id: str) -> None:
        await tx.execute("UPDATE heartbeats SET down_at = NULL WHERE rule_id = ?", rule_id)

    async def due(self, now: float, limit: int = 1000) -> list:
        return await self.fetch("SELECT * FROM heartbeats WHERE down_at IS NOT NULL AND down_at <= ?"
                                " ORDER BY down_at LIMIT ?", now, limit)

    async def next_due(self) -> float | None:
        return await self.fetchval("SELECT MIN(down_at) FROM heartbeats WHERE down_at IS NOT NULL")

    # --- pings -----------------------------------------------------------------------
    @staticmethod
    async def add_ping(tx: Conn, rule_id: str, *, at: float, kind: str, exit_status: int | None, rid: str,
                       duration: float | None, method: str, remote: str | None, body: str) -> int:
        """Record a ping, count it, and drop the check's pings older than the newest KEEP_PINGS."""
        n = await tx.fetchval(f"UPDATE heartbeats SET n_pings = n_pings + 1, {COUNTERS[kind]} = {COUNTERS[kind]} + 1,"
                              " last_ping_at = ?, last_ping_kind = ? WHERE rule_id = ? RETURNING n_pings",
                              at, kind, rule_id)
        await tx.execute("INSERT INTO heartbeat_pings (rule_id, n, at, kind, exit_status, rid, duration, method,"
                         " remote, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         rule_id, n, at, kind, exit_status, rid or None, duration, method, remote, body or None)
        if n > KEEP_PINGS:
            await tx.execute("DELETE FROM heartbeat_pings WHERE rule_id = ? AND n <= ?", rule_id, n - KEEP_PINGS)
        return n

    async def recent_pings(self, rule_id: str, limit: int = 20) -> list:
        return await self.fetch("SELECT * FROM heartbeat_pings WHERE rule_id = ? ORDER BY n DESC LIMIT ?",
                                rule_id, limit)

    # --- flips -----------------------------------------------------------------------
    async def owed_flips(self, limit: int = 100) -> list:
        """Owed flips no other node is notifying, each leased to this one for OWED_LEASE seconds
        (the database's clock), oldest first. This node's own leased ones are among them: one the
        database refused is tried again by the same node at once, not after the lease."""
        rows = await self.fetch(
            "WITH due AS (SELECT id FROM heartbeat_flips WHERE owed = 1 AND (claimed_until IS NULL"
            f" OR claimed_until <= {DB_NOW} OR claimed_by = ?) ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)"
            f" UPDATE heartbeat_flips f SET claimed_until = {DB_NOW} + ?, claimed_by = ? FROM due"
            " WHERE f.id = due.id RETURNING f.*", self.node_id, limit, OWED_LEASE, self.node_id)
        return sorted(rows, key=lambda r: r["id"])

    async def settle(self, flip_id: int) -> None:
        """The flip's notification was handed to dispatch."""
        await self.execute("UPDATE heartbeat_flips SET owed = 0, claimed_until = NULL, claimed_by = NULL WHERE id = ?",
                           flip_id)

    async def flips(self, rule_id: str, since: float) -> tuple[str | None, list]:
        """(the status in force at ``since``, or None when unknown; the flips after it, oldest first)."""
        before = await self.fetchval("SELECT new FROM heartbeat_flips WHERE rule_id = ? AND at <= ?"
                                     " ORDER BY at DESC, id DESC LIMIT 1", rule_id, since)
        after = await self.fetch("SELECT * FROM heartbeat_flips WHERE rule_id = ? AND at > ? ORDER BY at, id",
                                 rule_id, since)
        return before, after


class PingKeys(Table):
    """Keys for /ping/{ping_key}/{slug}: stored only as hashes; they open no API route."""

    async def create(self, name: str, prefix: str, key_hash: str, now: float) -> int:
        return await self.fetchval("INSERT INTO ping_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?)"
                                   " RETURNING id", name, prefix, key_hash, now)

    async def find(self, key_hash: str):
        """The live key with this hash, or None (unknown or revoked)."""
        return await self.fetchrow("SELECT id, key_hash FROM ping_keys WHERE key_hash = ? AND revoked_at IS NULL",
                                   key_hash)

    async def list(self) -> list:
        return await self.fetch("SELECT id, name, prefix, created_at, revoked_at FROM ping_keys ORDER BY id")

    async def revoke(self, key_id: int, now: float) -> bool:
        return await self.execute("UPDATE ping_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                  now, key_id) == 1


async def _free(tx: Conn, uuids: dict[str, str], held: dict[str, str]) -> None:
    """As on SQLite: a row of another rule that holds a wanted uuid gets a placeholder first;
    a gone rule's row that held it is dropped."""
    holder = {u: rid for rid, u in held.items()}
    for rid, u in uuids.items():
        other = holder.get(u)
        if other is None or other == rid:
            continue
        if other in uuids:
            await tx.execute("UPDATE heartbeats SET uuid = ? WHERE rule_id = ?", f"moving:{other}", other)
        else:
            for table in ("heartbeats", "heartbeat_pings", "heartbeat_flips"):
                await tx.execute(f"DELETE FROM {table} WHERE rule_id = ?", other)
