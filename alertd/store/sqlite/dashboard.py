"""Queries of the dashboard: filtered log pages, a trigger's whole story, the charts."""
from __future__ import annotations

from .connection import Row, Table

FILTERS = ("source", "rule_id", "to_number", "status")

# what became of a notification, for the charts (alertd/ui/glance.py); first match wins
OUTCOME = """CASE
    WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
    WHEN status IN ('silenced', 'throttled', 'cancelled') THEN 'held'
    WHEN status = 'failed' OR call_status IN ('failed', 'busy', 'no-answer', 'canceled')
         OR sms_status IN ('failed', 'undelivered') THEN 'failed'
    ELSE 'sent' END"""


class Dashboard(Table):
    def filtered_logs(self, *, limit: int, acknowledged: bool | None = None, since_id: int | None = None,
                      since: float | None = None, until: float | None = None,
                      **filters: str | None) -> list[Row]:
        """Log rows newest first; ``filters``: exact matches on FILTERS; ``since_id``: rows after it only;
        ``since``/``until``: created in [since, until)."""
        where, args = [], []
        for op, value in ((">=", since), ("<", until)):
            if value is not None:
                where.append(f"created_at {op} ?")
                args.append(value)
        for column in FILTERS:
            if filters.get(column):
                where.append(f"{column} = ?")
                args.append(filters[column])
        if acknowledged is not None:
            where.append("acknowledged_at IS NOT NULL" if acknowledged else "acknowledged_at IS NULL")
        if since_id is not None:
            where.append("log_id > ?")
            args.append(since_id)
        sql = "SELECT * FROM logs" + (" WHERE " + " AND ".join(where) if where else "")
        return self.q(sql + " ORDER BY log_id DESC LIMIT ?", (*args, limit)).fetchall()

    def trigger_story(self, trigger_id: int) -> tuple[Row | None, list[Row], list[Row]]:
        """(trigger, its log rows oldest first, its follow-ups: retries and escalation steps)."""
        trigger = self.q("SELECT * FROM triggers WHERE trigger_id = ?", (trigger_id,)).fetchone()
        rows = self.q("SELECT * FROM logs WHERE trigger_id = ? ORDER BY log_id", (trigger_id,)).fetchall()
        followups = self.q("SELECT * FROM followups WHERE trigger_id = ? ORDER BY due_at, id",
                           (trigger_id,)).fetchall()
        return trigger, rows, followups

    def rules_last_fired(self) -> dict[str, float]:
        """rule id -> when it last sent (its newest trigger)."""
        return {r[0]: r[1] for r in self.q(
            "SELECT rule_id, MAX(created_at) FROM triggers WHERE rule_id IS NOT NULL GROUP BY rule_id")}

    def outcome_counts(self, start: float, end: float) -> dict[str, int]:
        """Log rows created in [start, end) per outcome (acknowledged, sent, failed, held).
        Inbound calls (alertd/inbound) are in the log but are no notification."""
        return {r[0]: r[1] for r in self.q(
            f"SELECT {OUTCOME} AS outcome, COUNT(*) FROM logs WHERE created_at >= ? AND created_at < ?"
            " AND type != 'inbound' GROUP BY outcome", (start, end))}

    def ack_delays(self, start: float, end: float) -> list[tuple[float, float]]:
        """(created_at, seconds to acknowledge) of the acknowledged triggers created in [start, end)."""
        # through logs_created: the triggers table has no index on its time
        return [(r[0], r[1]) for r in self.q(
            "SELECT created_at, acknowledged_at - created_at FROM triggers WHERE trigger_id IN"
            " (SELECT trigger_id FROM logs WHERE created_at >= ? AND created_at < ?)"
            " AND acknowledged_at IS NOT NULL AND created_at >= ? AND created_at < ? ORDER BY created_at",
            (start, end, start, end))]
