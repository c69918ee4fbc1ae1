"""`alertd backup PATH`: a consistent copy taken while the daemon runs and writes."""
from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from alertd.store import Store
from alertd.store.sqlite.backup import BackupError, backup


def alertd(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ALERTD_CONFIG"}
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_backup_while_the_daemon_runs_and_writes(daemon, tmp_path):
    answered: list[float] = []
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            r = daemon.notify({"to": "+15551234567", "message": "during the backup", "action_type": "sms"})
            assert r.status_code == 200, r.text
            answered.append(time.monotonic())

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        daemon.wait_until(lambda: len(answered) >= 20, timeout=20, what="the first notifications")
        started = time.monotonic()
        done = alertd("backup", str(tmp_path / "copy.db"), "-c", str(daemon.config_path))
        finished = time.monotonic()
    finally:
        stop.set()
        thread.join(20)
    assert done.returncode == 0, done.stderr
    assert sum(started <= t <= finished for t in answered) > 0, "the daemon kept answering during the backup"

    copy_path = tmp_path / "copy.db"
    assert stat.S_IMODE(copy_path.stat().st_mode) == 0o600
    assert not (tmp_path / "copy.db-wal").exists()
    copy = sqlite3.connect(copy_path)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    rows = copy.execute("SELECT COUNT(*) FROM logs").fetchone()[0]
    live = len(daemon.daemon.store.logs.list(limit=100_000))
    assert 20 <= rows <= live
    # one moment of the database: every row copied has its outbox item, every item its row
    assert copy.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == rows
    orphans = "SELECT COUNT(*) FROM logs WHERE log_id NOT IN (SELECT log_id FROM outbox)"
    assert copy.execute(orphans).fetchone()[0] == 0
    keys = copy.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0]
    copy.close()
    assert keys == 1
    assert done.stdout == f"backup: {copy_path} ({copy_path.stat().st_size} bytes, schema v{_schema(copy_path)}," \
                          f" {rows} log rows, integrity ok)\n"
    # and the copy is a database alertd opens as it is
    restored = Store(copy_path)
    assert len(restored.logs.list(limit=100_000)) == rows
    restored.close()


def _schema(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_an_existing_copy_is_replaced_only_with_force(tmp_path):
    db = Store(tmp_path / "alertd.db")
    db.close()
    dest = tmp_path / "copy.db"
    dest.write_text("yesterday's")
    with pytest.raises(BackupError, match="copy.db exists; pass --force to replace it"):
        backup(tmp_path / "alertd.db", dest)
    assert dest.read_text() == "yesterday's"
    assert backup(tmp_path / "alertd.db", dest, force=True)["logs"] == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("setup, expected", [
    ("no database", "backup failed: no database at {tmp}/missing.db"),
    ("no folder", "backup failed: {tmp}/nowhere is not a folder"),
])
def test_backup_refuses_with_a_reason(tmp_path, setup, expected):
    config = tmp_path / "config.yaml"
    if setup == "no database":
        config.write_text("database: missing.db\n")
        dest = tmp_path / "copy.db"
    else:
        config.write_text("database: alertd.db\n")
        Store(tmp_path / "alertd.db").close()
        dest = tmp_path / "nowhere" / "copy.db"
    done = alertd("backup", str(dest), "-c", str(config))
    assert done.returncode == 1
    assert done.stderr.strip() == expected.format(tmp=tmp_path)
    assert not (tmp_path / "missing.db").exists()  # a backup never creates the database it copies
