"""Reaching whoever is on call, on PostgreSQL: inbound calls, calendar feed tokens, shift
notices (alertd/store/sqlite/reach.py says what each method does).

What several nodes add: a provider webhook repeated to another node finds the call the
first made (the call's sid is locked while it is looked up and created); a voicemail is
claimed by one row update, so it is notified once whichever nodes see it due; a shift's
notice is recorded under its primary key, so nodes sending it at once send it once.
"""
from __future__ import annotations

import json

from .claims import lock_key
from .connection import Conn, Table
from .logs import Logs


class Reach(Table):
    # --- inbound calls (alertd/inbound) ---------------------------------------------
    async def add_call(self, call_sid: str, number: str, caller: str, steps: list, now: float,
                       trigger: dict, row):
        """The inbound call ``call_sid`` with its trigger-log row, created once, on whichever node."""
        async with self.tx() as c:
            await lock_key(c.raw, "inbound", call_sid)
            found = await c.fetchrow("SELECT * FROM inbound_calls WHERE call_sid = ?", call_sid)
            if found is not None:
                return found
            (stored,) = await Logs.insert_trigger(c, trigger, [row], now)
            return await c.fetchrow(
                "INSERT INTO inbound_calls (call_sid, number, caller, log_id, steps, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'ringing', ?) RETURNING *",
                call_sid, number, caller, stored.log_id, json.dumps(steps), now)

    async def get_call(self, call_id: int):
        return await self.fetchrow("SELECT * FROM inbound_calls WHERE id = ?", call_id)

    async def update_call(self, call_id: int, message: str | None = None, **fields) -> None:
        """Set ``fields`` of the call; its trigger-log row takes the status and ``message``."""
        names = ", ".join(f"{k} = ?" for k in fields)  # the callers' own keyword names, never input
        async with self.tx() as c:
            if fields:
                await c.execute(f"UPDATE inbound_calls SET {names} WHERE id = ?", *fields.values(), call_id)
            if "status" in fields or message is not None:
                await c.execute(
                    "UPDATE logs SET status = COALESCE(?, status), call_status = COALESCE(?, call_status),"
                    " message = COALESCE(?, message) WHERE log_id = (SELECT log_id FROM inbound_calls WHERE id = ?)",
                    fields.get("status"), fields.get("status"), message, call_id)

    @staticmethod
    async def claim_voicemail(tx: Conn, call_id: int) -> bool:
        """Mark the call's voicemail notified inside ``tx``; False when it was notified already
        (a node claiming it at the same moment waits for the row, then finds it notified)."""
        return await tx.fetchval("UPDATE inbound_calls SET voicemail_state = 'notified', voicemail_due_at = NULL"
                                 " WHERE id = ? AND COALESCE(voicemail_state, '') != 'notified' RETURNING id",
                                 call_id) is not None

    @staticmethod
    async def set_voicemail_trigger(tx: Conn, call_id: int, trigger_id: int, listen_hash: str) -> None:
        await tx.execute("UPDATE inbound_calls SET voicemail_trigger_id = ?, listen_hash = ? WHERE id = ?",
                         trigger_id, listen_hash, call_id)

    async def voicemails_due(self, now: float) -> list:
        return await self.fetch("SELECT * FROM inbound_calls WHERE voicemail_state = 'awaiting'"
                                " AND voicemail_due_at <= ? ORDER BY voicemail_due_at", now)

    async def next_voicemail_due(self) -> float | None:
        return await self.fetchval("SELECT MIN(voicemail_due_at) FROM inbound_calls WHERE voicemail_state = 'awaiting'")

    async def postpone_voicemail(self, call_id: int, due_at: float | None) -> None:
        """An awaiting voicemail that could not be sent: try again at ``due_at``; None gives it up."""
        await self.execute("UPDATE inbound_calls SET voicemail_state = CASE WHEN ?::float8 IS NULL THEN 'dropped'"
                           " ELSE voicemail_state END, voicemail_due_at = ? WHERE id = ?"
                           " AND voicemail_state = 'awaiting'", due_at, due_at, call_id)

    async def listenable(self, call_id: int, listen_hash: str):
        """The call whose voicemail link carries the token of ``listen_hash``."""
        return await self.fetchrow("SELECT * FROM inbound_calls WHERE id = ? AND listen_hash = ?", call_id, listen_hash)

    async def call_by_sid(self, call_sid: str):
        """The call with its trigger-log row's status and message."""
        return await self.fetchrow("SELECT c.*, l.status AS log_status, l.message FROM inbound_calls c"
                                   " JOIN logs l USING (log_id) WHERE c.call_sid = ?", call_sid)

    # --- calendar feed tokens (alertd/oncall_feed.py) -----------------------------------
    async def add_feed(self, rotation: str, prefix: str, token_hash: str, now: float) -> int:
        return await self.fetchval("INSERT INTO oncall_feeds (rotation, prefix, token_hash, created_at)"
                                   " VALUES (?, ?, ?, ?) RETURNING feed_id", rotation, prefix, token_hash, now)

    async def find_feed(self, rotation: str, token_hash: str):
        return await self.fetchrow("SELECT * FROM oncall_feeds WHERE rotation = ? AND token_hash = ?"
                                   " AND revoked_at IS NULL", rotation, token_hash)

    async def list_feeds(self) -> list:
        return await self.fetch("SELECT feed_id, rotation, prefix, created_at, revoked_at FROM oncall_feeds"
                                " ORDER BY feed_id")

    async def revoke_feed(self, feed_id: int, now: float) -> bool:
        return await self.execute("UPDATE oncall_feeds SET revoked_at = ? WHERE feed_id = ? AND revoked_at IS NULL",
                                  now, feed_id) == 1

    # --- shift notices (alertd/dispatch/shift_notices.py) ---------------------------------
    @staticmethod
    async def claim_shift_notice(tx: Conn, rotation: str, contact: str, shift_start: float, now: float) -> bool:
        """Record the notice of one shift inside ``tx``; False when it was recorded before (a node
        recording it at the same moment waits on the key, then finds it)."""
        return await tx.execute("INSERT INTO shift_notices (rotation, contact, shift_start, created_at)"
                                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", rotation, contact, shift_start,
                                now) == 1

    @staticmethod
    async def set_shift_notice_trigger(tx: Conn, rotation: str, contact: str, shift_start: float,
                                       trigger_id: int) -> None:
        await tx.execute("UPDATE shift_notices SET trigger_id = ? WHERE rotation = ? AND contact = ?"
                         " AND shift_start = ?", trigger_id, rotation, contact, shift_start)

    async def shift_notices(self, rotation: str) -> list:
        return await self.fetch("SELECT * FROM shift_notices WHERE rotation = ? ORDER BY shift_start, contact",
                                rotation)

    # --- retention (alertd/runtime/retention.py) ----------------------------------------
    async def prune(self, cutoff: float, limit: int) -> int:
        """As on SQLite: up to ``limit`` ended inbound calls and shift-notice records before ``cutoff``."""
        async with self.tx() as c:
            calls = await c.execute("DELETE FROM inbound_calls WHERE id IN (SELECT id FROM inbound_calls"
                                    " WHERE created_at < ? AND COALESCE(voicemail_state, '') != 'awaiting'"
                                    " ORDER BY created_at LIMIT ?)", cutoff, limit)
            notices = await c.execute("DELETE FROM shift_notices WHERE (rotation, contact, shift_start) IN"
                                      " (SELECT rotation, contact, shift_start FROM shift_notices"
                                      " WHERE shift_start < ? ORDER BY shift_start LIMIT ?)", cutoff, limit)
        return calls + notices
