"""The command line on PostgreSQL: db copy, cluster, backup; and the config that names it."""
from __future__ import annotations

import asyncio
import gc
import os
import re
import socket
import sqlite3
import warnings

import asyncpg
import pytest

from alertd import cli
from alertd import config as config_mod
from alertd.store import Store
from alertd.dispatch.notification import notification
from alertd.store.postgres import cluster, migrate
from alertd.store.postgres.copy import sqlite_tables
from conftest import sync
from test_cli import alertd, clean_env

NOW = 1_800_000_000.0


def filled_sqlite(path) -> None:
    """A SQLite database with at least one row in every table, most through the store's own API."""
    store = Store(path)
    sync(store.keys.create("ops", "ak_live_abcd", "hash-1", NOW))
    sync(store.templates.create("tpl_1", "disk", {"message": "Disk {{ pct }}%", "action_type": "call"}, NOW))
    trigger = {"created_at": NOW, "source": "api", "spec": {"escalate": [{"after": 300, "to": ["+15551230002"]}]}}
    rows = sync(store.logs.create_trigger(trigger, [notification("+15551230001", "both", "Disk full",
                                                                 voice="alice")], NOW + 30))
    sync(store.outbox.record_results([{"outbox_id": rows[0].items[0][0], "log_id": rows[0].log_id, "channel": "call",
                                       "outcome": "sent", "sid": "CA1", "sent_at": NOW}]))  # the sms stays pending
    sync(store.status.record(rows[0].log_id, "call", "ringing", NOW + 2))
    event_id = sync(store.events.record("webhook", "grafana", {"status": "firing"}, NOW))
    sync(store.rule_state.put("disk", "fp1", firing=True, since=NOW, notified_at=NOW, last_sent_at=NOW, now=NOW))
    sync(store.silences.add("sil_1", "rule_id", "disk", NOW, NOW + 3600, "maintenance", NOW))
    sync(store.overrides.add("primary", "alice", NOW, NOW + 3600, NOW))
    sync(store.users.add("admin", "scrypt$hash", NOW))
    sync(store.users.add_session("session-hash", 1, "csrf", NOW, NOW + 3600))
    sync(store.groups.add_event("disk", '["host1"]', False, {"host": "host1"}, event_id, NOW, 30))
    with store.tx() as c:  # a storm summary and what it folds
        c.execute("INSERT INTO summary_folds (summary_log_id, log_id, channel) VALUES (?, ?, 'call')",
                  (rows[0].log_id, rows[0].log_id))
    sync(store.followups.add_retry_once(1, rows[0].log_id, NOW + 60, NOW))
    sync(store.ping_keys.create("cron-box", "pk_abc", "hash-ping", NOW))
    sync(store.reach.add_feed("primary", "of_abcd", "hash-feed", NOW))
    with store.tx() as c:  # an inbound call and a shift notice
        c.execute("INSERT INTO inbound_calls (call_sid, number, caller, log_id, steps, status, created_at)"
                  " VALUES ('CA-in', '+15557654321', '+15559998888', ?, '[]', 'missed', ?)", (rows[0].log_id, NOW))
        c.execute("INSERT INTO shift_notices (rotation, contact, shift_start, trigger_id, created_at)"
                  " VALUES ('primary', 'alice', ?, 1, ?)", (NOW, NOW))
    with store.tx() as c:  # a heartbeat check with a ping and a flip
        c.execute("INSERT INTO heartbeats (rule_id, uuid, slug, status, down_at, created_at) VALUES"
                  " ('backup', 'u-1', 'backup', 'up', ?, ?)", (NOW + 3600, NOW))
        c.execute("INSERT INTO heartbeat_pings (rule_id, n, at, kind, method) VALUES ('backup', 1, ?, 'success', 'GET')",
                  (NOW,))
        c.execute("INSERT INTO heartbeat_flips (rule_id, at, old, new, owed) VALUES ('backup', ?, 'new', 'up', 0)",
                  (NOW,))
    store.close()


def rows_of(lite: sqlite3.Connection, table: str) -> list[tuple]:
    return [tuple(r) for r in lite.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]


