"""The store on PostgreSQL, against a real server: the table groups, group commit, several
nodes sharing the outbox, and a database that goes away and comes back."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from alertd.dispatch.notification import Notification, notification
from alertd.store import StoreError
from alertd.store.postgres import DB_NOW, DatabaseUnavailable
from alertd.store.postgres.store import PostgresStore

T = 1_800_000_000.0


def Row(to: str, type: str = "call", **fields: Any) -> Notification:
    return notification(to, type, fields.pop("message", "Disk full"), voice="alice", **fields)


def run(url: str, body, nodes: int = 1):
    async def main():
        stores = [PostgresStore.at(url, f"node-{i}", min_size=1, max_size=4) for i in range(nodes)]
        try:
            for s in stores:
                await s.open()
            return await body(*stores)
        finally:
            for s in stores:
                await s.disconnect()
    return asyncio.run(main())


def test_keys_and_templates(pg_url):
    async def body(store):
        key_id = await store.keys.create("ops", "ak_1234", "hash-1", T)
        assert (await store.keys.find("hash-1"))["id"] == key_id
        assert (await store.keys.find("hash-1"))["scopes"] == "admin"  # what every key had before scopes
        scoped = await store.keys.create("pager", "ak_5678", "hash-2", T, scopes="notify read")
        assert (await store.keys.find("hash-2"))["scopes"] == "notify read"
        assert await store.keys.revoke(scoped, T)
        assert await store.keys.revoke(key_id, T + 1) and not await store.keys.revoke(key_id, T + 2)
        await store.keys.touch(key_id, T + 3)
        assert [(k["name"], k["revoked_at"], k["last_used_at"], k["scopes"]) for k in await store.keys.list()] == [
            ("ops", T + 1, T + 3, "admin"), ("pager", T, None, "notify read")]
        with pytest.raises(StoreError):  # the same hash twice: a defect, as StoreError, never asyncpg's
            await store.keys.create("again", "ak_1234", "hash-1", T)
        await store.templates.create("tpl_1", "disk", {"message": "Disk {{ pct }}%"}, T)
        assert await store.templates.update("tpl_1", "disk2", {"message": "x"})
        assert [t["name"] for t in await store.templates.list()] == ["disk2"]
        assert (await store.templates.get("tpl_1"))["message"] == "x"
        assert await store.templates.delete("tpl_1") and await store.templates.get("tpl_1") is None
    run(pg_url, body)


def test_a_trigger_its_rows_items_and_escalation_steps_are_stored_together_and_sent_once(pg_url):
    async def body(store):
        trigger = {"created_at": T, "source": "api", "spec": {"escalate": [{"after": 300}, {"after": 600}]}}
        rows = await store.logs.create_trigger(trigger, [Row("+15551230001", "both"), Row("+15551230002")], T + 30)
        assert [len(r.items) for r in rows] == [2, 1] and [c for _, c in rows[0].items] == ["call", "sms"]
        assert [(f["kind"], f["step"], f["due_at"]) for f in await store.followups.of_trigger(trigger["trigger_id"])] \
            == [("escalate", 1, T + 300), ("escalate", 2, T + 600)]
        assert await store.outbox.claim_due(T + 1, T + 31, 10) == []  # leased to the request's first attempt
        await store.outbox.record_results([
            {"outbox_id": rows[0].items[0][0], "log_id": rows[0].log_id, "channel": "call", "outcome": "sent",
             "sid": "CA1", "sent_at": T + 1},
            {"outbox_id": rows[0].items[1][0], "log_id": rows[0].log_id, "channel": "sms", "outcome": "retry",
             "error": {"code": 20429, "message": "busy"}, "next_attempt_at": T + 5}], complete=True)
        row = await store.logs.get(rows[0].log_id)
        assert (row["status"], row["call_sid"], row["send_at"]) == ("queued", "CA1", T + 1)
        due = await store.outbox.claim_due(T + 31, T + 61, 10)  # the retry, and row 2 whose lease ran out
        assert sorted((d["to"], d["channel"]) for d in due) == [("+15551230001", "sms"), ("+15551230002", "call")]
        assert await store.outbox.claim_due(T + 32, T + 62, 10) == []
        stats = await store.outbox.stats(T + 40)
        assert (stats["pending"], stats["due"], stats["oldest_due_age"]) == (2, 2, 40)
        assert [f["step"] for f in await store.followups.claim(T + 301)] == [1]
        assert await store.followups.claim(T + 302) == []
    run(pg_url, body)


def test_a_trigger_without_rows_keeps_its_escalation_steps(pg_url):
    async def body(store):
        trigger = {"created_at": T, "source": "api", "spec": {"escalate": [{"after": 300}]}}
        assert await store.logs.create_trigger(trigger, [], T + 30) == []
        assert [(f["kind"], f["step"], f["due_at"]) for f in await store.followups.of_trigger(trigger["trigger_id"])] \
            == [("escalate", 1, T + 300)]
    run(pg_url, body)


def test_acknowledging_keeps_the_first_and_cancels_what_is_still_to_send(pg_url):
    async def body(store):
        trigger = {"created_at": T, "source": "api", "spec": {"escalate": [{"after": 300}]}}
        rows = await store.logs.create_trigger(trigger, [Row("+15551230001"), Row("+15551230002", send_at=T + 600,
                                                                                   status="scheduled")], T + 30)
        assert await store.logs.acknowledge(rows[0].log_id, T + 10, "alice") == trigger["trigger_id"]
        assert await store.logs.acknowledge(rows[1].log_id, T + 20, "bob") == trigger["trigger_id"]
        later = await store.logs.get(rows[1].log_id)
        assert (later["acknowledged_at"], later["acknowledged_by"], later["status"]) == (T + 10, "alice", "cancelled")
        assert [f["state"] for f in await store.followups.of_trigger(trigger["trigger_id"])] == ["cancelled"]
        assert await store.logs.acknowledge(999, T, "x") is None
    run(pg_url, body)


_SCANS = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'outbox'"


def test_an_attempts_outcome_reads_the_outbox_by_its_key_whatever_plan_the_connection_cached(pg_url):
    """The outcome of every attempt is written by Outbox.apply_results. A connection keeps its
    plans: one made while the outbox was small must not read the whole outbox on every attempt
    once it has grown (it did: 0.6 ms a notify request after 3,000 sends, and more with every
    send). Generic plans forced, so a plan is made once and kept; each of the three statements:
    one item, the two items of a 'both' row, and one item of a row with others (the worker's)."""
    import asyncpg

    from alertd.store.postgres.connection import Conn
    from alertd.store.postgres.outbox import Outbox

    def sent(row, k: int) -> dict:
        outbox_id, channel = row.items[k]
        return {"outbox_id": outbox_id, "log_id": row.log_id, "channel": channel, "outcome": "sent",
                "sid": f"{channel}-{row.log_id}", "sent_at": T + 1}

    async def body():
        setup = await asyncpg.connect(pg_url)
        await setup.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET plan_cache_mode ="
                            " force_generic_plan', current_database()); END $$")
        await setup.close()
        store = PostgresStore.at(pg_url, "node-0", min_size=1, max_size=1)
        await store.open()
        try:
            rows = []
            for n, kind in enumerate(["call", "call", "both", "both", "both", "both"]):
                rows += await store.logs.create_trigger({"created_at": T, "source": "api"},
                                                        [Row(f"+1555123000{n}", kind)], T + 30)
            async with store.db.pool.acquire() as conn:
                await conn.execute("ANALYZE outbox")  # the statistics of a young outbox
                await conn.execute("INSERT INTO outbox (log_id, channel, state, next_attempt_at, created_at)"
                                   " SELECT 0, 'call', 'sent', 0, 0 FROM generate_series(1, 1500)")
            # each statement's generic plan is made at its first use, with 1,500 rows more than it knows of
            cases = [([sent(rows[0], 0)], True), ([sent(rows[1], 0)], True),
                     ([sent(rows[2], 0), sent(rows[2], 1)], True), ([sent(rows[3], 0), sent(rows[3], 1)], True),
                     ([sent(rows[4], 0)], False), ([sent(rows[5], 1)], False)]
            for results, complete in cases:
                async with store.db.pool.acquire() as conn, conn.transaction():
                    before = await conn.fetchrow(_SCANS)
                    await Outbox.apply_results(Conn(conn, "node-0"), results, complete=complete)
                    after = await conn.fetchrow(_SCANS)  # this connection's counts, not yet all reported
                    assert after["seq_scan"] - before["seq_scan"] == 0, (results, complete)
                    assert after["idx_scan"] - before["idx_scan"] >= 1
            got = [await store.logs.get(row.log_id) for row in rows]
            assert [(r["status"], r["call_sid"], r["sms_sid"]) for r in got] == [
                ("initiated", f"call-{rows[0].log_id}", None), ("initiated", f"call-{rows[1].log_id}", None),
                ("initiated", f"call-{rows[2].log_id}", f"sms-{rows[2].log_id}"),
                ("initiated", f"call-{rows[3].log_id}", f"sms-{rows[3].log_id}"),
                ("queued", f"call-{rows[4].log_id}", None), ("queued", None, f"sms-{rows[5].log_id}")]
        finally:
            await store.disconnect()
    asyncio.run(body())


