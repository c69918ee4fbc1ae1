"""The state of each (rule, dedup key): firing or not, since when, last notified and sent."""
from __future__ import annotations

from .connection import Row, Table


class RuleStates(Table):
    def get(self, rule_id: str, dedup_key: str) -> Row | None:
        return self.q("SELECT * FROM rule_state WHERE rule_id = ? AND dedup_key = ?", (rule_id, dedup_key)).fetchone()

    def put(self, rule_id: str, dedup_key: str, *, firing: bool, since: float | None, notified_at: float | None,
            last_sent_at: float | None, now: float) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO rule_state (rule_id, dedup_key, firing, since, notified_at, last_sent_at,"
                " last_evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule_id, dedup_key) DO UPDATE SET"
                " firing = excluded.firing, since = excluded.since, notified_at = excluded.notified_at,"
                " last_sent_at = excluded.last_sent_at, last_evaluated_at = excluded.last_evaluated_at",
                (rule_id, dedup_key, int(firing), since, notified_at, last_sent_at, now))

    def summaries(self) -> dict[str, dict]:
        """rule id -> {firing: any key firing, last_sent_at}."""
        out: dict[str, dict] = {}
        for r in self.q("SELECT rule_id, MAX(firing) AS firing, MAX(last_sent_at) AS last_sent_at"
                        " FROM rule_state GROUP BY rule_id"):
            out[r["rule_id"]] = {"firing": bool(r["firing"]), "last_sent_at": r["last_sent_at"]}
        return out
