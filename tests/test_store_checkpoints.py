"""SQLite's WAL checkpoints (a copy of pages and two fsyncs) run on a thread of their own
once the store is opened, never inside a commit on the daemon's event loop."""
from __future__ import annotations

import time

from alertd.store import Store
from conftest import sync


def wait_for(condition, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def write_rows(store: Store, n: int) -> None:
    for i in range(n):
        sync(store.keys.create(f"key {i}", f"ak_live_{i:08d}", f"{i:064d}" + "x" * 500, 1.0))


def test_the_loop_connection_never_checkpoints_and_the_thread_does(tmp_path):
    db = tmp_path / "alertd.db"
    store = Store(db)
    store.db.checkpointer.every = 0.02  # look often: the test waits on the outcome, not on time
    try:
        sync(store.open())
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        size = db.stat().st_size
        write_rows(store, 400)  # ~250 KB of pages: in the -wal until a checkpoint copies them
        # only a checkpoint writes pages into the database file; the loop's connection has
        # them off, so this is the thread's work
        assert wait_for(lambda: db.stat().st_size > size + 100_000), (size, db.stat().st_size)
        # the file grows while the checkpoint copies pages; it is counted once it returns
        assert wait_for(lambda: store.db.checkpointer.checkpoints >= 1)
    finally:
        store.close()
    assert store.db.checkpointer._thread is None  # close() stopped it


def test_without_open_a_store_keeps_sqlites_own_checkpoints(tmp_path):
    """CLI commands and tools that never open the store as a daemon does keep the default."""
    store = Store(tmp_path / "alertd.db")
    try:
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        write_rows(store, 10)
        assert store.db.checkpointer._thread is None
    finally:
        store.close()


def test_a_stopped_daemons_store_stops_checkpointing_and_keeps_its_rows(tmp_path):
    db = tmp_path / "alertd.db"
    store = Store(db)
    store.db.checkpointer.every = 0.02
    try:
        sync(store.open())
        write_rows(store, 50)
        sync(store.disconnect())
        assert store.db.checkpointer._thread is None
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert store.conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 50
    finally:
        store.close()
    reopened = Store(db)
    try:
        assert reopened.conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 50
    finally:
        reopened.close()
