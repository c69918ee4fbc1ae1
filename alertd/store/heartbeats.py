"""Heartbeats: each check's state and deadline, its newest pings, its flips, and ping keys.

Functions taking ``c`` run inside the caller's transaction (the ping path
uses the group commit, the timer ``Store.tx``): a check's new state, the ping
that caused it and the flip it made commit together. The deadline a tick
acts on is cleared in the same transaction as the flip it makes, so a
deadline fires once (with several nodes on one database, the leader's
conditional update is the "has it fired" record).
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..engine.heartbeat import Check, Flip
from . import Store

KEEP_PINGS = 100   # per check: one pinged thousands of times a minute keeps these and its counts
KEEP_FLIPS = 1000  # per check: enough for the dashboard's bar of the last days
COUNTERS = {"success": "n_success", "fail": "n_fail", "start": "n_start", "log": "n_log"}


def check_of(row: sqlite3.Row) -> Check:
    return Check(status=row["status"], anchor_at=row["anchor_at"],
                 runs=tuple((str(r), float(t)) for r, t in json.loads(row["runs"])), reason=row["reason"])


def get(c: sqlite3.Connection, rule_id: str) -> sqlite3.Row | None:
    return c.execute("SELECT * FROM heartbeats WHERE rule_id = ?", (rule_id,)).fetchone()


def all_checks(store: Store, *, present_only: bool = True) -> list[sqlite3.Row]:
    sql = "SELECT * FROM heartbeats" + (" WHERE present = 1" if present_only else "") + " ORDER BY rule_id"
    return store.conn.execute(sql).fetchall()


def ensure(c: sqlite3.Connection, rule_id: str, uuid: str, slug: str | None, now: float) -> None:
    """The row of ``rule_id``, created if new; its uuid and slug set; marked present."""
    c.execute("INSERT INTO heartbeats (rule_id, uuid, slug, created_at) VALUES (?, ?, ?, ?)"
              " ON CONFLICT (rule_id) DO UPDATE SET uuid = excluded.uuid, slug = excluded.slug, present = 1",
              (rule_id, uuid, slug, now))


def mark_absent(c: sqlite3.Connection, present: set[str]) -> None:
    """Rows of rules no longer loaded: kept (their uuid comes back with them), without deadline or slug claim."""
    for (rule_id,) in c.execute("SELECT rule_id FROM heartbeats WHERE present = 1").fetchall():
        if rule_id not in present:
            c.execute("UPDATE heartbeats SET present = 0, down_at = NULL WHERE rule_id = ?", (rule_id,))


def save(c: sqlite3.Connection, rule_id: str, check: Check, down_at: float | None, flip: Flip | None = None, *,
         owed: bool = False, event: dict | None = None, expect_down_at: Any = ...) -> bool:
    """Store ``check`` (and ``flip``). With ``expect_down_at``, only if the stored deadline is still
    that one (a deadline fires once). Returns whether it was stored."""
    sql = ("UPDATE heartbeats SET status = ?, anchor_at = ?, runs = ?, reason = ?, down_at = ?,"
           " changed_at = COALESCE(?, changed_at) WHERE rule_id = ?")
    args: list[Any] = [check.status, check.anchor_at, json.dumps(check.runs), check.reason, down_at,
                       flip.at if flip else None, rule_id]
    if expect_down_at is not ...:
        sql += " AND down_at IS ?"
        args.append(expect_down_at)
    if c.execute(sql, args).rowcount != 1:
        return False
    if flip is not None:
        c.execute("INSERT INTO heartbeat_flips (rule_id, at, old, new, reason, owed, event)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (rule_id, flip.at, flip.old, flip.new, flip.reason, int(owed),
                   json.dumps(event, default=str) if event is not None else None))
        c.execute("DELETE FROM heartbeat_flips WHERE rule_id = ? AND owed = 0 AND id <= (SELECT id FROM"
                  " heartbeat_flips WHERE rule_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                  (rule_id, rule_id, KEEP_FLIPS))
    return True


def add_ping(c: sqlite3.Connection, rule_id: str, *, at: float, kind: str, exit_status: int | None, rid: str,
             duration: float | None, method: str, remote: str | None, body: str) -> int:
    """Record a ping, count it, and drop the check's pings older than the newest KEEP_PINGS.
    Returns its number."""
    n = c.execute(f"UPDATE heartbeats SET n_pings = n_pings + 1, {COUNTERS[kind]} = {COUNTERS[kind]} + 1,"
                  " last_ping_at = ?, last_ping_kind = ? WHERE rule_id = ? RETURNING n_pings",
                  (at, kind, rule_id)).fetchone()[0]
    c.execute("INSERT INTO heartbeat_pings (rule_id, n, at, kind, exit_status, rid, duration, method, remote, body)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              (rule_id, n, at, kind, exit_status, rid or None, duration, method, remote, body or None))
    if n > KEEP_PINGS:
        c.execute("DELETE FROM heartbeat_pings WHERE rule_id = ? AND n <= ?", (rule_id, n - KEEP_PINGS))
    return n


def due(store: Store, now: float, limit: int = 1000) -> list[sqlite3.Row]:
    return store.conn.execute("SELECT * FROM heartbeats WHERE down_at IS NOT NULL AND down_at <= ?"
                              " ORDER BY down_at LIMIT ?", (now, limit)).fetchall()


def next_due(store: Store) -> float | None:
    return store.conn.execute("SELECT MIN(down_at) FROM heartbeats WHERE down_at IS NOT NULL").fetchone()[0]


def owed_flips(store: Store, limit: int = 100) -> list[sqlite3.Row]:
    return store.conn.execute("SELECT * FROM heartbeat_flips WHERE owed = 1 ORDER BY id LIMIT ?",
                              (limit,)).fetchall()


def settle(store: Store, flip_id: int) -> None:
    with store.tx() as c:
        c.execute("UPDATE heartbeat_flips SET owed = 0 WHERE id = ?", (flip_id,))


def last_ping(c: sqlite3.Connection, rule_id: str) -> sqlite3.Row | None:
    return c.execute("SELECT * FROM heartbeat_pings WHERE rule_id = ? ORDER BY n DESC LIMIT 1",
                     (rule_id,)).fetchone()


def recent_pings(store: Store, rule_id: str, limit: int = 20) -> list[sqlite3.Row]:
    return store.conn.execute("SELECT * FROM heartbeat_pings WHERE rule_id = ? ORDER BY n DESC LIMIT ?",
                              (rule_id, limit)).fetchall()


def flips(store: Store, rule_id: str, since: float) -> tuple[str | None, list[sqlite3.Row]]:
    """(the status in force at ``since``, or None when unknown; the flips after it, oldest first)."""
    before = store.conn.execute("SELECT new FROM heartbeat_flips WHERE rule_id = ? AND at <= ?"
                                " ORDER BY at DESC, id DESC LIMIT 1", (rule_id, since)).fetchone()
    after = store.conn.execute("SELECT * FROM heartbeat_flips WHERE rule_id = ? AND at > ? ORDER BY at, id",
                               (rule_id, since)).fetchall()
    return (before[0] if before else None), after


# --- ping keys: /ping/{ping_key}/{slug} -------------------------------------------
def create_ping_key(store: Store, name: str, prefix: str, key_hash: str, now: float) -> int:
    with store.tx() as c:
        return c.execute("INSERT INTO ping_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?)",
                         (name, prefix, key_hash, now)).lastrowid


def find_ping_key(store: Store, key_hash: str) -> sqlite3.Row | None:
    """The live key with this hash, or None (unknown or revoked)."""
    return store.conn.execute("SELECT id, key_hash FROM ping_keys WHERE key_hash = ? AND revoked_at IS NULL",
                              (key_hash,)).fetchone()


def list_ping_keys(store: Store) -> list[sqlite3.Row]:
    return store.conn.execute("SELECT id, name, prefix, created_at, revoked_at FROM ping_keys ORDER BY id").fetchall()


def revoke_ping_key(store: Store, key_id: int, now: float) -> bool:
    with store.tx() as c:
        return c.execute("UPDATE ping_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                         (now, key_id)).rowcount == 1
