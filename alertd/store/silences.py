"""Silences: stored matchers that hold notifications back (see alertd/silences.py)."""
from __future__ import annotations

import sqlite3

from . import Store

MATCHERS = ("rule_id", "source", "to")


def add_silence(store: Store, silence_id: str, matcher: str, value: str, starts_at: float, ends_at: float,
                reason: str, now: float, created_by: str | None = None) -> None:
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}")
    with store.tx() as c:
        c.execute("INSERT INTO silences (silence_id, matcher, value, starts_at, ends_at, reason, created_at,"
                  " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (silence_id, matcher, value, starts_at, ends_at, reason, now, created_by))


def active_silences(store: Store, now: float) -> list[sqlite3.Row]:
    """Silences in force at ``now`` or later (not ended, not removed), oldest first."""
    return store.conn.execute(
        "SELECT * FROM silences WHERE ends_at > ? AND ended_at IS NULL ORDER BY created_at, silence_id",
        (now,)).fetchall()


def end_silence(store: Store, silence_id: str, now: float) -> bool:
    """End a silence now; False when unknown or already over. The row stays as the trace."""
    with store.tx() as c:
        return c.execute("UPDATE silences SET ended_at = ? WHERE silence_id = ? AND ended_at IS NULL"
                         " AND ends_at > ?", (now, silence_id, now)).rowcount == 1


def get_silence(store: Store, silence_id: str) -> sqlite3.Row | None:
    return store.conn.execute("SELECT * FROM silences WHERE silence_id = ?", (silence_id,)).fetchone()