def test_db_copy_moves_every_table_with_its_ids_into_postgresql(tmp_path, pg_url):
    source = tmp_path / "alertd.db"
    filled_sqlite(source)
    lite = sqlite3.connect(source)
    tables = sqlite_tables(lite)
    assert all(rows_of(lite, t) for t in tables), "the fixture leaves a table empty"

    done = alertd("db", "copy", "--from", str(source), "--to", pg_url)
    assert done.returncode == 0, done.stderr
    assert f"copied {sum(len(rows_of(lite, t)) for t in tables)} rows of {len(tables)} tables" in done.stdout

    async def check():
        conn = await asyncpg.connect(pg_url)
        try:
            for table in tables:
                columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
                copied = [tuple(r) for r in await conn.fetch(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2")]
                assert copied == rows_of(lite, table), table
            # ids go on after the copied ones
            new_id = await conn.fetchval("INSERT INTO api_keys (name, prefix, key_hash, created_at)"
                                         " VALUES ('new', 'p', 'hash-2', 0) RETURNING id")
            assert new_id == 2
        finally:
            await conn.close()
    asyncio.run(check())

    again = alertd("db", "copy", "--from", str(source), "--to", pg_url)
    assert again.returncode == 1
    assert "already has rows in" in again.stderr and "copy into an empty one" in again.stderr


def test_db_copy_keeps_one_retry_of_a_call_that_an_older_alertd_stored_twice(tmp_path, pg_url):
    source = tmp_path / "alertd.db"
    filled_sqlite(source)
    lite = sqlite3.connect(source)
    lite.execute("INSERT INTO followups (trigger_id, kind, log_id, due_at, state, created_at)"
                 " SELECT trigger_id, kind, log_id, due_at + 1, state, created_at FROM followups WHERE kind = 'retry'")
    lite.commit()
    retries = rows_of(lite, "followups")
    assert [r[2] for r in retries].count("retry") == 2
    done = alertd("db", "copy", "--from", str(source), "--to", pg_url)
    assert done.returncode == 0, done.stderr

    async def copied():
        conn = await asyncpg.connect(pg_url)
        try:
            return [tuple(r) for r in await conn.fetch("SELECT * FROM followups ORDER BY 1, 2")]
        finally:
            await conn.close()
    assert [tuple(r) for r in asyncio.run(copied())] == [r for r in retries if r != retries[-1]]


def test_db_copy_refuses_a_missing_source_and_a_target_that_is_not_postgresql(tmp_path, pg_url):
    missing = alertd("db", "copy", "--from", str(tmp_path / "nope.db"), "--to", pg_url)
    assert missing.returncode == 1 and "nope.db: no such SQLite database" in missing.stderr
    wrong = alertd("db", "copy", "--from", str(tmp_path / "nope.db"), "--to", str(tmp_path / "other.db"))
    assert wrong.returncode == 2 and "--to: a PostgreSQL URL" in wrong.stderr


def write_config(tmp_path, database: str, extra: str = "") -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {database}\nrules: rules\nprovider:\n  kind: simulator\n"
                    f"  numbers: ['+15557654321']\n{extra}")
    (tmp_path / "rules").mkdir(exist_ok=True)
    return str(path)


@pytest.mark.parametrize("args, code", [
    (["keys", "create", "--name", "ops"], 0), (["keys", "list"], 0), (["log"], 0), (["heartbeats"], 0),
    (["silence", "remove", "sil_nosuch"], 1),  # a refusal too
    (["providers", "test", "simulator", "--to", "5551230001"], 0),
], ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_a_command_closes_its_connections_before_it_returns(tmp_path, pg_migrated_url, args, code, capsys):
    """In-process (the tests', `alertd`'s own), a command's pool must not outlive its event loop:
    its connections were then left open on the server until the garbage collector found them."""
    assert cli.main([*args, "-c", write_config(tmp_path, pg_migrated_url)]) == code
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_cluster_lists_the_nodes_the_leader_and_each_ones_last_contact(tmp_path, pg_url):
    async def two_nodes():
        conn = await asyncpg.connect(pg_url)
        try:
            await migrate(conn)
            now = await conn.fetchval("SELECT extract(epoch from clock_timestamp())::float8")
            await cluster.heartbeat(conn, "web1-100", at=now - 30)
            await cluster.heartbeat(conn, "web2-200", at=now - 3)
            await cluster.heartbeat(conn, "old-300", at=now - 7200)
            await cluster.acquire(conn, "web2-200", 60)
        finally:
            await conn.close()
    asyncio.run(two_nodes())
    # the URL comes from the environment, as a password would
    config = write_config(tmp_path, "${ALERTD_DB_URL}")
    done = alertd("cluster", "-c", config, env=clean_env(ALERTD_DB_URL=pg_url))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["NODE", "LEADER", "LAST"]
    assert [line.split()[:2] for line in lines[1:-1]] == [["web2-200", "yes"], ["web1-100", "no"]]
    assert 29 <= float(lines[2].split()[2]) < 60
    # and how far this machine's clock is from the database's (the same machine here: in step)
    assert re.fullmatch(r"this machine's clock: 0\.\d{3} s (behind|ahead of) the database's", lines[-1])


def test_cluster_on_sqlite_says_there_is_one_node(tmp_path):
    done = alertd("cluster", "-c", write_config(tmp_path, "alertd.db"), env=clean_env())
    assert done.returncode == 0 and done.stdout.startswith("one node: the database is SQLite")


def test_backup_on_postgresql_says_to_use_pg_dump_and_never_shows_the_password(tmp_path):
    config = write_config(tmp_path, "postgresql://alertd:${PGPW}@127.0.0.1:5432/alertd")
    done = alertd("backup", str(tmp_path / "copy.db"), "-c", config, env=clean_env(PGPW="s3cret-pw"))
    assert done.returncode == 1
    assert "back it up with pg_dump" in done.stderr and "postgresql://alertd:***@127.0.0.1:5432/alertd" in done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert not (tmp_path / "copy.db").exists()


def test_config_errors_name_the_database_and_cluster_keys(tmp_path):
    config = write_config(tmp_path, "postgresql://alertd@db:notaport/alertd", "cluster:\n  lease: 1s\n")
    done = alertd("check", "-c", config, env=clean_env())
    assert done.returncode == 1
    assert f"{config}:1: database: not a valid PostgreSQL URL" in done.stdout
    assert f"{config}:7: cluster.lease: must be between 2s and 10m" in done.stdout


def test_cluster_node_id_defaults_to_host_name_and_process_id(tmp_path):
    cfg, _ = config_mod.load(write_config(tmp_path, "postgresql://alertd@db/alertd"))
    assert cfg.postgres and cfg.cluster.node_id == f"{socket.gethostname()}-{os.getpid()}"
    assert cfg.cluster.lease.total_seconds() == 10
    lite, _ = config_mod.load(write_config(tmp_path, "alertd.db"))
    assert not lite.postgres and lite.database == tmp_path / "alertd.db"
