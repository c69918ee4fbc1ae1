"""Queries of the dashboard: filtered log pages, a trigger's whole story, the charts."""
from __future__ import annotations

from ..queries import OUTCOME
from ..queries import filtered_logs as _filtered
from .connection import Row, Table


class Dashboard(Table):
    async def filtered_logs(self, *, limit: int, acknowledged: bool | None = None, since_id: int | None = None,
                      since: float | None = None, until: float | None = None,
                      **filters: str | None) -> list[Row]:
        """Log rows newest first; ``filters``: exact matches on FILTERS; ``since_id``: rows after it only;
        ``since``/``until``: created in [since, until)."""
        return self.q(*_filtered(limit=limit, acknowledged=acknowledged, since_id=since_id, since=since,
                                 until=until, **filters)).fetchall()

    async def trigger_story(self, trigger_id: int) -> tuple[Row | None, list[Row], list[Row]]:
        """(trigger, its log rows oldest first, its follow-ups: retries and escalation steps)."""
        trigger = self.q("SELECT * FROM triggers WHERE trigger_id = ?", (trigger_id,)).fetchone()
        rows = self.q("SELECT * FROM logs WHERE trigger_id = ? ORDER BY log_id", (trigger_id,)).fetchall()
        followups = self.q("SELECT * FROM followups WHERE trigger_id = ? ORDER BY due_at, id",
                           (trigger_id,)).fetchall()
        return trigger, rows, followups

    async def rules_last_fired(self) -> dict[str, float]:
        """rule id -> when it last sent (its newest trigger)."""
        return {r[0]: r[1] for r in self.q(
            "SELECT rule_id, MAX(created_at) FROM triggers WHERE rule_id IS NOT NULL GROUP BY rule_id")}

    async def outcome_counts(self, start: float, end: float) -> dict[str, int]:
        """Log rows created in [start, end) per outcome (acknowledged, sent, failed, held).
        Inbound calls (alertd/inbound) are in the log but are no notification."""
        return {r[0]: r[1] for r in self.q(
            f"SELECT {OUTCOME} AS outcome, COUNT(*) FROM logs WHERE created_at >= ? AND created_at < ?"
            " AND type != 'inbound' GROUP BY outcome", (start, end))}

    async def ack_delays(self, start: float, end: float) -> list[tuple[float, float]]:
        """(created_at, seconds to acknowledge) of the acknowledged triggers created in [start, end)."""
        # through logs_created: the triggers table has no index on its time
        return [(r[0], r[1]) for r in self.q(
            "SELECT created_at, acknowledged_at - created_at FROM triggers WHERE trigger_id IN"
            " (SELECT trigger_id FROM logs WHERE created_at >= ? AND created_at < ?)"
            " AND acknowledged_at IS NOT NULL AND created_at >= ? AND created_at < ? ORDER BY created_at",
            (start, end, start, end))]
