"""What both backends of the store say alike: statements with ``?`` placeholders that
SQLite runs as they are and PostgreSQL numbers ``$n`` (store/postgres/connection.py),
and the checks and bookkeeping around them.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

# --- heartbeats (store/*/heartbeats.py) -------------------------------------------------
KEEP_FLIPS = 1000  # per check: enough for the dashboard's bar of the last days
FLIP = "INSERT INTO heartbeat_flips (rule_id, at, old, new, reason, owed, event) VALUES (?, ?, ?, ?, ?, ?, ?)"
# a check's flips past the newest KEEP_FLIPS, but never one whose notification is owed
TRIM_FLIPS = ("DELETE FROM heartbeat_flips WHERE rule_id = ? AND owed = 0 AND id <= (SELECT id FROM"
              " heartbeat_flips WHERE rule_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)")


def save_check(rule_id: str, check: Any, down_at: float | None, flip: Any, expect_down_at: Any,
               same: str) -> tuple[str, list]:
    """The UPDATE that stores a check's state (Heartbeats.save), with its arguments; with
    ``expect_down_at`` (not ...), only while the stored deadline is that one. ``same``: how
    the backend says "equal, NULL included" (SQLite's IS, PostgreSQL's IS NOT DISTINCT FROM)."""
    sql = ("UPDATE heartbeats SET status = ?, anchor_at = ?, runs = ?, reason = ?, down_at = ?,"
           " changed_at = COALESCE(?, changed_at) WHERE rule_id = ?")
    args: list[Any] = [check.status, check.anchor_at, json.dumps([list(r) for r in check.runs]), check.reason,
                       down_at, flip.at if flip else None, rule_id]
    if expect_down_at is not ...:
        sql += f" AND down_at {same} ?"
        args.append(expect_down_at)
    return sql, args


def flip_args(rule_id: str, flip: Any, owed: bool, event: dict | None) -> tuple:
    return (rule_id, flip.at, flip.old, flip.new, flip.reason, int(owed),
            json.dumps(event, default=str) if event is not None else None)


# --- silences --------------------------------------------------------------------------
MATCHERS = ("rule_id", "source", "to")


def check_matcher(matcher: str) -> None:
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}")


# --- the dashboard -----------------------------------------------------------------------
FILTERS = ("source", "rule_id", "to_number", "status")

# what became of a notification, for the charts (alertd/ui/glance.py); first match wins
OUTCOME = """CASE
    WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
    WHEN status IN ('silenced', 'throttled', 'cancelled') THEN 'held'
    WHEN status = 'failed' OR call_status IN ('failed', 'busy', 'no-answer', 'canceled')
         OR sms_status IN ('failed', 'undelivered') THEN 'failed'
    ELSE 'sent' END"""


def filtered_logs(*, limit: int, acknowledged: bool | None = None, since_id: int | None = None,
                  since: float | None = None, until: float | None = None,
                  **filters: str | None) -> tuple[str, list[Any]]:
    """(statement, arguments) of the log rows newest first; ``filters``: exact matches on
    FILTERS; ``since_id``: rows after it only; ``since``/``until``: created in [since, until)."""
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
    return sql + " ORDER BY log_id DESC LIMIT ?", [*args, limit]


# --- retention ---------------------------------------------------------------------------
BATCH = 500  # rows per transaction: each takes a few milliseconds

# a log row is kept while its trigger still has work to do
KEEP = """
    EXISTS (SELECT 1 FROM outbox o WHERE o.log_id = l.log_id AND o.state = 'pending')
    OR EXISTS (SELECT 1 FROM followups f WHERE f.trigger_id = l.trigger_id AND f.state = 'pending')"""


# --- group commit --------------------------------------------------------------------------
def settle(done: list[tuple[asyncio.Future, Any, Exception | None]], error=lambda exc: exc) -> None:
    """Give each caller of a committed batch its result or its own write's error
    (``error`` turns a driver's exception into the store's)."""
    for future, result, exc in done:
        if future.done():
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(error(exc))