def test_group_commit_shares_transactions_and_rolls_back_a_failing_write_alone(pg_url):
    async def body(store):
        async def insert(tx, n):
            if n == 7:
                await tx.execute("INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?)",
                                 "dup", "p", "hash-0", T)  # hash-0 is taken: this write fails
            return await tx.fetchval("INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?)"
                                     " RETURNING id", f"k{n}", "p", f"hash-{n}", T)
        results = await asyncio.gather(*(store.batch.run(insert, n) for n in range(20)), return_exceptions=True)
        assert [type(r).__name__ for r in results if isinstance(r, Exception)] == ["StoreError"]
        assert isinstance(results[7], StoreError) and all(isinstance(r, int) for i, r in enumerate(results) if i != 7)
        keys = await store.keys.list()
        assert len(keys) == 19
        # each caller has the id its write committed, not one of a run that was rolled back:
        # the failing write's batch ran again write by write, without savepoints
        assert sorted(r for i, r in enumerate(results) if i != 7) == sorted(k["id"] for k in keys)
        assert store.batch.batches < store.batch.writes == 20 and store.batch.reruns == 1
    run(pg_url, body)


def test_three_nodes_share_the_outbox_without_sending_an_item_twice(pg_url):
    async def body(*stores):
        trigger = {"created_at": T, "source": "api"}
        rows = await stores[0].logs.create_trigger(trigger, [Row(f"+1555000{i:04d}", status="scheduled")
                                                             for i in range(60)], T + 30)
        claims = await asyncio.gather(*(s.outbox.claim_due(T, T + 30, 25) for s in stores))
        ids = [d["outbox_id"] for c in claims for d in c]
        assert len(ids) == len(set(ids))
        rest = await stores[2].outbox.claim_due(T + 1, T + 31, 100)
        assert sorted(ids + [d["outbox_id"] for d in rest]) == sorted(i for r in rows for i, _ in r.items)
        # node-0 restarts: it gives back what it held; the other nodes' leases are theirs
        released = await stores[0].outbox.release_leases()
        assert released == len(claims[0])
        assert {d["outbox_id"] for d in await stores[1].outbox.claim_due(T + 2, T + 32, 100)} == \
            {d["outbox_id"] for d in claims[0]}
    run(pg_url, body, nodes=3)


