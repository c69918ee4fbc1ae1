"""Storm control's SQL: what counts against a number's limit, and the summaries (alertd/dispatch/storm.py)."""
from __future__ import annotations

import json

from ..outcome import SUMMARY_SOURCE
from .connection import Row, Table


class Storm(Table):
    def counted_times(self, number: str, channel: str, since: float, until: float,
                      exclude_log_id: int = 0) -> list[float]:
        """When the notifications that count against ``number``'s ``channel`` limit
        in (since, until] go out, oldest first.

        Counted: first attempts (retries of an unanswered call have attempt > 1),
        escalation steps and summaries, on that channel, sent or still to send.
        ``send_at`` is when one really went out, or is planned to. One still unsent
        from before ``since`` (the provider kept answering 429) goes out any
        moment, so it counts at ``until``. Not counted: what was throttled,
        silenced or failed at once (no outbox item), a send that failed for good,
        one cancelled by an acknowledgement, and ``exclude_log_id`` (a summary
        checking its own window).
        """
        times = [r[0] for r in self.q(
            "SELECT l.send_at FROM logs l JOIN outbox o ON o.log_id = l.log_id"
            " WHERE l.to_number = ? AND l.send_at > ? AND l.send_at <= ? AND l.attempt = 1"
            " AND o.channel = ? AND o.state IN ('pending', 'sent') AND l.log_id != ? ORDER BY l.send_at",
            (number, since, until, channel, exclude_log_id))]
        late = self.q(
            "SELECT COUNT(*) FROM logs l CROSS JOIN outbox o ON o.log_id = l.log_id"
            " WHERE l.to_number = ? AND l.status IN ('queued', 'scheduled') AND l.send_at <= ? AND l.attempt = 1"
            " AND o.channel = ? AND o.state = 'pending' AND l.log_id != ?",
            (number, since, channel, exclude_log_id)).fetchone()[0]
        return times + [until] * late

    @staticmethod
    def open_summary(tx, number: str, channel: str, since: float) -> Row | None:
        """The summary to ``number`` on ``channel`` that more alerts can still fold
        into: not sent yet and not in flight, due after ``since``."""
        # led by logs' (to_number, send_at) index, the few rows of this number's window:
        # CROSS JOIN keeps outbox's state index (a storm's many pending items) from
        # leading, and +l.source the source index (every summary ever)
        return tx.execute(
            "SELECT l.log_id, l.params FROM logs l CROSS JOIN outbox o ON o.log_id = l.log_id"
            " WHERE l.to_number = ? AND l.send_at > ? AND +l.source = ? AND o.channel = ?"
            " AND o.state = 'pending' AND o.leased_until IS NULL ORDER BY l.log_id DESC LIMIT 1",
            (number, since, SUMMARY_SOURCE, channel)).fetchone()

    @staticmethod
    def create_summary(tx, number: str, channel: str, message: str, params: dict,
                       due_at: float, now: float) -> int:
        """A summary: its own trigger, a log row 'scheduled' and an outbox item due
        at ``due_at``, the worker's from the start (no lease). Returns its log id."""
        trigger_id = tx.execute("INSERT INTO triggers (created_at, source) VALUES (?, ?)",
                               (now, SUMMARY_SOURCE)).lastrowid
        log_id = tx.execute(
            "INSERT INTO logs (trigger_id, created_at, source, to_number, type, message, params, status,"
            " attempt, step, send_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'scheduled', 1, 0, ?)",
            (trigger_id, now, SUMMARY_SOURCE, number, channel, message, json.dumps(params), due_at)).lastrowid
        tx.execute("INSERT INTO outbox (log_id, channel, state, next_attempt_at, created_at)"
                  " VALUES (?, ?, 'pending', ?, ?)", (log_id, channel, due_at, now))
        return log_id

    def postpone(self, log_id: int, outbox_id: int, due_at: float) -> None:
        """A claimed summary waits until ``due_at``: unleased, due again then, counted then."""
        with self.tx() as c:
            c.execute("UPDATE outbox SET next_attempt_at = ?, leased_until = NULL WHERE id = ?", (due_at, outbox_id))
            c.execute("UPDATE logs SET send_at = ? WHERE log_id = ?", (due_at, log_id))

    @staticmethod
    def update_summary(tx, log_id: int, message: str, params: dict) -> None:
        tx.execute("UPDATE logs SET message = ?, params = ? WHERE log_id = ?", (message, json.dumps(params), log_id))

    def set_summary(self, log_id: int, message: str, params: dict) -> None:
        """update_summary in a transaction of its own."""
        with self.tx() as c:
            self.update_summary(c, log_id, message, params)

    def folded_into(self, summary_log_id: int) -> list[Row]:
        """The log rows folded into a summary, oldest first."""
        return self.q("SELECT l.* FROM summary_folds f JOIN logs l ON l.log_id = f.log_id"
                                  " WHERE f.summary_log_id = ? ORDER BY l.log_id", (summary_log_id,)).fetchall()

    def drop_summary(self, log_id: int, outbox_id: int, silence_id: str | None) -> None:
        """A summary with nothing left to tell: 'silenced' (by ``silence_id``) or 'cancelled'."""
        with self.tx() as c:
            c.execute("UPDATE outbox SET state = 'cancelled', leased_until = NULL WHERE id = ?", (outbox_id,))
            c.execute("UPDATE logs SET status = ?, silence_id = ? WHERE log_id = ?",
                      ("silenced" if silence_id else "cancelled", silence_id, log_id))
