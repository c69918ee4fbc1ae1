"""The durable outbox: one item per channel of a log row to send, leased while in flight."""
from __future__ import annotations

import json
from typing import Iterable

from ..outcome import row_status
from .connection import Row, Table


def _item(row: Row) -> dict:
    """A claimed item joined with its log row: ``to`` and parsed ``params`` as a Notification has them."""
    return {**dict(row), "to": row["to_number"], "params": json.loads(row["params"])}


class Outbox(Table):
    async def record_results(self, results: Iterable[dict], *, complete: bool = False) -> None:
        """Apply attempt outcomes in one transaction.

        Each result: outbox_id, log_id, channel, outcome ('sent' | 'failed' |
        'retry'), sid, sent_at (for sent: the row's send_at becomes when it
        really went out, which per-number limits count), error (dict),
        next_attempt_at (for retry), provider (the name of the provider that
        carried or last failed the attempt, when known). ``complete``: the
        results hold every outbox item of each log row they touch (the API's
        first attempt), so the row's status follows from them without reading
        the other items.
        """
        with self.tx() as c:
            await self.apply_results(c, results, complete=complete)

    @staticmethod
    async def apply_results(tx, results: Iterable[dict], *, complete: bool = False) -> None:
        """record_results inside the caller's transaction ``tx`` (a write of Store.batch)."""
        c = tx
        by_log: dict[int, list[dict]] = {}
        for r in results:
            by_log.setdefault(r["log_id"], []).append(r)
        for log_id, group in by_log.items():
            sids = {"call": None, "sms": None}
            via = {"call": None, "sms": None}  # the provider of each channel's attempt
            error = sent_at = None
            for r in group:
                via[r["channel"]] = r.get("provider") or via[r["channel"]]
                if r["outcome"] == "sent":
                    c.execute("UPDATE outbox SET state = 'sent', attempts = attempts + 1, last_error = NULL,"
                              " leased_until = NULL WHERE id = ?", (r["outbox_id"],))
                    sids[r["channel"]] = r["sid"]
                    sent_at = max(sent_at or 0, r.get("sent_at") or 0) or None
                else:
                    error = json.dumps(r.get("error"))
                    c.execute("UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?,"
                              " next_attempt_at = ?, leased_until = NULL WHERE id = ?",
                              ("failed" if r["outcome"] == "failed" else "pending", error,
                               r.get("next_attempt_at") or 0, r["outbox_id"]))
            states = ([r["outcome"] for r in group] if complete else
                      [s[0] for s in c.execute("SELECT state FROM outbox WHERE log_id = ?", (log_id,))])
            c.execute("UPDATE logs SET call_sid = COALESCE(?, call_sid), sms_sid = COALESCE(?, sms_sid),"
                      " call_provider = COALESCE(?, call_provider), sms_provider = COALESCE(?, sms_provider),"
                      " error = COALESCE(?, error), send_at = CASE WHEN ? IS NULL THEN send_at"
                      " ELSE MAX(COALESCE(send_at, 0), ?) END, status = ? WHERE log_id = ?",
                      (sids["call"], sids["sms"], via["call"], via["sms"], error, sent_at, sent_at,
                       row_status(states), log_id))

    async def claim_due(self, now: float, lease_until: float, limit: int) -> list[dict]:
        """Lease up to ``limit`` due outbox items; returns them joined with their
        log rows (``to`` and parsed ``params`` added)."""
        with self.tx() as c:
            ids = [r[0] for r in c.execute(
                "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
                " AND (leased_until IS NULL OR leased_until <= ?) ORDER BY next_attempt_at LIMIT ?",
                (now, now, limit))]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            c.execute(f"UPDATE outbox SET leased_until = ? WHERE id IN ({marks})", (lease_until, *ids))
            rows = c.execute(
                f"SELECT o.id AS outbox_id, o.channel, o.attempts, l.* FROM outbox o JOIN logs l USING (log_id)"
                f" WHERE o.id IN ({marks}) ORDER BY o.id", ids).fetchall()
        return [_item(r) for r in rows]

    async def release_leases(self) -> int:
        """At start nothing is in flight: every leased item is due again now."""
        with self.tx() as c:
            return c.execute("UPDATE outbox SET leased_until = NULL"
                             " WHERE state = 'pending' AND leased_until IS NOT NULL").rowcount

    async def release_items(self, outbox_ids: list[int]) -> None:
        """Hand outbox items to the worker now (the caller will not attempt them)."""
        marks = ",".join("?" * len(outbox_ids))
        with self.tx() as c:
            c.execute(f"UPDATE outbox SET leased_until = NULL WHERE id IN ({marks})", outbox_ids)

    async def next_due_at(self) -> float | None:
        return self.q("SELECT MIN(MAX(next_attempt_at, COALESCE(leased_until, 0))) FROM outbox"
                      " WHERE state = 'pending'").fetchone()[0]

    async def stats(self, now: float) -> dict:
        """The outbox at ``now`` (/healthz, /metrics): ``pending`` items, how many
        of them are ``due`` (their send time has come), and ``oldest_due_age``:
        seconds since the send time of the oldest due one (None when none is).

        An item counts as due from its log row's ``send_at`` (the time it was
        created, or the later time a deferred send or a storm summary is for), so
        a send deferred to tomorrow is not stuck today, and an item retried with
        backoff since its send time keeps its age.
        """
        pending, due, oldest = self.q(
            "SELECT COUNT(*), COUNT(CASE WHEN l.send_at <= ? THEN 1 END), MIN(CASE WHEN l.send_at <= ?"
            " THEN l.send_at END) FROM outbox o JOIN logs l ON l.log_id = o.log_id WHERE o.state = 'pending'",
            (now, now)).fetchone()
        return {"pending": pending, "due": due, "oldest_due_age": None if oldest is None else max(0.0, now - oldest)}
