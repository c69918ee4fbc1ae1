"""Triggers and their log rows: what was sent, to whom, and who acknowledged.

As alertd/store/sqlite/logs.py, on PostgreSQL.
"""
from __future__ import annotations

import inspect
import json
from typing import Any, Callable

from . import DB_NOW
from .connection import Conn, Table


# One log row and its outbox items, with its trigger and the trigger's escalation steps when the
# trigger is new ($8 NULL): one round trip where four or more were (every statement costs the
# event loop a few hundred microseconds of asyncpg's work, which is what limits a node's rate).
_ROW = f"""
    WITH new_trigger AS (
        INSERT INTO triggers (created_at, source, rule_id, event_id, api_key_id, spec, group_id)
        SELECT $1::float8, $2::text, $3::text, $4::bigint, $5::bigint, $6::text, $7::bigint
        WHERE $8::bigint IS NULL RETURNING trigger_id),
    t AS (SELECT COALESCE((SELECT trigger_id FROM new_trigger), $8::bigint) AS trigger_id),
    steps AS (
        INSERT INTO followups (trigger_id, kind, step, due_at, state, created_at)
        SELECT t.trigger_id, 'escalate', s.k, $1::float8 + s.after, 'pending', $1::float8
        FROM t, unnest($9::float8[]) WITH ORDINALITY AS s(after, k)),
    l AS (
        INSERT INTO logs (trigger_id, created_at, source, rule_id, event_id, to_number, type, template_id, message,
                          params, status, error, silence_id, attempt, step, send_at, summary_log_id)
        SELECT t.trigger_id, $1::float8, $2::text, $3::text, $4::bigint, $10::text, $11::text, $12::text, $13::text,
               $14::text, $15::text, $16::text, $17::text, $18::int, $19::int, $20::float8, $21::bigint
        FROM t RETURNING log_id, trigger_id),
    o AS (
        INSERT INTO outbox (log_id, channel, state, next_attempt_at, leased_until, claimed_by, created_at)
        SELECT l.log_id, u.ch, 'pending', $22::float8,
               CASE WHEN $23::bool THEN NULL ELSE COALESCE($24::float8, {DB_NOW} + $25::float8) END,
               CASE WHEN $23::bool THEN NULL ELSE $26::text END, $1::float8
        FROM l, unnest($27::text[]) WITH ORDINALITY AS u(ch, n) ORDER BY u.n RETURNING id, channel)
    SELECT l.log_id, l.trigger_id, (SELECT array_agg(id ORDER BY id) FROM o) AS ids,
           (SELECT array_agg(channel ORDER BY id) FROM o) AS channels
    FROM l"""


