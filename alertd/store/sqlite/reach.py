"""Reaching whoever is on call: inbound calls, calendar feed tokens, shift notices (schema 10)."""
from __future__ import annotations

import json

from .connection import Row, Table
from .logs import Logs


class Reach(Table):
    # --- inbound calls (alertd/inbound) ---------------------------------------------
    async def add_call(self, call_sid: str, number: str, caller: str, steps: list, now: float,
                 trigger: dict, row) -> Row:
        """The inbound call ``call_sid`` with its trigger-log row (a Notification whose
        status is not sendable: it gets no outbox item), created once: a webhook the
        provider repeats finds the call it already made."""
        with self.tx() as c:
            found = c.execute("SELECT * FROM inbound_calls WHERE call_sid = ?", (call_sid,)).fetchone()
            if found is not None:
                return found
            (stored,) = await Logs.insert_trigger(c, trigger, [row], now)
            c.execute("INSERT INTO inbound_calls (call_sid, number, caller, log_id, steps, status, created_at)"
                      " VALUES (?, ?, ?, ?, ?, 'ringing', ?)",
                      (call_sid, number, caller, stored.log_id, json.dumps(steps), now))
            return c.execute("SELECT * FROM inbound_calls WHERE call_sid = ?", (call_sid,)).fetchone()

    async def get_call(self, call_id: int) -> Row | None:
        return self.q("SELECT * FROM inbound_calls WHERE id = ?", (call_id,)).fetchone()

    async def update_call(self, call_id: int, message: str | None = None, **fields) -> None:
        """Set ``fields`` of the call; its trigger-log row takes the status and ``message``."""
        names = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as c:
            if fields:
                c.execute(f"UPDATE inbound_calls SET {names} WHERE id = ?", (*fields.values(), call_id))
            if "status" in fields or message is not None:
                c.execute("UPDATE logs SET status = COALESCE(?, status), call_status = COALESCE(?, call_status),"
                          " message = COALESCE(?, message)"
                          " WHERE log_id = (SELECT log_id FROM inbound_calls WHERE id = ?)",
                          (fields.get("status"), fields.get("status"), message, call_id))

    @staticmethod
    async def claim_voicemail(tx, call_id: int) -> bool:
        """Mark the call's voicemail notified, inside the caller's transaction; True when
        this call made the claim, False when it was notified already."""
        return tx.execute("UPDATE inbound_calls SET voicemail_state = 'notified', voicemail_due_at = NULL"
                          " WHERE id = ? AND COALESCE(voicemail_state, '') != 'notified' RETURNING id",
                          (call_id,)).fetchone() is not None

    @staticmethod
    async def set_voicemail_trigger(tx, call_id: int, trigger_id: int, listen_hash: str) -> None:
        tx.execute("UPDATE inbound_calls SET voicemail_trigger_id = ?, listen_hash = ? WHERE id = ?",
                   (trigger_id, listen_hash, call_id))

    async def voicemails_due(self, now: float) -> list[Row]:
        return self.q("SELECT * FROM inbound_calls WHERE voicemail_state = 'awaiting'"
                      " AND voicemail_due_at <= ? ORDER BY voicemail_due_at", (now,)).fetchall()

    async def next_voicemail_due(self) -> float | None:
        return self.q("SELECT MIN(voicemail_due_at) FROM inbound_calls WHERE voicemail_state = 'awaiting'").fetchone()[0]

    async def postpone_voicemail(self, call_id: int, due_at: float | None) -> None:
        """An awaiting voicemail that could not be sent: try again at ``due_at``; None gives it up."""
        with self.tx() as c:
            c.execute("UPDATE inbound_calls SET voicemail_state = CASE WHEN ? IS NULL THEN 'dropped'"
                      " ELSE voicemail_state END, voicemail_due_at = ? WHERE id = ? AND voicemail_state = 'awaiting'",
                      (due_at, due_at, call_id))

    async def listenable(self, call_id: int, listen_hash: str) -> Row | None:
        """The call whose voicemail link carries the token of ``listen_hash``."""
        return self.q("SELECT * FROM inbound_calls WHERE id = ? AND listen_hash = ?",
                      (call_id, listen_hash)).fetchone()

    async def call_by_sid(self, call_sid: str) -> Row | None:
        """The call with its trigger-log row's status and message."""
        return self.q("SELECT c.*, l.status AS log_status, l.message FROM inbound_calls c"
                      " JOIN logs l USING (log_id) WHERE c.call_sid = ?", (call_sid,)).fetchone()

    # --- calendar feed tokens (alertd/oncall_feed.py) -----------------------------------
    async def add_feed(self, rotation: str, prefix: str, token_hash: str, now: float) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO oncall_feeds (rotation, prefix, token_hash, created_at)"
                             " VALUES (?, ?, ?, ?)", (rotation, prefix, token_hash, now)).lastrowid

    async def find_feed(self, rotation: str, token_hash: str) -> Row | None:
        return self.q("SELECT * FROM oncall_feeds WHERE rotation = ? AND token_hash = ? AND revoked_at IS NULL",
                      (rotation, token_hash)).fetchone()

    async def list_feeds(self) -> list[Row]:
        return self.q("SELECT feed_id, rotation, prefix, created_at, revoked_at FROM oncall_feeds"
                      " ORDER BY feed_id").fetchall()

    async def revoke_feed(self, feed_id: int, now: float) -> bool:
        with self.tx() as c:
            return c.execute("UPDATE oncall_feeds SET revoked_at = ? WHERE feed_id = ? AND revoked_at IS NULL",
                             (now, feed_id)).rowcount == 1

    # --- shift notices (alertd/dispatch/shift_notices.py) ---------------------------------
    @staticmethod
    async def claim_shift_notice(tx, rotation: str, contact: str, shift_start: float, now: float) -> bool:
        """Record the notice of one shift inside the caller's transaction; False when it was recorded before."""
        return tx.execute("INSERT OR IGNORE INTO shift_notices (rotation, contact, shift_start, created_at)"
                          " VALUES (?, ?, ?, ?)", (rotation, contact, shift_start, now)).rowcount == 1

    @staticmethod
    async def set_shift_notice_trigger(tx, rotation: str, contact: str, shift_start: float, trigger_id: int) -> None:
        tx.execute("UPDATE shift_notices SET trigger_id = ? WHERE rotation = ? AND contact = ? AND shift_start = ?",
                   (trigger_id, rotation, contact, shift_start))

    async def shift_notices(self, rotation: str) -> list[Row]:
        return self.q("SELECT * FROM shift_notices WHERE rotation = ? ORDER BY shift_start, contact",
                      (rotation,)).fetchall()

    # --- retention (alertd/runtime/retention.py) ----------------------------------------
    async def prune(self, cutoff: float, limit: int) -> int:
        """Delete up to ``limit`` inbound calls that ended before ``cutoff`` (never one
        whose voicemail waits for its transcription) and up to ``limit`` records of
        shift notices whose shift started before it; returns how many."""
        with self.tx() as c:
            calls = c.execute("DELETE FROM inbound_calls WHERE id IN (SELECT id FROM inbound_calls"
                              " WHERE created_at < ? AND COALESCE(voicemail_state, '') != 'awaiting'"
                              " ORDER BY created_at LIMIT ?)", (cutoff, limit)).rowcount
            notices = c.execute("DELETE FROM shift_notices WHERE (rotation, contact, shift_start) IN"
                                " (SELECT rotation, contact, shift_start FROM shift_notices"
                                " WHERE shift_start < ? ORDER BY shift_start LIMIT ?)", (cutoff, limit)).rowcount
        return calls + notices
