"""WAL checkpoints from the checkpointer's own connection (alertd/store/checkpoint.py):
they copy what the daemon committed into the database file without the daemon's
connection doing it, and the daemon's writes go on while the thread runs."""
import asyncio
import sqlite3

import pytest

from alertd.store import Store
from alertd.store.checkpoint import Checkpointer


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "alertd.db")
    s.conn.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies, so the test sees its work
    s.conn.execute("CREATE TABLE t (v TEXT NOT NULL)")
    yield s
    s.close()


def insert(c, value):
    return c.execute("INSERT INTO t (v) VALUES (?)", (value,)).lastrowid


def write(store, n: int) -> None:
    async def go():
        for i in range(n):
            await store.group.run(insert, f"v{i}" * 50)
    asyncio.run(go())


def test_a_checkpoint_from_its_own_connection_copies_every_committed_frame(store):
    write(store, 200)
    checkpointer = Checkpointer(store.path)
    conn = checkpointer.open()
    try:
        busy, frames, copied = checkpointer.checkpoint(conn)
    finally:
        conn.close()
    assert busy == 0 and frames > 0 and copied == frames
    # the database file alone now holds the rows: a copy without the -wal reads them all
    copy = store.path.with_name("copy.db")
    copy.write_bytes(store.path.read_bytes())
    assert sqlite3.connect(copy).execute("SELECT count(*) FROM t").fetchone()[0] == 200


def test_writes_go_on_while_the_checkpointer_runs_and_it_stops_cleanly(store):
    checkpointer = Checkpointer(store.path, interval=0.01)
    checkpointer.start()
    try:
        write(store, 300)
    finally:
        checkpointer.stop()
    assert checkpointer._thread is None
    assert store.conn.execute("SELECT count(*) FROM t").fetchone()[0] == 300


def test_an_in_memory_database_gets_no_checkpointer_thread():
    checkpointer = Checkpointer(":memory:")
    checkpointer.start()
    assert checkpointer._thread is None
    checkpointer.stop()