class Logs(Table):
    async def create_trigger(self, trigger: dict, rows: list, lease_until: float, *,
                             prepare: Callable[[Any], Any] | None = None) -> list:
        """Write one trigger, its log rows and an outbox item per channel, atomically
        (alertd/store/sqlite/logs.py says what each argument is)."""
        async with self.tx() as c:
            return await self.insert_trigger(c, trigger, rows, lease_until, prepare=prepare)

    @staticmethod
    async def insert_trigger(tx: Conn, trigger: dict, rows: list, lease_until: float, *,
                             prepare: Callable[[Any], Any] | None = None) -> list:
        """create_trigger inside the caller's transaction ``tx`` (a write of Store.batch)."""
        c = tx
        now = trigger.get("now") or trigger["created_at"]
        if prepare is not None:
            done = prepare(c)
            if inspect.isawaitable(done):
                await done
        trigger_id = trigger.get("trigger_id")
        spec = trigger.get("spec") or {}
        # escalation steps are stored with the trigger: they survive the death of any node
        steps = [float(step["after"]) for step in spec.get("escalate") or ()] if trigger_id is None else []
        for row in rows:
            status = row.status
            channels = (list(row.channels or (("call", "sms") if row.type == "both" else (row.type,)))
                        if status in ("queued", "scheduled") else [])
            # one statement: the trigger (with the first row) and its steps, the row, its outbox items; the
            # request's first attempt holds the items while lease_until is ahead of now, counted on the
            # database's clock when it is the one (Database.db_clock)
            got = await c.fetchrow(
                _ROW, now, trigger.get("source"), trigger.get("rule_id"), trigger.get("event_id"),
                trigger.get("api_key_id"), json.dumps(spec) if spec else None, trigger.get("group_id"), trigger_id,
                steps, row.to, row.type, row.template_id, row.message, json.dumps(row.params), status,
                json.dumps(row.error) if row.error else None, row.silence_id, row.attempt, row.step,
                max(now, row.send_at or now), row.summary_log_id, row.send_at or now, status == "scheduled",
                None if c.db_clock else lease_until, lease_until - now, c.node_id, channels)
            trigger_id = trigger["trigger_id"] = row.trigger_id = got["trigger_id"]
            steps = []
            row.log_id = got["log_id"]
            row.items = list(zip(got["ids"] or (), got["channels"] or ()))
            for summary_id, channel in row.folds:  # storm folding: the summaries it is in
                await c.execute("INSERT INTO summary_folds (summary_log_id, log_id, channel) VALUES (?, ?, ?)"
                                " ON CONFLICT DO NOTHING", summary_id, row.log_id, channel)
        if trigger_id is None:  # a trigger without rows: itself and its steps
            trigger_id = trigger["trigger_id"] = await c.fetchval(
                "INSERT INTO triggers (created_at, source, rule_id, event_id, api_key_id, spec, group_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING trigger_id",
                now, trigger.get("source"), trigger.get("rule_id"), trigger.get("event_id"),
                trigger.get("api_key_id"), json.dumps(spec) if spec else None, trigger.get("group_id"))
            for k, after in enumerate(steps, start=1):
                await c.execute("INSERT INTO followups (trigger_id, kind, step, due_at, state, created_at)"
                                " VALUES (?, 'escalate', ?, ?, 'pending', ?)", trigger_id, k, now + after, now)
        return rows

    async def get(self, log_id: int):
        return await self.fetchrow("SELECT * FROM logs WHERE log_id = ?", log_id)

    async def list(self, *, limit: int = 50, source: str | None = None, since: float | None = None,
                   rule_id: str | None = None) -> list:
        where, args = [], []
        for column, op, value in (("source", "=", source), ("rule_id", "=", rule_id), ("created_at", ">=", since)):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        statement = "SELECT * FROM logs" + (" WHERE " + " AND ".join(where) if where else "")
        return await self.fetch(statement + " ORDER BY log_id DESC LIMIT ?", *args, limit)

    async def set_outcome(self, log_id: int, *, status: str, error: dict | None = None, channel: str | None = None,
                          sid: str | None = None, provider: str | None = None) -> None:
        """The final status (and the sid of ``channel``, and the name of the provider that carried
        it) of a log row sent outside the outbox."""
        ch = "sms" if channel == "sms" else "call"
        await self.execute(f"UPDATE logs SET status = ?, error = ?, {ch}_sid = COALESCE(?, {ch}_sid),"
                           f" {ch}_provider = COALESCE(?, {ch}_provider) WHERE log_id = ?",
                           status, json.dumps(error) if error else None, sid, provider, log_id)

    async def set_answered_by(self, log_id: int, answered_by: str) -> None:
        await self.execute("UPDATE logs SET answered_by = ? WHERE log_id = ?", answered_by, log_id)

    async def trigger(self, trigger_id: int) -> dict | None:
        row = await self.fetchrow("SELECT * FROM triggers WHERE trigger_id = ?", trigger_id)
        if row is None:
            return None
        return {**dict(row), "spec": json.loads(row["spec"]) if row["spec"] else {}}

    async def latest_open_trigger_for(self, number: str, since: float):
        """The most recent unacknowledged trigger that notified ``number`` since ``since``."""
        return await self.fetchrow(
            "SELECT l.log_id, l.trigger_id FROM logs l JOIN triggers t USING (trigger_id)"
            " WHERE l.to_number = ? AND l.created_at >= ? AND t.acknowledged_at IS NULL"
            " AND (l.call_sid IS NOT NULL OR l.sms_sid IS NOT NULL)"
            " ORDER BY l.created_at DESC, l.log_id DESC LIMIT 1", number, since)

    async def acknowledge(self, log_id: int, now: float, by: str | None = None) -> int | None:
        """Acknowledge the whole trigger of ``log_id`` and the triggers a storm summary
        folds (alertd/store/sqlite/logs.py says what that does). Returns the trigger id,
        or None when the log id is unknown. Two nodes acknowledging at once: the first
        acknowledgement's who and when stay (the trigger row is locked in between)."""
        async with self.tx() as c:
            tid = await c.fetchval("SELECT trigger_id FROM logs WHERE log_id = ?", log_id)
            if tid is None:
                return None
            folded = [r[0] for r in await c.fetch(
                "SELECT DISTINCT f.trigger_id FROM logs s JOIN summary_folds k ON k.summary_log_id = s.log_id"
                " JOIN logs f ON f.log_id = k.log_id WHERE s.trigger_id = ? AND f.trigger_id != ?", tid, tid)]
            for t in (tid, *sorted(folded)):
                await _acknowledge_trigger(c, t, now, by)
            return tid


async def _acknowledge_trigger(c: Conn, tid: int, now: float, by: str | None) -> None:
    first = await c.fetchrow(
        "UPDATE triggers SET acknowledged_at = COALESCE(acknowledged_at, ?),"
        " acknowledged_by = COALESCE(acknowledged_by, ?) WHERE trigger_id = ?"
        " RETURNING acknowledged_at, acknowledged_by", now, by, tid)
    if first is None:
        return
    await c.execute("UPDATE logs SET acknowledged_at = ?, acknowledged_by = ? WHERE trigger_id = ?",
                    first["acknowledged_at"], first["acknowledged_by"], tid)
    await c.execute("UPDATE followups SET state = 'cancelled', done_at = ? WHERE trigger_id = ? AND state = 'pending'",
                    now, tid)
    await c.execute(
        "WITH cancelled AS (UPDATE outbox SET state = 'cancelled', leased_until = NULL, claimed_by = NULL"
        " WHERE state = 'pending' AND leased_until IS NULL"
        " AND log_id IN (SELECT log_id FROM logs WHERE trigger_id = ?) RETURNING log_id)"
        " UPDATE logs SET status = 'cancelled' WHERE log_id IN (SELECT log_id FROM cancelled)"
        " AND status IN ('queued', 'scheduled')", tid)
