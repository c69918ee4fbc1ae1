"""Heartbeats: each check's state and deadline, its newest pings, its flips; and ping keys.

Methods whose first parameter is ``tx`` run inside the caller's transaction:
the ping path runs them through ``Store.batch.run``, the deadline timer, a
reload and a pause through ``Heartbeats.write``, so a check's new state, the
ping that caused it and the flip it made commit together. The deadline a
tick acts on is cleared in the same transaction as the flip it makes
(``save(..., expect_down_at=...)``), so a deadline fires once.

A check's state is handed in as any object with ``status``, ``anchor_at``,
``runs`` (a sequence of (rid, started_at)) and ``reason``, a flip as one with
``at``, ``old``, ``new`` and ``reason`` (alertd/engine/heartbeat.py's Check
and Flip); rows come back as stored, ``runs`` as its JSON text.
"""
from __future__ import annotations

import json
import uuid as uuid_mod
from typing import Any, Callable

from .connection import Row, Table

KEEP_PINGS = 100   # per check: one pinged thousands of times a minute keeps these and its counts
KEEP_FLIPS = 1000  # per check: enough for the dashboard's bar of the last days
COUNTERS = {"success": "n_success", "fail": "n_fail", "start": "n_start", "log": "n_log"}


class Heartbeats(Table):
    def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(tx, *args)`` in a transaction of its own, committed when it returns; its result."""
        with self.tx() as c:
            return fn(c, *args)

    # --- checks ----------------------------------------------------------------------
    def get(self, rule_id: str) -> Row | None:
        return self.q("SELECT * FROM heartbeats WHERE rule_id = ?", (rule_id,)).fetchone()

    @staticmethod
    def read(tx, rule_id: str) -> Row | None:
        return tx.execute("SELECT * FROM heartbeats WHERE rule_id = ?", (rule_id,)).fetchone()

    def all(self, *, present_only: bool = True) -> list[Row]:
        sql = "SELECT * FROM heartbeats" + (" WHERE present = 1" if present_only else "") + " ORDER BY rule_id"
        return self.q(sql).fetchall()

    @staticmethod
    def claim(tx, wanted: dict[str, tuple[str | None, str | None]], now: float) -> dict[str, str]:
        """Make the rows match the loaded heartbeat rules: ``wanted`` is rule id -> (its uuid or
        None, its slug or None). A rule without a uuid keeps the one it has, or gets one made now.
        Rows of rules no longer loaded are kept (their uuid comes back with them), without deadline
        or slug. Returns rule id -> uuid."""
        held = {r["rule_id"]: r["uuid"] for r in tx.execute("SELECT rule_id, uuid FROM heartbeats")}
        uuids = {rid: u or held.get(rid) or str(uuid_mod.uuid4()) for rid, (u, _) in wanted.items()}
        _free(tx, uuids, held)
        tx.execute("UPDATE heartbeats SET slug = NULL")  # slugs may move between rules in one reload
        for rid in held:
            if rid not in wanted:
                tx.execute("UPDATE heartbeats SET present = 0, down_at = NULL WHERE rule_id = ?", (rid,))
        for rid, (_, slug) in wanted.items():
            tx.execute("INSERT INTO heartbeats (rule_id, uuid, slug, created_at) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (rule_id) DO UPDATE SET uuid = excluded.uuid, slug = excluded.slug,"
                       " present = 1", (rid, uuids[rid], slug, now))
        return uuids

    @staticmethod
    def save(tx, rule_id: str, check: Any, down_at: float | None, flip: Any = None, *, owed: bool = False,
             event: dict | None = None, expect_down_at: Any = ...) -> bool:
        """Store ``check`` (and ``flip``; ``owed``: a notification is due for it). With
        ``expect_down_at``, only if the stored deadline is still that one (a deadline fires once).
        Returns whether it was stored."""
        sql = ("UPDATE heartbeats SET status = ?, anchor_at = ?, runs = ?, reason = ?, down_at = ?,"
               " changed_at = COALESCE(?, changed_at) WHERE rule_id = ?")
        args: list[Any] = [check.status, check.anchor_at, json.dumps([list(r) for r in check.runs]), check.reason,
                           down_at, flip.at if flip else None, rule_id]
        if expect_down_at is not ...:
            sql += " AND down_at IS ?"
            args.append(expect_down_at)
        if tx.execute(sql, args).rowcount != 1:
            return False
        if flip is not None:
            tx.execute("INSERT INTO heartbeat_flips (rule_id, at, old, new, reason, owed, event)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (rule_id, flip.at, flip.old, flip.new, flip.reason, int(owed),
                        json.dumps(event, default=str) if event is not None else None))
            tx.execute("DELETE FROM heartbeat_flips WHERE rule_id = ? AND owed = 0 AND id <= (SELECT id FROM"
                       " heartbeat_flips WHERE rule_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                       (rule_id, rule_id, KEEP_FLIPS))
        return True

    @staticmethod
    def clear_deadline(tx, rule_id: str) -> None:
        tx.execute("UPDATE heartbeats SET down_at = NULL WHERE rule_id = ?", (rule_id,))

    def due(self, now: float, limit: int = 1000) -> list[Row]:
        return self.q("SELECT * FROM heartbeats WHERE down_at IS NOT NULL AND down_at <= ?"
                      " ORDER BY down_at LIMIT ?", (now, limit)).fetchall()

    def next_due(self) -> float | None:
        return self.q("SELECT MIN(down_at) FROM heartbeats WHERE down_at IS NOT NULL").fetchone()[0]

    # --- pings -----------------------------------------------------------------------
    @staticmethod
    def add_ping(tx, rule_id: str, *, at: float, kind: str, exit_status: int | None, rid: str,
                 duration: float | None, method: str, remote: str | None, body: str) -> int:
        """Record a ping, count it, and drop the check's pings older than the newest KEEP_PINGS.
        Returns its number."""
        n = tx.execute(f"UPDATE heartbeats SET n_pings = n_pings + 1, {COUNTERS[kind]} = {COUNTERS[kind]} + 1,"
                       " last_ping_at = ?, last_ping_kind = ? WHERE rule_id = ? RETURNING n_pings",
                       (at, kind, rule_id)).fetchone()[0]
        tx.execute("INSERT INTO heartbeat_pings (rule_id, n, at, kind, exit_status, rid, duration, method, remote,"
                   " body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (rule_id, n, at, kind, exit_status, rid or None, duration, method, remote, body or None))
        if n > KEEP_PINGS:
            tx.execute("DELETE FROM heartbeat_pings WHERE rule_id = ? AND n <= ?", (rule_id, n - KEEP_PINGS))
        return n

    def recent_pings(self, rule_id: str, limit: int = 20) -> list[Row]:
        return self.q("SELECT * FROM heartbeat_pings WHERE rule_id = ? ORDER BY n DESC LIMIT ?",
                      (rule_id, limit)).fetchall()

    # --- flips -----------------------------------------------------------------------
    def owed_flips(self, limit: int = 100) -> list[Row]:
        return self.q("SELECT * FROM heartbeat_flips WHERE owed = 1 ORDER BY id LIMIT ?", (limit,)).fetchall()

    def settle(self, flip_id: int) -> None:
        """The flip's notification was handed to dispatch."""
        with self.tx() as c:
            c.execute("UPDATE heartbeat_flips SET owed = 0 WHERE id = ?", (flip_id,))

    def flips(self, rule_id: str, since: float) -> tuple[str | None, list[Row]]:
        """(the status in force at ``since``, or None when unknown; the flips after it, oldest first)."""
        before = self.q("SELECT new FROM heartbeat_flips WHERE rule_id = ? AND at <= ?"
                        " ORDER BY at DESC, id DESC LIMIT 1", (rule_id, since)).fetchone()
        after = self.q("SELECT * FROM heartbeat_flips WHERE rule_id = ? AND at > ? ORDER BY at, id",
                       (rule_id, since)).fetchall()
        return (before[0] if before else None), after


