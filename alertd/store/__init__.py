"""The database: every SQL statement alertd runs lives in this package.

SQLite in WAL mode with synchronous=NORMAL: a committed transaction survives a
crash or kill -9 of the daemon (not a power cut before the next checkpoint;
set ``PRAGMA synchronous=FULL`` semantics with ``database_sync: full`` if that
matters more than latency). Every statement is parameterised. The daemon uses
one connection from its event loop thread: each statement takes microseconds,
which is cheaper than handing it to a thread.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterable

from .batch import GroupCommit
from .schema import MIGRATIONS


class StoreError(Exception):
    """The database could not be read or written (disk full, locked past the timeout)."""


class SchemaTooNew(StoreError):
    pass


def private_file(path: Path) -> None:
    """Create ``path`` 0600 (and the folders leading to it 0700) unless it exists, whatever the umask:
    the database holds phone numbers, messages and password hashes. SQLite gives the -wal and -shm
    files the database file's mode. Folders and files that exist are left as they are."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def connect(path: str | Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    path = Path(path)
    if str(path) != ":memory:":
        private_file(path)
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the schema version now in force."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise SchemaTooNew(f"database schema v{version} is newer than this alertd (v{len(MIGRATIONS)}); upgrade alertd")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


class _Tx:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                self.conn.execute("ROLLBACK")
                raise
        self.conn.execute("ROLLBACK")


def _status_sql() -> str:
    # a log row's status follows from its outbox items: anything still pending
    # means queued; every channel failed means failed; otherwise initiated
    return """
        UPDATE logs SET status = CASE
            WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.log_id = logs.log_id AND o.state = 'pending') THEN 'queued'
            WHEN NOT EXISTS (SELECT 1 FROM outbox o WHERE o.log_id = logs.log_id AND o.state != 'failed') THEN 'failed'
            ELSE 'initiated' END
        WHERE log_id = ?"""


