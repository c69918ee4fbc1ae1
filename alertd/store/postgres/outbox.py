"""The durable outbox on PostgreSQL: shared by every node, each item leased to one.

Items are claimed with FOR UPDATE SKIP LOCKED (claims.py): two nodes never hold the
same item at once, and a dead node's items are due again when its lease runs out.
Item leases are on the database's clock (Database.db_clock), as the leader lease, the
node registry and the schedule ticks are: a node whose clock is off can neither take an
item another node holds nor keep one past its lease. Due times (a retry's backoff, a
deferred send) are the times the caller passes; a running daemon's clock follows the
database's (alertd/clock.py ``SyncedClock``), so they are on it too, and a node whose
own clock is off sends nothing early or late, its own items or another node's.
"""
from __future__ import annotations

import functools
import json
from typing import Iterable

from ..outcome import row_status
from .claims import claim_outbox
from .connection import Conn, Table


# The outcome of an attempt must read its outbox item by the primary key, whatever plan the
# connection has cached. The statement before this one joined unnest over arrays to the outbox:
# its generic plan, made while the outbox was small, hash-joined unnest's guessed 10 rows to a
# scan of the whole outbox, on every attempt after (0.6 ms a notify request after 3,000 sends,
# and more with every send).
@functools.lru_cache(maxsize=8)
def _items(n: int) -> str:
    """The outcomes of a log row's ``n`` attempts together (a row has one item per channel: n is 1 or
    2), as (id, state, last_error, next_attempt_at) for each. A VALUES list, not unnest over arrays:
    the planner knows its length even in a generic plan, so it reads each item by its key."""
    values = ", ".join(["(?::bigint, ?::text, ?::text, ?::float8)"] * n)
    return ("UPDATE outbox o SET state = v.state, attempts = o.attempts + 1, last_error = v.error,"
            " next_attempt_at = CASE WHEN v.state = 'sent' THEN o.next_attempt_at ELSE v.next END,"
            " leased_until = NULL, claimed_by = NULL"
            f" FROM (VALUES {values}) AS v(id, state, error, next) WHERE o.id = v.id")


# and the row: sids, the providers that carried them, the last error, when it really went out, its status
_ROW = ("UPDATE logs SET call_sid = COALESCE(?, call_sid), sms_sid = COALESCE(?, sms_sid),"
        " call_provider = COALESCE(?, call_provider), sms_provider = COALESCE(?, sms_provider),"
        " error = COALESCE(?, error), send_at = CASE WHEN ?::float8 IS NULL THEN send_at"
        " ELSE GREATEST(COALESCE(send_at, 0), ?::float8) END, status = ? WHERE log_id = ?")


class Outbox(Table):
    async def record_results(self, results: Iterable[dict], *, complete: bool = False) -> None:
        """Apply attempt outcomes in one transaction (alertd/store/sqlite/outbox.py says what each holds)."""
        async with self.tx() as c:
            await self.apply_results(c, results, complete=complete)

    @staticmethod
    async def apply_results(tx: Conn, results: Iterable[dict], *, complete: bool = False) -> None:
        """record_results inside the caller's transaction ``tx`` (a write of Store.batch)."""
        c = tx
        by_log: dict[int, list[dict]] = {}
        for r in results:
            by_log.setdefault(r["log_id"], []).append(r)
        for log_id, group in by_log.items():
            sids = {"call": None, "sms": None}
            via = {"call": None, "sms": None}  # the provider of each channel's attempt
            error = sent_at = None
            items: list[tuple] = []  # (id, state, last_error, next_attempt_at): _items' parameters, in order
            for r in group:
                via[r["channel"]] = r.get("provider") or via[r["channel"]]
                if r["outcome"] == "sent":
                    sids[r["channel"]] = r["sid"]
                    sent_at = max(sent_at or 0, r.get("sent_at") or 0) or None
                    item = (r["outbox_id"], "sent", None, None)
                else:
                    error = json.dumps(r.get("error"))
                    item = (r["outbox_id"], "failed" if r["outcome"] == "failed" else "pending", error,
                            float(r.get("next_attempt_at") or 0))
                items.append(item)
            params = [value for item in items for value in item]
            if complete:  # the row's status follows from the outcomes: one statement for items and row
                await c.execute(f"WITH items AS ({_items(len(items))} RETURNING o.id) {_ROW}", *params,
                                sids["call"], sids["sms"], via["call"], via["sms"], error, sent_at, sent_at,
                                row_status([item[1] for item in items]), log_id)
                continue
            states = [s[0] for s in await c.fetch(
                f"WITH items AS ({_items(len(items))} RETURNING o.state) SELECT state FROM items UNION ALL"
                " SELECT state FROM outbox WHERE log_id = ? AND NOT (id = ANY(?::bigint[]))", *params, log_id,
                [item[0] for item in items])]
            await c.execute(_ROW, sids["call"], sids["sms"], via["call"], via["sms"], error, sent_at, sent_at,
                            row_status(states), log_id)

    async def claim_due(self, now: float, lease_until: float, limit: int) -> list[dict]:
        """Lease up to ``limit`` due outbox items to this node; returns them joined with
        their log rows (``to`` and parsed ``params`` added)."""
        async with self.db.pool.acquire() as conn:
            claimed = await claim_outbox(conn, self.db.node_id, max(0.0, lease_until - now), limit,
                                         at=None if self.db.db_clock else now, due=now)
        if not claimed:
            return []
        rows = await self.fetch(
            "SELECT o.id AS outbox_id, o.channel, o.attempts, l.* FROM outbox o JOIN logs l USING (log_id)"
            " WHERE o.id = ANY(?::bigint[]) ORDER BY o.id", [r["outbox_id"] for r in claimed])
        return [{**dict(r), "to": r["to_number"], "params": json.loads(r["params"])} for r in rows]

    async def release_leases(self) -> int:
        """At start: this node holds nothing in flight, so what it held is due again now.
        (Other nodes' leases are theirs: they run out by themselves if those nodes died.)"""
        return await self.execute("UPDATE outbox SET leased_until = NULL, claimed_by = NULL"
                                  " WHERE state = 'pending' AND leased_until IS NOT NULL AND claimed_by = ?",
                                  self.db.node_id)

    async def release_items(self, outbox_ids: list[int]) -> None:
        """Hand outbox items to the worker now (the caller will not attempt them)."""
        await self.execute("UPDATE outbox SET leased_until = NULL, claimed_by = NULL WHERE id = ANY(?::bigint[])",
                           list(outbox_ids))

    async def next_due_at(self) -> float | None:
        return await self.fetchval("SELECT MIN(GREATEST(next_attempt_at, COALESCE(leased_until, 0))) FROM outbox"
                                   " WHERE state = 'pending'")

    async def stats(self, now: float) -> dict:
        """The outbox at ``now`` (/healthz, /metrics), as alertd/store/sqlite/outbox.py's."""
        pending, due, oldest = await self.fetchrow(
            "SELECT COUNT(*), COUNT(CASE WHEN l.send_at <= ? THEN 1 END), MIN(CASE WHEN l.send_at <= ?"
            " THEN l.send_at END) FROM outbox o JOIN logs l ON l.log_id = o.log_id WHERE o.state = 'pending'",
            now, now)
        return {"pending": pending, "due": due, "oldest_due_age": None if oldest is None else max(0.0, now - oldest)}