class PingKeys(Table):
    """Keys for /ping/{ping_key}/{slug}: stored only as hashes; they open no API route."""

    def create(self, name: str, prefix: str, key_hash: str, now: float) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO ping_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?)",
                             (name, prefix, key_hash, now)).lastrowid

    def find(self, key_hash: str) -> Row | None:
        """The live key with this hash, or None (unknown or revoked)."""
        return self.q("SELECT id, key_hash FROM ping_keys WHERE key_hash = ? AND revoked_at IS NULL",
                      (key_hash,)).fetchone()

    def list(self) -> list[Row]:
        return self.q("SELECT id, name, prefix, created_at, revoked_at FROM ping_keys ORDER BY id").fetchall()

    def revoke(self, key_id: int, now: float) -> bool:
        with self.tx() as c:
            return c.execute("UPDATE ping_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                             (now, key_id)).rowcount == 1


def _free(tx, uuids: dict[str, str], held: dict[str, str]) -> None:
    """Let each wanted uuid be taken: a row of another rule that holds it (a renamed rule, two
    rules trading uuids) gets a placeholder first; a gone rule's row that held it is dropped."""
    holder = {u: rid for rid, u in held.items()}
    for rid, u in uuids.items():
        other = holder.get(u)
        if other is None or other == rid:
            continue
        if other in uuids:
            tx.execute("UPDATE heartbeats SET uuid = ? WHERE rule_id = ?", (f"moving:{other}", other))
        else:
            for table in ("heartbeats", "heartbeat_pings", "heartbeat_flips"):
                tx.execute(f"DELETE FROM {table} WHERE rule_id = ?", (other,))
