"""The database, behind one object: ``Store``.

Callers reach every table group through one attribute of the store and call
its methods: ``store.logs.get(log_id)``, ``store.outbox.claim_due(...)``,
``store.silences.active(now)``. Nothing outside this package sees SQL, a
connection or a driver's exception: every method raises ``StoreError``
(``StoreUnavailable`` when the database cannot be reached: disk full, locked,
read-only), and rows come back as mappings (``row["log_id"]``).

The attributes (one module each in the backend):
    keys, templates             API keys, message templates
    logs                        triggers and their log rows; acknowledgement
    outbox                      the durable outbox: items, leases, attempt results
    followups                   retries of unanswered calls, escalation steps
    events, rule_state, groups  the rules engine's events, states and rule groups
    silences, overrides         silences; on-call overrides
    reach                       inbound calls, calendar feed tokens, shift notices sent
    storm                       per-number limits: counted sends and summaries
    status                      every status callback received
    retention                   pruning old history in small batches
    users, dashboard            dashboard logins and sessions; its queries
    heartbeats, ping_keys       heartbeat checks, their pings and flips; keys for /ping/KEY/SLUG
    batch                       group commit: ``await store.batch.run(write, *args)``
                                runs ``write(tx, *args)`` in a transaction shared
                                with the concurrent writes of the same moment;
                                methods whose first parameter is ``tx`` join it

SQLite (alertd/store/sqlite/) is the one backend today. A second one is a
sibling package with the same classes and attributes; ``open_store`` picks by
the ``database`` setting (docs/architecture.md, "A second database").
"""
from __future__ import annotations

from pathlib import Path

from .errors import SchemaTooNew, StoreError, StoreUnavailable
from .outcome import row_status
from .sqlite import SQLiteStore

Store = SQLiteStore

__all__ = ["Store", "StoreError", "StoreUnavailable", "SchemaTooNew", "open_store", "row_status"]


def open_store(database: str | Path, node_id: str = "", *, db_clock: bool = True) -> Store:
    """The store for the config's ``database``: a ``postgresql://`` URL is PostgreSQL
    (``node_id`` names this node's claims there; ``db_clock``: outbox leases on the
    database's clock, False only for a daemon on a test's clock), anything else a SQLite
    file. Call ``await store.open()`` before using it (it connects and migrates
    PostgreSQL; SQLite is open already)."""
    if isinstance(database, str) and database.startswith(("postgresql://", "postgres://")):
        from .postgres.store import PostgresStore  # here: only a PostgreSQL install loads its driver
        return PostgresStore.at(database, node_id, db_clock=db_clock)
    return SQLiteStore(database)
