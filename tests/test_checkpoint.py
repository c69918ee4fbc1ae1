"""WAL checkpoints from the checkpointer's own connection (alertd/store/checkpoint.py):
they copy what the daemon committed into the database file without the daemon's
connection doing it, and the daemon's writes go on while the thread runs."""
import sqlite3
from types import SimpleNamespace

import pytest

from alertd.store.checkpoint import Checkpointer


@pytest.fixture
def store(tmp_path):
    """A WAL database as the daemon's store opens it, one connection writing."""
    path = tmp_path / "alertd.db"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies, so the test sees its work
    conn.execute("CREATE TABLE t (v TEXT NOT NULL)")
    yield SimpleNamespace(path=path, conn=conn)
    conn.close()


def write(store, n: int) -> None:
    for i in range(n):  # one commit each, as requests commit
        store.conn.execute("INSERT INTO t (v) VALUES (?)", (f"v{i}" * 50,))


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
