"""Retention on PostgreSQL: the SQL that prunes old history, one small transaction at a
time (what is kept, and why, as alertd/store/sqlite/retention.py). On several nodes only
the leader prunes."""
from __future__ import annotations

from ..queries import BATCH
from ..queries import KEEP as _KEEP
from .connection import Table



class Retention(Table):
    async def prune_logs(self, cutoff: float, after: tuple[float, int] = (float("-inf"), 0),
                         limit: int = BATCH) -> tuple[dict[str, int], tuple[float, int] | None]:
        """Delete up to ``limit`` log rows created before ``cutoff`` with their outbox items,
        status callbacks and (once no row of theirs is left) triggers and follow-ups.
        Returns (counts, the next (created_at, log_id) cursor, or None when done)."""
        counts = {"logs": 0, "outbox": 0, "callbacks": 0, "triggers": 0, "followups": 0, "kept": 0}
        async with self.tx() as c:
            rows = await c.fetch(
                f"SELECT l.log_id, l.trigger_id, l.created_at, ({_KEEP}) AS keep FROM logs l"
                " WHERE l.created_at < ? AND (l.created_at, l.log_id) > (?::float8, ?::bigint)"
                " ORDER BY l.created_at, l.log_id LIMIT ?", cutoff, after[0], after[1], limit)
            if not rows:
                return counts, None
            ids = [r["log_id"] for r in rows if not r["keep"]]
            counts["kept"] = len(rows) - len(ids)
            if ids:
                counts["outbox"] = await c.execute(
                    "DELETE FROM outbox WHERE log_id = ANY(?::bigint[]) AND state != 'pending'", ids)
                counts["callbacks"] = await c.execute("DELETE FROM status_callbacks WHERE log_id = ANY(?::bigint[])",
                                                      ids)
                await c.execute("DELETE FROM summary_folds WHERE log_id = ANY(?::bigint[])"
                                " OR summary_log_id = ANY(?::bigint[])", ids, ids)
                counts["logs"] = await c.execute("DELETE FROM logs WHERE log_id = ANY(?::bigint[])", ids)
                tids = sorted({r["trigger_id"] for r in rows if not r["keep"]})
                gone = [r[0] for r in await c.fetch(
                    "DELETE FROM triggers WHERE trigger_id = ANY(?::bigint[])"
                    " AND NOT EXISTS (SELECT 1 FROM logs l WHERE l.trigger_id = triggers.trigger_id)"
                    " AND NOT EXISTS (SELECT 1 FROM followups f WHERE f.trigger_id = triggers.trigger_id"
                    " AND f.state = 'pending') RETURNING trigger_id", tids)]
                counts["triggers"] = len(gone)
                if gone:
                    counts["followups"] = await c.execute("DELETE FROM followups WHERE trigger_id = ANY(?::bigint[])",
                                                          gone)
        last = rows[-1]
        return counts, ((last["created_at"], last["log_id"]) if len(rows) == limit else None)

    async def prune_events(self, cutoff: float, limit: int = BATCH) -> int:
        """Delete up to ``limit`` events received before ``cutoff``, oldest first; returns how many."""
        return await self.execute("DELETE FROM events WHERE event_id IN (SELECT event_id FROM events"
                                  " WHERE received_at < ? ORDER BY received_at LIMIT ?)", cutoff, limit)

    async def prune_groups(self, cutoff: float, limit: int = BATCH) -> int:
        """Delete up to ``limit`` rule groups sent before ``cutoff``, with any events left of them."""
        async with self.tx() as c:
            ids = [r[0] for r in await c.fetch("SELECT group_id FROM rule_groups WHERE state = 'sent' AND done_at < ?"
                                               " ORDER BY done_at LIMIT ?", cutoff, limit)]
            if not ids:
                return 0
            await c.execute("DELETE FROM rule_group_events WHERE group_id = ANY(?::bigint[])", ids)
            return await c.execute("DELETE FROM rule_groups WHERE group_id = ANY(?::bigint[])", ids)
