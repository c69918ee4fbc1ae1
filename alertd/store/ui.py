"""Queries of the dashboard: users, sessions, a trigger's whole story, filtered log pages."""
from __future__ import annotations

import json
import sqlite3

from . import Store


def add_user(store: Store, name: str, password_hash: str, now: float) -> bool:
    """False when the name is taken; then the password is replaced (``alertd users add`` resets it)."""
    with store.tx() as c:
        changed = c.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)).rowcount
        if changed:
            # a new password ends every session opened with the old one
            c.execute("DELETE FROM ui_sessions WHERE user_id = (SELECT user_id FROM users WHERE name = ?)", (name,))
            return False
        c.execute("INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)", (name, password_hash, now))
        return True


def get_user(store: Store, name: str) -> sqlite3.Row | None:
    return store.conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()


def add_session(store: Store, session_hash: str, user_id: int, csrf: str, now: float, expires_at: float) -> None:
    with store.tx() as c:
        c.execute("DELETE FROM ui_sessions WHERE expires_at <= ?", (now,))
        c.execute("INSERT INTO ui_sessions (session_hash, user_id, csrf, created_at, expires_at)"
                  " VALUES (?, ?, ?, ?, ?)", (session_hash, user_id, csrf, now, expires_at))


def find_session(store: Store, session_hash: str, now: float) -> sqlite3.Row | None:
    return store.conn.execute(
        "SELECT s.session_hash, s.csrf, s.user_id, u.name FROM ui_sessions s JOIN users u USING (user_id)"
        " WHERE s.session_hash = ? AND s.expires_at > ?", (session_hash, now)).fetchone()


def end_session(store: Store, session_hash: str) -> None:
    with store.tx() as c:
        c.execute("DELETE FROM ui_sessions WHERE session_hash = ?", (session_hash,))


FILTERS = ("source", "rule_id", "to_number", "status")


def filtered_logs(store: Store, *, limit: int, acknowledged: bool | None = None, since_id: int | None = None,
                  since: float | None = None, until: float | None = None,
                  **filters: str | None) -> list[sqlite3.Row]:
    """Log rows newest first; ``filters``: exact matches on FILTERS; ``since_id``: rows after it only;
    ``since``/``until``: created in [since, until)."""
    where, args = [], []
    for op, value in ((">=", since), ("<", until)):
        if value is not None:
            where.append(f"created_at {op} ?")
            args.append(value)
    for column in FILTERS:
        if filters.get(column):
            where.append(f"{column} = ?")
            args.append(filters[column])
    if acknowledged is not None:
        where.append("acknowledged_at IS NOT NULL" if acknowledged else "acknowledged_at IS NULL")
    if since_id is not None:
        where.append("log_id > ?")
        args.append(since_id)
    sql = "SELECT * FROM logs" + (" WHERE " + " AND ".join(where) if where else "")
    return store.conn.execute(sql + " ORDER BY log_id DESC LIMIT ?", (*args, limit)).fetchall()


def trigger_story(store: Store, trigger_id: int) -> tuple[sqlite3.Row | None, list[sqlite3.Row], list[sqlite3.Row]]:
    """(trigger, its log rows oldest first, its follow-ups: retries and escalation steps)."""
    trigger = store.conn.execute("SELECT * FROM triggers WHERE trigger_id = ?", (trigger_id,)).fetchone()
    rows = store.conn.execute("SELECT * FROM logs WHERE trigger_id = ? ORDER BY log_id", (trigger_id,)).fetchall()
    followups = store.conn.execute("SELECT * FROM followups WHERE trigger_id = ? ORDER BY due_at, id",
                                   (trigger_id,)).fetchall()
    return trigger, rows, followups


def rules_last_fired(store: Store) -> dict[str, float]:
    """rule id -> when it last sent (its newest trigger)."""
    return {r[0]: r[1] for r in store.conn.execute(
        "SELECT rule_id, MAX(created_at) FROM triggers WHERE rule_id IS NOT NULL GROUP BY rule_id")}


def update_template(store: Store, template_id: str, name: str, fields: dict) -> bool:
    """Replace a template's name and fields (its id and created_at stay); False when it does not exist."""
    with store.tx() as c:
        return c.execute("UPDATE templates SET name = ?, fields = ? WHERE id = ?",
                         (name, json.dumps(fields), template_id)).rowcount == 1


# what became of a notification, for the charts (alertd/ui/glance.py); first match wins
OUTCOME = """CASE
    WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
    WHEN status IN ('silenced', 'throttled', 'cancelled') THEN 'held'
    WHEN status = 'failed' OR call_status IN ('failed', 'busy', 'no-answer', 'canceled')
         OR sms_status IN ('failed', 'undelivered') THEN 'failed'
    ELSE 'sent' END"""


def outcome_counts(store: Store, start: float, end: float) -> dict[str, int]:
    """Log rows created in [start, end) per outcome (acknowledged, sent, failed, held).
    Inbound calls (alertd/inbound) are in the log but are no notification."""
    return {r[0]: r[1] for r in store.conn.execute(
        f"SELECT {OUTCOME} AS outcome, COUNT(*) FROM logs WHERE created_at >= ? AND created_at < ?"
        " AND type != 'inbound' GROUP BY outcome", (start, end))}


def ack_delays(store: Store, start: float, end: float) -> list[tuple[float, float]]:
    """(created_at, seconds to acknowledge) of the acknowledged triggers created in [start, end)."""
    # through logs_created: the triggers table has no index on its time
    return [(r[0], r[1]) for r in store.conn.execute(
        "SELECT created_at, acknowledged_at - created_at FROM triggers WHERE trigger_id IN"
        " (SELECT trigger_id FROM logs WHERE created_at >= ? AND created_at < ?)"
        " AND acknowledged_at IS NOT NULL AND created_at >= ? AND created_at < ? ORDER BY created_at",
        (start, end, start, end))]
