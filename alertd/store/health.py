"""What /healthz, /metrics and the dead man's switch read and write.

Used by alertd/api/health.py, alertd/metrics.py and alertd/deadman.py.
"""
from __future__ import annotations

import json

from . import Store


def outbox_stats(store: Store, now: float) -> dict:
    """The outbox at ``now``: ``pending`` items, how many of them are ``due``
    (their send time has come), and ``oldest_due_age``: seconds since the send
    time of the oldest due one (None when none is).

    An item counts as due from its log row's ``send_at`` (the time it was
    created, or the later time a deferred send or a storm summary is for), so
    a send deferred to tomorrow is not stuck today, and an item retried with
    backoff since its send time keeps its age.
    """
    row = store.conn.execute(
        "SELECT COUNT(*), COUNT(CASE WHEN l.send_at <= ? THEN 1 END), MIN(CASE WHEN l.send_at <= ? THEN l.send_at END)"
        " FROM outbox o JOIN logs l ON l.log_id = o.log_id WHERE o.state = 'pending'", (now, now)).fetchone()
    pending, due, oldest = row
    return {"pending": pending, "due": due, "oldest_due_age": None if oldest is None else max(0.0, now - oldest)}


def set_outcome(store: Store, log_id: int, *, status: str, error: dict | None = None, channel: str | None = None,
                sid: str | None = None) -> None:
    """The final status (and the sid of ``channel``) of a log row sent outside
    the outbox: the dead man's switch's (alertd/deadman.py)."""
    column = "sms_sid" if channel == "sms" else "call_sid"
    with store.tx() as c:
        c.execute(f"UPDATE logs SET status = ?, error = ?, {column} = COALESCE(?, {column}) WHERE log_id = ?",
                  (status, json.dumps(error) if error else None, sid, log_id))
