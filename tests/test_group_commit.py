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


@both_backends
def test_a_write_that_fails_beside_others_fails_alone_and_each_other_is_stored_once_as_given(daemon):
    """Thirteen submits queued in one turn of the loop, the second failing in the database.
    On PostgreSQL the writes of a batch share a transaction without savepoints: the failure
    rolls back the first submit's write too, which then runs again alone (batch.reruns). It
    must run again from the trigger and rows as given, not from the ids and statuses its
    rolled-back run set: each row is stored once, under a trigger that exists, the silenced
    number still silenced."""
    from alertd.dispatch.intake import Once
    from alertd.dispatch.notification import notification
    from alertd.store import StoreError

    assert daemon.api.post(daemon.url("/api/v1/silences"), json={"to": "+15557100000", "duration": "1h", "reason": "test"},
                           timeout=10).status_code == 200
    numbers = [f"+1555710{i:04d}" for i in range(13)]

    async def broken(tx) -> bool:
        done = tx.execute("SELECT * FROM no_such_table")  # either backend's handle; PostgreSQL's is async
        if asyncio.iscoroutine(done):
            await done
        return True

    async def go():
        store = daemon.daemon.store
        before = getattr(store.batch, "reruns", 0)
        results = await asyncio.gather(*(
            daemon.daemon.submit({"source": "api"}, [notification(n, "sms", f"to {n}")],
                                 once=Once(claim=broken) if i == 1 else None)
            for i, n in enumerate(numbers)), return_exceptions=True)
        return results, getattr(store.batch, "reruns", 0) - before

    results, reruns = daemon.run(go())
    assert isinstance(results[1], StoreError), results[1]
    stored = {rows[0].to: rows[0] for i, rows in enumerate(results) if i != 1}
    assert set(stored) == set(numbers) - {numbers[1]}
    logs = {r[0]: r[1:] for r in daemon.query(
        "SELECT to_number, log_id, trigger_id, status FROM logs WHERE to_number LIKE '+1555710%'")}
    assert len(daemon.query("SELECT log_id FROM logs WHERE to_number LIKE '+1555710%'")) == 12  # each once
    triggers = {r[0] for r in daemon.query("SELECT trigger_id FROM triggers")}
    for number, row in stored.items():
        log_id, trigger_id, status = logs[number]
        assert (row.log_id, row.trigger_id) == (log_id, trigger_id) and trigger_id in triggers
    assert stored[numbers[0]].status == logs[numbers[0]][2] == "silenced"
    if daemon.daemon.config.postgres:
        assert reruns >= 1  # the shared transaction was rolled back and run again, write by write