def test_a_node_whose_clock_is_off_neither_takes_an_item_another_holds_nor_holds_one_longer(pg_url):
    async def main():
        slow, fast = (PostgresStore.at(pg_url, name, min_size=1, max_size=2, db_clock=True)
                      for name in ("slow", "fast"))
        for s in (slow, fast):
            await s.open()
        try:
            real = time.time()
            # the slow node (its clock 100 s behind) stores a call its request is sending: a 30 s lease
            await slow.logs.create_trigger({"created_at": real - 100}, [Row("+15551230001")], real - 100 + 30)
            # by the fast node's clock (100 s ahead) that lease ran out long ago; by the database's it did not
            assert await fast.outbox.claim_due(real + 100, real + 130, 10) == []
            # and the fast node's own lease of 30 s ends 30 s from the database's now, not 130 s
            await fast.logs.create_trigger({"created_at": real + 100}, [Row("+15551230002")], real + 100 + 30)
            leases = [r[0] - r[1] for r in await fast.db.pool.fetch(
                f"SELECT leased_until, {DB_NOW} FROM outbox ORDER BY id")]
            assert all(25 < left <= 30 for left in leases), leases
        finally:
            for s in (slow, fast):
                await s.disconnect()
    asyncio.run(main())


def test_the_rules_engines_tables_silences_overrides_users_and_status_history(pg_url):
    async def body(store):
        event_id = await store.events.record("webhook", "grafana", {"status": "firing"}, T)
        await store.events.set_fired(event_id, ["disk"])
        assert (await store.events.get(event_id))["fired"] == ["disk"]
        await store.rule_state.put("disk", "fp", firing=True, since=T, notified_at=T, last_sent_at=T, now=T)
        assert (await store.rule_state.get("disk", "fp"))["firing"] == 1
        assert await store.rule_state.summaries() == {"disk": {"firing": True, "last_sent_at": T}}
        group_id, n = await store.groups.add_event("disk", "k", False, {"a": 1}, event_id, T, 30)
        assert await store.groups.add_event("disk", "k", False, {"a": 2}, None, T + 1, 30) == (group_id, 2)
        assert [g["group_id"] for g in await store.groups.claim_due(T + 30)] == [group_id]
        assert [e for _, e in await store.groups.events_of(group_id)] == [{"a": 1}, {"a": 2}]
        await store.silences.add("sil_1", "rule_id", "disk", T, T + 60, "maintenance", T)
        assert [s["silence_id"] for s in await store.silences.active(T)] == ["sil_1"]
        assert await store.silences.end("sil_1", T + 1) and await store.silences.active(T + 1) == []
        await store.overrides.add("primary", "alice", T, T + 60, T)
        assert [o["contact"] for o in await store.overrides.of_rotation("primary", T)] == ["alice"]
        assert await store.users.add("admin", "h1", T) and not await store.users.add("admin", "h2", T)
        user = await store.users.get("admin")
        await store.users.add_session("s1", user["user_id"], "csrf", T, T + 60)
        assert (await store.users.find_session("s1", T))["name"] == "admin"
        rows = await store.logs.create_trigger({"created_at": T, "source": "api"}, [Row("+15551230001")], T + 30)
        await store.status.record(rows[0].log_id, "call", "ringing", T + 2, sid="CA9")
        assert [h["status"] for h in (await store.status.history([rows[0].log_id]))[rows[0].log_id]] == ["ringing"]
        assert (await store.logs.get(rows[0].log_id))["call_sid"] == "CA9"
        assert await store.status.seen(rows[0].log_id, "call", "ringing")
        assert not await store.status.seen(rows[0].log_id, "call", "no-answer")
        assert not await store.status.seen(rows[0].log_id, "sms", "ringing")
        assert [r["log_id"] for r in await store.dashboard.filtered_logs(limit=10, source="api")] == [rows[0].log_id]
        assert await store.dashboard.outcome_counts(T - 1, T + 1) == {"sent": 1}
    run(pg_url, body)


