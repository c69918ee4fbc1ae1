"""Triggers and their log rows: what was sent, to whom, and who acknowledged.

A trigger is one notification request (an API call, a rule firing, a
follow-up's parent); each recipient of it is a log row; each channel of a
row to send is an outbox item (alertd/store/sqlite/outbox.py).
"""
from __future__ import annotations

import inspect
import json
from typing import Any, Callable

from .connection import Row, Table


class Logs(Table):
    async def create_trigger(self, trigger: dict, rows: list, lease_until: float, *,
                       prepare: Callable[[Any], None] | None = None) -> list:
        """Write one trigger, its log rows and an outbox item per channel, atomically.

        ``rows``: Notifications (alertd/dispatch/notification.py); a row already
        'failed', 'silenced' or 'throttled' gets no outbox items; ``channels``
        names the channels to send when not all of its type's.
        ``prepare(tx)`` runs first inside the same transaction (storm folding
        writes its summaries there, so a fold and its throttled rows commit together).
        Returns the rows with log_id, trigger_id and ``items`` [(outbox_id, channel)] set.
        The items are leased until ``lease_until`` so the background worker leaves
        them to the caller's first attempt.
        """
        with self.tx() as c:
            return await self.insert_trigger(c, trigger, rows, lease_until, prepare=prepare)

    @staticmethod
    async def insert_trigger(tx, trigger: dict, rows: list, lease_until: float, *,
                       prepare: Callable[[Any], None] | None = None) -> list:
        """create_trigger inside the caller's transaction ``tx`` (a write of Store.batch)."""
        c = tx
        now = trigger.get("now") or trigger["created_at"]
        if prepare is not None:
            done = prepare(c)
            if inspect.isawaitable(done):
                await done
        trigger_id = trigger.get("trigger_id")
        if trigger_id is None:
            spec = trigger.get("spec") or {}
            trigger_id = trigger["trigger_id"] = c.execute(
                "INSERT INTO triggers (created_at, source, rule_id, event_id, api_key_id, spec, group_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, trigger.get("source"), trigger.get("rule_id"), trigger.get("event_id"),
                 trigger.get("api_key_id"), json.dumps(spec) if spec else None,
                 trigger.get("group_id"))).lastrowid
            # escalation steps are stored with the trigger: they survive a restart, kill -9 included
            for k, step in enumerate(spec.get("escalate") or (), start=1):
                c.execute("INSERT INTO followups (trigger_id, kind, step, due_at, state, created_at)"
                          " VALUES (?, 'escalate', ?, ?, 'pending', ?)",
                          (trigger_id, k, now + step["after"], now))
        for row in rows:
            status = row.status
            row.log_id = c.execute(
                "INSERT INTO logs (trigger_id, created_at, source, rule_id, event_id, to_number, type,"
                " template_id, message, params, status, error, silence_id, attempt, step, send_at,"
                " summary_log_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (trigger_id, now, trigger.get("source"), trigger.get("rule_id"), trigger.get("event_id"),
                 row.to, row.type, row.template_id, row.message, json.dumps(row.params), status,
                 json.dumps(row.error) if row.error else None, row.silence_id, row.attempt, row.step,
                 max(now, row.send_at or now), row.summary_log_id)).lastrowid
            row.trigger_id = trigger_id
            row.items = []
            for summary_id, channel in row.folds:  # storm folding: the summaries it is in
                c.execute("INSERT OR IGNORE INTO summary_folds (summary_log_id, log_id, channel) VALUES (?, ?, ?)",
                          (summary_id, row.log_id, channel))
            if status not in ("queued", "scheduled"):
                continue
            for channel in row.channels or (("call", "sms") if row.type == "both" else (row.type,)):
                oid = c.execute(
                    "INSERT INTO outbox (log_id, channel, state, next_attempt_at, leased_until, created_at)"
                    " VALUES (?, ?, 'pending', ?, ?, ?)",
                    (row.log_id, channel, row.send_at or now,
                     None if status == "scheduled" else lease_until, now)).lastrowid
                row.items.append((oid, channel))
        return rows

    async def get(self, log_id: int) -> Row | None:
        return self.q("SELECT * FROM logs WHERE log_id = ?", (log_id,)).fetchone()

    async def list(self, *, limit: int = 50, source: str | None = None, since: float | None = None,
             rule_id: str | None = None) -> list[Row]:
        where, args = [], []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if rule_id is not None:
            where.append("rule_id = ?")
            args.append(rule_id)
        if since is not None:
            where.append("created_at >= ?")
            args.append(since)
        sql = "SELECT * FROM logs" + (" WHERE " + " AND ".join(where) if where else "")
        return self.q(sql + " ORDER BY log_id DESC LIMIT ?", (*args, limit)).fetchall()

    async def set_outcome(self, log_id: int, *, status: str, error: dict | None = None, channel: str | None = None,
                          sid: str | None = None, provider: str | None = None) -> None:
        """The final status (and the sid of ``channel``, and the name of the provider that
        carried it) of a log row sent outside the outbox: the dead man's switch's
        (alertd/dispatch/deadman.py)."""
        ch = "sms" if channel == "sms" else "call"
        with self.tx() as c:
            c.execute(f"UPDATE logs SET status = ?, error = ?, {ch}_sid = COALESCE(?, {ch}_sid),"
                      f" {ch}_provider = COALESCE(?, {ch}_provider) WHERE log_id = ?",
                      (status, json.dumps(error) if error else None, sid, provider, log_id))

    async def set_answered_by(self, log_id: int, answered_by: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE logs SET answered_by = ? WHERE log_id = ?", (answered_by, log_id))

    async def trigger(self, trigger_id: int) -> dict | None:
        row = self.q("SELECT * FROM triggers WHERE trigger_id = ?", (trigger_id,)).fetchone()
        if row is None:
            return None
        return {**dict(row), "spec": json.loads(row["spec"]) if row["spec"] else {}}

    async def latest_open_trigger_for(self, number: str, since: float) -> Row | None:
        """The most recent unacknowledged trigger that notified ``number`` since ``since``."""
        return self.q(
            "SELECT l.log_id, l.trigger_id FROM logs l JOIN triggers t USING (trigger_id)"
            " WHERE l.to_number = ? AND l.created_at >= ? AND t.acknowledged_at IS NULL"
            " AND (l.call_sid IS NOT NULL OR l.sms_sid IS NOT NULL)"
            " ORDER BY l.created_at DESC, l.log_id DESC LIMIT 1", (number, since)).fetchone()

    async def acknowledge(self, log_id: int, now: float, by: str | None = None) -> int | None:
        """Acknowledge the whole trigger of ``log_id``: every row of it shows who
        and when (the first acknowledgement's), and every pending retry,
        escalation step and unsent delivery of it is cancelled. Returns the
        trigger id, or None when the log id is unknown.

        A storm summary stands for the triggers folded into it: acknowledging
        it acknowledges them too."""
        with self.tx() as c:
            row = c.execute("SELECT trigger_id FROM logs WHERE log_id = ?", (log_id,)).fetchone()
            if row is None:
                return None
            tid = row["trigger_id"]
            folded = [r[0] for r in c.execute(
                "SELECT DISTINCT f.trigger_id FROM logs s JOIN summary_folds k ON k.summary_log_id = s.log_id"
                " JOIN logs f ON f.log_id = k.log_id WHERE s.trigger_id = ? AND f.trigger_id != ?", (tid, tid))]
            for t in (tid, *folded):
                _acknowledge_trigger(c, t, now, by)
            return tid


def _acknowledge_trigger(c, tid: int, now: float, by: str | None) -> None:
    c.execute("UPDATE triggers SET acknowledged_at = COALESCE(acknowledged_at, ?),"
              " acknowledged_by = COALESCE(acknowledged_by, ?) WHERE trigger_id = ?", (now, by, tid))
    first = c.execute("SELECT acknowledged_at, acknowledged_by FROM triggers WHERE trigger_id = ?",
                      (tid,)).fetchone()
    c.execute("UPDATE logs SET acknowledged_at = ?, acknowledged_by = ? WHERE trigger_id = ?",
              (first["acknowledged_at"], first["acknowledged_by"], tid))
    c.execute("UPDATE followups SET state = 'cancelled', done_at = ? WHERE trigger_id = ? AND state = 'pending'",
              (now, tid))
    cancelled = [r[0] for r in c.execute(
        "UPDATE outbox SET state = 'cancelled', leased_until = NULL WHERE state = 'pending'"
        " AND leased_until IS NULL AND log_id IN (SELECT log_id FROM logs WHERE trigger_id = ?)"
        " RETURNING log_id", (tid,))]
    for lid in set(cancelled):
        c.execute("UPDATE logs SET status = 'cancelled' WHERE log_id = ? AND status IN ('queued', 'scheduled')",
                  (lid,))