class Store:
    """All reads and writes. Methods raise StoreError when SQLite fails."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = connect(self.path)
        migrate(self.conn)
        self.group = GroupCommit(self.conn)  # the hot path's writes (alertd/dispatch)

    def close(self) -> None:
        self.conn.close()

    def tx(self) -> _Tx:
        return _Tx(self.conn)

    def ping(self) -> bool:
        try:
            return self.conn.execute("SELECT 1").fetchone()[0] == 1
        except sqlite3.Error:
            return False

    # --- API keys ---------------------------------------------------------
    def create_key(self, name: str, prefix: str, key_hash: str, now: float, scopes: str = "admin") -> int:
        """``scopes``: space-separated, as alertd.api.scopes.parse returns them."""
        with self.tx() as c:
            return c.execute("INSERT INTO api_keys (name, prefix, key_hash, created_at, scopes) VALUES (?, ?, ?, ?, ?)",
                             (name, prefix, key_hash, now, scopes)).lastrowid

    def find_key(self, key_hash: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT id, name, key_hash, revoked_at, scopes FROM api_keys WHERE key_hash = ?",
                                 (key_hash,)).fetchone()

    def list_keys(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT id, name, prefix, created_at, last_used_at, revoked_at, scopes"
                                 " FROM api_keys ORDER BY id").fetchall()

    def revoke_key(self, key_id: int, now: float) -> bool:
        with self.tx() as c:
            return c.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                             (now, key_id)).rowcount == 1

    def touch_key(self, key_id: int, now: float) -> None:
        self.conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key_id))

    # --- templates --------------------------------------------------------
    def create_template(self, template_id: str, name: str, fields: dict, now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO templates (id, name, fields, created_at) VALUES (?, ?, ?, ?)",
                      (template_id, name, json.dumps(fields), now))

    def get_template(self, template_id: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM templates WHERE id = ?", (template_id,)).fetchone()
        return _template(row) if row else None

    def list_templates(self) -> list[dict]:
        return [_template(r) for r in self.conn.execute("SELECT * FROM templates ORDER BY created_at, id")]

    def delete_template(self, template_id: str) -> bool:
        with self.tx() as c:
            return c.execute("DELETE FROM templates WHERE id = ?", (template_id,)).rowcount == 1

    # --- triggers, log rows and their outbox items -------------------------
    def create_trigger(self, trigger: dict, rows: list[dict], lease_until: float, *,
                       prepare: Callable[[sqlite3.Connection], None] | None = None) -> list[dict]:
        """Write one trigger, its log rows and an outbox item per channel, atomically.

        ``rows``: dicts with to, type, message, template_id, params (dict), and
        optionally status (a row created already 'failed', 'silenced' or
        'throttled' gets no outbox items), silence_id, summary_log_id and
        ``channels`` (the channels to send when not all of its type's).
        ``prepare(conn)`` runs first inside the same transaction (alertd/storm.py
        writes its summaries there, so a fold and its throttled rows commit together).
        Returns the rows with log_id and ``items`` [(outbox_id, channel)] added.
        The items are leased until ``lease_until`` so the background worker leaves
        them to the caller's first attempt.
        """
        with self.tx() as c:
            return self.insert_trigger(c, trigger, rows, lease_until, prepare=prepare)

    @staticmethod
    def insert_trigger(c: sqlite3.Connection, trigger: dict, rows: list[dict], lease_until: float, *,
                       prepare: Callable[[sqlite3.Connection], None] | None = None) -> list[dict]:
        """Store.create_trigger inside the caller's transaction (alertd/store/batch.py)."""
        now = trigger.get("now") or trigger["created_at"]
        if prepare is not None:
            prepare(c)
        trigger_id = trigger.get("trigger_id")
        if trigger_id is None:
            spec = trigger.get("spec") or {}
            trigger_id = trigger["trigger_id"] = c.execute(
                "INSERT INTO triggers (created_at, source, rule_id, event_id, api_key_id, spec, group_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, trigger.get("source"), trigger.get("rule_id"), trigger.get("event_id"),
                 trigger.get("api_key_id"), json.dumps(spec) if spec else None,
                 trigger.get("group_id"))).lastrowid
            # escalation steps are stored with the trigger: they survive a restart, kill -9 included
            for k, step in enumerate(spec.get("escalate") or (), start=1):
                c.execute("INSERT INTO followups (trigger_id, kind, step, due_at, state, created_at)"
                          " VALUES (?, 'escalate', ?, ?, 'pending', ?)",
                          (trigger_id, k, now + step["after"], now))
        for row in rows:
            status = row.get("status", "queued")
            row["log_id"] = c.execute(
                "INSERT INTO logs (trigger_id, created_at, source, rule_id, event_id, to_number, type,"
                " template_id, message, params, status, error, silence_id, attempt, step, send_at,"
                " summary_log_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (trigger_id, now, trigger.get("source"), trigger.get("rule_id"), trigger.get("event_id"),
                 row["to"], row["type"], row.get("template_id"), row.get("message"),
                 json.dumps(row.get("params") or {}), status,
                 json.dumps(row["error"]) if row.get("error") else None, row.get("silence_id"),
                 row.get("attempt", 1), row.get("step", 0), max(now, row.get("send_at") or now),
                 row.get("summary_log_id"))).lastrowid
            row["trigger_id"] = trigger_id
            row["items"] = []
            for summary_id, channel in row.get("folds") or ():  # alertd/storm.py: the summaries it is in
                c.execute("INSERT OR IGNORE INTO summary_folds (summary_log_id, log_id, channel) VALUES (?, ?, ?)",
                          (summary_id, row["log_id"], channel))
            if status not in ("queued", "scheduled"):
                continue
            for channel in row.get("channels") or (("call", "sms") if row["type"] == "both" else (row["type"],)):
                oid = c.execute(
                    "INSERT INTO outbox (log_id, channel, state, next_attempt_at, leased_until, created_at)"
                    " VALUES (?, ?, 'pending', ?, ?, ?)",
                    (row["log_id"], channel, row.get("send_at") or now,
                     None if status == "scheduled" else lease_until, now)).lastrowid
                row["items"].append((oid, channel))
        return rows

    def record_results(self, results: Iterable[dict], *, complete: bool = False) -> None:
        """Apply attempt outcomes in one transaction.

        Each result: outbox_id, log_id, channel, outcome ('sent' | 'failed' |
        'retry'), sid, sent_at (for sent: the row's send_at becomes when it
        really went out, which per-number limits count), error (dict),
        next_attempt_at (for retry). ``complete``:
        the results hold every outbox item of each log row they touch (the API's
        first attempt), so the row's status follows from them without a query.
        """
        with self.tx() as c:
            self.apply_results(c, results, complete=complete)

    @staticmethod
    def apply_results(c: sqlite3.Connection, results: Iterable[dict], *, complete: bool = False) -> None:
        """Store.record_results inside the caller's transaction (alertd/store/batch.py)."""
        by_log: dict[int, list[dict]] = {}
        for r in results:
            by_log.setdefault(r["log_id"], []).append(r)
        status_sql = _status_sql()
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
            status = None
            if complete:
                outcomes = [r["outcome"] for r in group]
                status = ("queued" if "retry" in outcomes else
                          "failed" if all(o == "failed" for o in outcomes) else "initiated")
            c.execute("UPDATE logs SET call_sid = COALESCE(?, call_sid), sms_sid = COALESCE(?, sms_sid),"
                      " call_provider = COALESCE(?, call_provider), sms_provider = COALESCE(?, sms_provider),"
                      " error = COALESCE(?, error), send_at = CASE WHEN ? IS NULL THEN send_at"
                      " ELSE MAX(COALESCE(send_at, 0), ?) END, status = COALESCE(?, status) WHERE log_id = ?",
                      (sids["call"], sids["sms"], via["call"], via["sms"], error, sent_at, sent_at, status, log_id))
            if status is None:
                c.execute(status_sql, (log_id,))

    def claim_due(self, now: float, lease_until: float, limit: int) -> list[dict]:
        """Lease up to ``limit`` due outbox items; returns them joined with their
        log rows (``to`` and parsed ``params`` as Store.create_trigger takes them)."""
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
        return [self.row_dict(r) for r in rows]

    @staticmethod
    def row_dict(row: sqlite3.Row) -> dict:
        """A log row as Store.create_trigger takes it: ``to`` and parsed ``params``."""
        return {**dict(row), "to": row["to_number"], "params": json.loads(row["params"])}

    def release_leases(self) -> int:
        """At start nothing is in flight: every leased item is due again now."""
        with self.tx() as c:
            return c.execute("UPDATE outbox SET leased_until = NULL"
                             " WHERE state = 'pending' AND leased_until IS NOT NULL").rowcount

    def release_items(self, outbox_ids: list[int]) -> None:
        """Hand outbox items to the worker now (the caller will not attempt them)."""
        marks = ",".join("?" * len(outbox_ids))
        with self.tx() as c:
            c.execute(f"UPDATE outbox SET leased_until = NULL WHERE id IN ({marks})", outbox_ids)

    def next_due_at(self) -> float | None:
        row = self.conn.execute("SELECT MIN(MAX(next_attempt_at, COALESCE(leased_until, 0))) FROM outbox"
                                " WHERE state = 'pending'").fetchone()
        return row[0]

    def outbox_stats(self, now: float) -> tuple[int, float | None]:
        """(pending items, age in seconds of the oldest)."""
        row = self.conn.execute("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending'").fetchone()
        return row[0], (now - row[1]) if row[1] is not None else None

    # --- the trigger log ----------------------------------------------------
    def get_log(self, log_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM logs WHERE log_id = ?", (log_id,)).fetchone()

    def list_logs(self, *, limit: int = 50, source: str | None = None, since: float | None = None,
                  rule_id: str | None = None) -> list[sqlite3.Row]:
        where, args = [], []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if rule_id is not None:
            where.append("rule_id = ?")
            args.append(rule_id)
        if since is not None:
            where.append("created_at >= ?")
            args.append(since)
        sql = "SELECT * FROM logs" + (" WHERE " + " AND ".join(where) if where else "")
        return self.conn.execute(sql + " ORDER BY log_id DESC LIMIT ?", (*args, limit)).fetchall()

    def acknowledge(self, log_id: int, now: float, by: str | None = None) -> int | None:
        """Acknowledge the whole trigger of ``log_id``: every row of it shows who
        and when (the first acknowledgement's), and every pending retry,
        escalation step and unsent delivery of it is cancelled. Returns the
        trigger id, or None when the log id is unknown.

        A storm summary (alertd/storm.py) stands for the triggers folded into
        it: acknowledging it acknowledges them too."""
        with self.tx() as c:
            row = c.execute("SELECT trigger_id FROM logs WHERE log_id = ?", (log_id,)).fetchone()
            if row is None:
                return None
            tid = row["trigger_id"]
            folded = [r[0] for r in c.execute(
                "SELECT DISTINCT f.trigger_id FROM logs s JOIN summary_folds k ON k.summary_log_id = s.log_id"
                " JOIN logs f ON f.log_id = k.log_id WHERE s.trigger_id = ? AND f.trigger_id != ?", (tid, tid))]
            for t in (tid, *folded):
                self._acknowledge_trigger(c, t, now, by)
            return tid

    @staticmethod
    def _acknowledge_trigger(c: sqlite3.Connection, tid: int, now: float, by: str | None) -> None:
        c.execute("UPDATE triggers SET acknowledged_at = COALESCE(acknowledged_at, ?),"
                  " acknowledged_by = COALESCE(acknowledged_by, ?) WHERE trigger_id = ?", (now, by, tid))
        first = c.execute("SELECT acknowledged_at, acknowledged_by FROM triggers WHERE trigger_id = ?",
                          (tid,)).fetchone()
        c.execute("UPDATE logs SET acknowledged_at = ?, acknowledged_by = ? WHERE trigger_id = ?",
                  (first["acknowledged_at"], first["acknowledged_by"], tid))
        c.execute("UPDATE followups SET state = 'cancelled', done_at = ? WHERE trigger_id = ? AND state = 'pending'",
                  (now, tid))
        cancelled = [r[0] for r in c.execute(
            "UPDATE outbox SET state = 'cancelled', leased_until = NULL WHERE state = 'pending'"
            " AND leased_until IS NULL AND log_id IN (SELECT log_id FROM logs WHERE trigger_id = ?)"
            " RETURNING log_id", (tid,))]
        for lid in set(cancelled):
            c.execute("UPDATE logs SET status = 'cancelled' WHERE log_id = ? AND status IN ('queued', 'scheduled')",
                      (lid,))

    def trigger(self, trigger_id: int) -> dict | None:
        row = self.conn.execute("SELECT * FROM triggers WHERE trigger_id = ?", (trigger_id,)).fetchone()
        if row is None:
            return None
        return {**dict(row), "spec": json.loads(row["spec"]) if row["spec"] else {}}

    def set_answered_by(self, log_id: int, answered_by: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE logs SET answered_by = ? WHERE log_id = ?", (answered_by, log_id))

    def add_followup(self, trigger_id: int, kind: str, due_at: float, now: float, *, log_id: int | None = None,
                     step: int | None = None) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO followups (trigger_id, kind, log_id, step, due_at, state, created_at)"
                             " VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                             (trigger_id, kind, log_id, step, due_at, now)).lastrowid

    def add_retry_once(self, trigger_id: int, log_id: int, due_at: float, now: float) -> bool:
        """A retry of the call ``log_id``, unless it already has one; True when added. Each
        unanswered call is placed again at most once, however many final callbacks it gets."""
        with self.tx() as c:
            return c.execute("INSERT INTO followups (trigger_id, kind, log_id, due_at, state, created_at)"
                             " SELECT ?, 'retry', ?, ?, 'pending', ? WHERE NOT EXISTS (SELECT 1 FROM followups"
                             " WHERE trigger_id = ? AND kind = 'retry' AND log_id = ?)",
                             (trigger_id, log_id, due_at, now, trigger_id, log_id)).rowcount == 1

    def claim_followups(self, now: float, limit: int = 100) -> list[sqlite3.Row]:
        """Due follow-ups, marked done in the same transaction: each runs once,
        also when the daemon dies right after (at-most-once beats a double call)."""
        with self.tx() as c:
            rows = c.execute("SELECT * FROM followups WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?",
                             (now, limit)).fetchall()
            if rows:
                marks = ",".join("?" * len(rows))
                c.execute(f"UPDATE followups SET state = 'done', done_at = ? WHERE id IN ({marks})",
                          (now, *[r["id"] for r in rows]))
            return rows

    def next_followup_at(self) -> float | None:
        return self.conn.execute("SELECT MIN(due_at) FROM followups WHERE state = 'pending'").fetchone()[0]

    def followups(self, trigger_id: int) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM followups WHERE trigger_id = ? ORDER BY id", (trigger_id,)).fetchall()

    def latest_open_trigger_for(self, number: str, since: float) -> sqlite3.Row | None:
        """The most recent unacknowledged trigger that notified ``number`` since ``since``."""
        return self.conn.execute(
            "SELECT l.log_id, l.trigger_id FROM logs l JOIN triggers t USING (trigger_id)"
            " WHERE l.to_number = ? AND l.created_at >= ? AND t.acknowledged_at IS NULL"
            " AND (l.call_sid IS NOT NULL OR l.sms_sid IS NOT NULL)"
            " ORDER BY l.created_at DESC, l.log_id DESC LIMIT 1", (number, since)).fetchone()

    # --- the rules engine ----------------------------------------------------
    def record_event(self, kind: str, name: str, payload: Any, now: float) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO events (received_at, kind, name, payload) VALUES (?, ?, ?, ?)",
                             (now, kind, name, json.dumps(payload, default=str))).lastrowid

    def set_event_fired(self, event_id: int, fired: list[str]) -> None:
        with self.tx() as c:
            c.execute("UPDATE events SET fired = ? WHERE event_id = ?", (json.dumps(fired), event_id))

    def get_event(self, event_id: int) -> dict | None:
        row = self.conn.execute("SELECT * FROM events WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        return {**dict(row), "payload": json.loads(row["payload"]),
                "fired": json.loads(row["fired"]) if row["fired"] else []}

    def get_rule_state(self, rule_id: str, dedup_key: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM rule_state WHERE rule_id = ? AND dedup_key = ?",
                                 (rule_id, dedup_key)).fetchone()

    def put_rule_state(self, rule_id: str, dedup_key: str, *, firing: bool, since: float | None,
                       notified_at: float | None, last_sent_at: float | None, now: float) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO rule_state (rule_id, dedup_key, firing, since, notified_at, last_sent_at,"
                " last_evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule_id, dedup_key) DO UPDATE SET"
                " firing = excluded.firing, since = excluded.since, notified_at = excluded.notified_at,"
                " last_sent_at = excluded.last_sent_at, last_evaluated_at = excluded.last_evaluated_at",
                (rule_id, dedup_key, int(firing), since, notified_at, last_sent_at, now))

    def rule_summaries(self) -> dict[str, dict]:
        """rule id -> {firing: any key firing, last_sent_at}."""
        out: dict[str, dict] = {}
        for r in self.conn.execute("SELECT rule_id, MAX(firing) AS firing, MAX(last_sent_at) AS last_sent_at"
                                   " FROM rule_state GROUP BY rule_id"):
            out[r["rule_id"]] = {"firing": bool(r["firing"]), "last_sent_at": r["last_sent_at"]}
        return out


def _template(row: sqlite3.Row) -> dict:
    return {"template_id": row["id"], "name": row["name"], **json.loads(row["fields"]),
            "created_at": row["created_at"]}


def row_params(row: sqlite3.Row) -> dict[str, Any]:
    return json.loads(row["params"])