def test_the_same_calls_final_callback_on_three_nodes_at_once_adds_one_retry(pg_url):
    async def body(*stores):
        (row,) = await stores[0].logs.create_trigger({"created_at": T, "source": "api"}, [Row("+15551230001")], T)
        tid = (await stores[0].logs.get(row.log_id))["trigger_id"]
        added = await asyncio.gather(*(s.followups.add_retry_once(tid, row.log_id, T + 30, T) for s in stores * 2))
        assert sorted(added) == [False] * 5 + [True]
        assert [f["kind"] for f in await stores[0].followups.of_trigger(tid)] == ["retry"]
    run(pg_url, body, nodes=3)


def test_retention_prunes_old_history_but_keeps_pending_work(pg_url):
    async def body(store):
        old = await store.logs.create_trigger({"created_at": T}, [Row("+15551230001", status="failed")], T)
        pending = await store.logs.create_trigger({"created_at": T}, [Row("+15551230002")], T + 30)
        counts, cursor = await store.retention.prune_logs(T + 86400)
        assert (counts["logs"], counts["kept"], counts["triggers"], cursor) == (1, 1, 1, None)
        assert await store.logs.get(old[0].log_id) is None and await store.logs.get(pending[0].log_id) is not None
    run(pg_url, body)


def test_while_the_database_is_down_calls_fail_as_unavailable_then_work_again_without_reopening(pg_server, pg_url):
    async def body(store):
        await store.keys.create("ops", "ak", "hash-1", T)
        pg_server.halt()
        try:
            with pytest.raises(DatabaseUnavailable):
                await store.keys.find("hash-1")
            with pytest.raises(DatabaseUnavailable):
                await store.batch.run(store.logs.insert_trigger, {"created_at": T}, [Row("+15551230001")], T + 30)
            assert not await store.ping()
        finally:
            pg_server.resume()
        assert (await store.keys.find("hash-1"))["name"] == "ops"
        rows = await store.batch.run(store.logs.insert_trigger, {"created_at": T}, [Row("+15551230001")], T + 30)
        assert rows[0].log_id and await store.ping()
    run(pg_url, body)
