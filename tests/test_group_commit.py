"""Group commit (alertd/store/sqlite/batch.py): concurrent writes share one transaction,
each caller still learns of its own failure, and nothing is answered ok unstored. The
unit tests are SQLite's batching (a second sqlite3 connection sees what was committed);
the daemon's test runs on both backends."""
import asyncio
import sqlite3

import pytest

from alertd.store import Store, StoreError, StoreUnavailable
from conftest import both_backends


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "alertd.db")
    s.conn.execute("CREATE TABLE t (v TEXT NOT NULL UNIQUE)")
    yield s
    s.close()


def insert(c, value):
    return c.execute("INSERT INTO t (v) VALUES (?)", (value,)).lastrowid


def committed(store) -> list[str]:
    """What another connection sees: only what was committed."""
    other = sqlite3.connect(str(store.path))
    try:
        return [r[0] for r in other.execute("SELECT v FROM t ORDER BY rowid")]
    finally:
        other.close()


def test_writes_queued_in_one_turn_of_the_loop_commit_once(store):
    async def go():
        return await asyncio.gather(*(store.batch.run(insert, f"v{i}") for i in range(20)))
    ids = asyncio.run(go())
    assert ids == list(range(1, 21))  # in order, each caller gets its own result
    assert committed(store) == [f"v{i}" for i in range(20)]
    assert (store.batch.batches, store.batch.writes) == (1, 20)


def test_a_failing_write_is_rolled_back_alone_and_its_caller_gets_the_error(store):
    def insert_two_then_fail(c, value):
        insert(c, value)
        insert(c, value)  # UNIQUE: the whole write must go, its first row included

    async def go():
        return await asyncio.gather(store.batch.run(insert, "a"), store.batch.run(insert_two_then_fail, "b"),
                                    store.batch.run(insert, "c"), return_exceptions=True)
    a, b, c = asyncio.run(go())
    # the store's error, never sqlite3's, with the driver's error as its cause
    assert type(b) is StoreError and isinstance(b.__cause__, sqlite3.IntegrityError)
    assert (a, c) == (1, 2) or (a, c) == (1, 3)
    assert committed(store) == ["a", "c"]


def test_a_single_failing_write_leaves_no_transaction_open(store):
    async def go():
        with pytest.raises(StoreError) as failed:
            await store.batch.run(lambda c: (insert(c, "x"), insert(c, "x")))
        assert isinstance(failed.value.__cause__, sqlite3.IntegrityError)
        return await store.batch.run(insert, "y")
    asyncio.run(go())
    assert not store.conn.in_transaction
    assert committed(store) == ["y"]


def test_when_the_commit_cannot_happen_every_caller_of_the_batch_gets_the_error(store):
    store.conn.execute("PRAGMA busy_timeout=100")
    other = sqlite3.connect(str(store.path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock

    async def go():
        return await asyncio.gather(*(store.batch.run(insert, f"v{i}") for i in range(3)), return_exceptions=True)
    try:
        results = asyncio.run(go())
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert all(isinstance(r, StoreUnavailable) and isinstance(r.__cause__, sqlite3.OperationalError)
               for r in results), results
    assert not store.conn.in_transaction
    assert committed(store) == []


def test_later_writes_of_a_batch_see_the_earlier_ones(store):
    """storm.fold counts a burst's earlier rows against a number's limit: that
    works only if each write sees what the writes before it in the batch wrote."""
    def insert_count(c, value):
        insert(c, value)
        return c.execute("SELECT COUNT(*) FROM t").fetchone()[0]

    async def go():
        return await asyncio.gather(*(store.batch.run(insert_count, f"v{i}") for i in range(5)))
    assert asyncio.run(go()) == [1, 2, 3, 4, 5]


@both_backends
def test_concurrent_notify_requests_are_all_stored_with_fewer_commits_than_requests(daemon):
    """32 requests at once through the real API, on each backend: every one answered ok
    is in the log with its own log_id, each written through the group commit (whether
    two share a commit depends on timing; the unit tests above pin SQLite's batching,
    tests/test_pg_store.py PostgreSQL's)."""
    import concurrent.futures

    group = daemon.daemon.store.batch
    before = (group.batches, group.writes)
    numbers = [f"+1555{7000000 + i:07d}" for i in range(32)]
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda n: daemon.notify({"to": n, "message": "burst"}), numbers))
    assert [a.status_code for a in answers] == [200] * 32
    log_ids = {a.json()["calls"][0]["log_id"] for a in answers}
    assert len(log_ids) == 32
    rows = daemon.api.get(daemon.url("/api/v1/calls/logs?limit=100"), timeout=10).json()["logs"]
    assert {r["log_id"] for r in rows} == log_ids
    assert {r["to"] for r in rows} == set(numbers)
    assert group.writes - before[1] == 64  # each request: its trigger, then its provider results
