"""Retention: the SQL that prunes old history, one small transaction at a time.

Each function deletes at most ``limit`` rows in one BEGIN IMMEDIATE
transaction of a few milliseconds; the caller yields to the event loop between
calls (alertd/runtime/retention.py), so the API and the dispatcher, which share the
connection and the write lock, never wait behind a long delete.

What is never deleted: a log row with an outbox item still pending (a retry
or a deferred send), or whose trigger has a follow-up still pending (a retry
of an unanswered call, an escalation step). Those go in a later run, once done.
"""
from __future__ import annotations

from .connection import Row, Table

BATCH = 500

# a log row is kept while its trigger still has work to do
_KEEP = """
    EXISTS (SELECT 1 FROM outbox o WHERE o.log_id = l.log_id AND o.state = 'pending')
    OR EXISTS (SELECT 1 FROM followups f WHERE f.trigger_id = l.trigger_id AND f.state = 'pending')"""


class Retention(Table):
    def prune_logs(self, cutoff: float, after: tuple[float, int] = (float("-inf"), 0),
                   limit: int = BATCH) -> tuple[dict[str, int], tuple[float, int] | None]:
        """Delete up to ``limit`` log rows created before ``cutoff``, oldest first, with
        their outbox items and status callbacks, and their triggers (and the
        triggers' follow-ups) once no log row of theirs is left.

        ``after`` is the (created_at, log_id) cursor from the previous call: rows
        kept because they are pending are stepped over, not read again. Returns
        (counts, the next cursor, or None when nothing older is left).
        """
        counts = {"logs": 0, "outbox": 0, "callbacks": 0, "triggers": 0, "followups": 0, "kept": 0}
        with self.tx() as c:
            rows = c.execute(
                f"SELECT l.log_id, l.trigger_id, l.created_at, ({_KEEP}) AS keep FROM logs l"
                " WHERE l.created_at < ? AND (l.created_at, l.log_id) > (?, ?)"
                " ORDER BY l.created_at, l.log_id LIMIT ?", (cutoff, *after, limit)).fetchall()
            if not rows:
                return counts, None
            ids = [r["log_id"] for r in rows if not r["keep"]]
            counts["kept"] = len(rows) - len(ids)
            if ids:
                marks = ",".join("?" * len(ids))
                counts["outbox"] = c.execute(f"DELETE FROM outbox WHERE log_id IN ({marks}) AND state != 'pending'",
                                             ids).rowcount
                counts["callbacks"] = c.execute(f"DELETE FROM status_callbacks WHERE log_id IN ({marks})",
                                                ids).rowcount
                c.execute(f"DELETE FROM summary_folds WHERE log_id IN ({marks}) OR summary_log_id IN ({marks})",
                          ids + ids)
                counts["logs"] = c.execute(f"DELETE FROM logs WHERE log_id IN ({marks})", ids).rowcount
                tids = sorted({r["trigger_id"] for r in rows if not r["keep"]})
                tmarks = ",".join("?" * len(tids))
                gone = [r[0] for r in c.execute(
                    f"DELETE FROM triggers WHERE trigger_id IN ({tmarks})"
                    " AND NOT EXISTS (SELECT 1 FROM logs l WHERE l.trigger_id = triggers.trigger_id)"
                    " AND NOT EXISTS (SELECT 1 FROM followups f WHERE f.trigger_id = triggers.trigger_id"
                    " AND f.state = 'pending') RETURNING trigger_id", tids)]
                counts["triggers"] = len(gone)
                if gone:
                    gmarks = ",".join("?" * len(gone))
                    counts["followups"] = c.execute(f"DELETE FROM followups WHERE trigger_id IN ({gmarks})",
                                                    gone).rowcount
        last = rows[-1]
        return counts, ((last["created_at"], last["log_id"]) if len(rows) == limit else None)

    def prune_events(self, cutoff: float, limit: int = BATCH) -> int:
        """Delete up to ``limit`` events received before ``cutoff``, oldest first; returns how many."""
        with self.tx() as c:
            return c.execute("DELETE FROM events WHERE event_id IN (SELECT event_id FROM events"
                             " WHERE received_at < ? ORDER BY received_at LIMIT ?)", (cutoff, limit)).rowcount

    def prune_groups(self, cutoff: float, limit: int = BATCH) -> int:
        """Delete up to ``limit`` rule groups (alertd/dispatch/groups.py) sent before
        ``cutoff``, with any events left of them; returns how many groups. A group
        still pending or being sent is never deleted."""
        with self.tx() as c:
            ids = [r[0] for r in c.execute("SELECT group_id FROM rule_groups WHERE state = 'sent' AND done_at < ?"
                                           " ORDER BY done_at LIMIT ?", (cutoff, limit))]
            if not ids:
                return 0
            marks = ",".join("?" * len(ids))
            c.execute(f"DELETE FROM rule_group_events WHERE group_id IN ({marks})", ids)
            return c.execute(f"DELETE FROM rule_groups WHERE group_id IN ({marks})", ids).rowcount
