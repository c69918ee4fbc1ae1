"""API keys and silences kept in each node's memory, and the notices from PostgreSQL that
void them (alertd/store/postgres/changes.py): a change made anywhere (another node, the CLI,
psql) holds on every node within moments; while a node cannot hear the notices it reads
both tables every time. Real PostgreSQL; "another node" is a plain connection writing as
one would."""
from __future__ import annotations

import asyncio
import time

import asyncpg

from test_pg_daemon import on_pg

NUMBER = "+15557300001"


def sql(url: str, *statements: str) -> None:
    async def go():
        conn = await asyncpg.connect(url)
        try:
            for s in statements:
                await conn.execute(s)
        finally:
            await conn.close()
    asyncio.run(go())


def listeners(url: str) -> list[int]:
    async def go():
        conn = await asyncpg.connect(url)
        try:
            return [r[0] for r in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'")]
        finally:
            await conn.close()
    return asyncio.run(go())


def test_a_key_revoked_elsewhere_is_refused_here_once_postgresql_says_so(pg_url, make_daemon, fake_twilio):
    d = make_daemon(on_pg(pg_url, fake_twilio))
    d.wait_until(lambda: d.notify({"to": NUMBER, "message": "one"}).status_code == 200 and listeners(pg_url),
                 what="a request served while the node listens")
    assert d.notify({"to": NUMBER, "message": "kept"}).status_code == 200
    # the key revoked with the notice switched off: the node goes on with what it kept,
    # so it does not read the key on every request
    sql(pg_url, "ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed", "UPDATE api_keys SET revoked_at = 1")
    assert d.notify({"to": NUMBER, "message": "still kept"}).status_code == 200
    # any change that notifies: the node reads the key again, and finds it revoked
    sql(pg_url, "ALTER TABLE api_keys ENABLE TRIGGER api_keys_changed", "UPDATE api_keys SET name = name")
    d.wait_until(lambda: d.notify({"to": NUMBER, "message": "refused"}).status_code == 401, timeout=3,
                 what="the revoked key refused")


def test_a_silence_made_elsewhere_holds_here_and_one_made_here_holds_at_once(pg_url, make_daemon, fake_twilio):
    d = make_daemon(on_pg(pg_url, fake_twilio))
    d.wait_until(lambda: d.notify({"to": NUMBER, "message": "one"}).status_code == 200 and listeners(pg_url),
                 what="a request served while the node listens")
    assert d.notify({"to": NUMBER, "message": "two"}).json()["calls"][0]["status"] == "initiated"  # read, kept
    # another node's silence (written as it would be): this node's next read includes it
    now = time.time()
    sql(pg_url, "INSERT INTO silences (silence_id, matcher, value, starts_at, ends_at, reason, created_at)"
                f" VALUES ('sil_elsewhere', 'to', '{NUMBER}', {now}, {now + 3600}, 'elsewhere', {now})")
    d.wait_until(lambda: [s["silence_id"] for s in d.run(d.daemon.store.silences.active(time.time()))]
                 == ["sil_elsewhere"], timeout=3, what="the other node's silence")
    call = d.notify({"to": NUMBER, "message": "held"}).json()["calls"][0]
    assert call["status"] == "silenced"
    # one made through this node's API holds for the very next request, without waiting for the notice
    r = d.api.post(d.url("/api/v1/silences"), json={"to": "+15557300002", "duration": "1h", "reason": "here"},
                   timeout=10)
    assert r.status_code == 200, r.text
    assert d.notify({"to": "+15557300002", "message": "held"}).json()["calls"][0]["status"] == "silenced"


def test_while_the_node_cannot_hear_notices_it_reads_the_tables_and_then_listens_again(
        pg_url, make_daemon, fake_twilio):
    d = make_daemon(on_pg(pg_url, fake_twilio))
    d.wait_until(lambda: d.notify({"to": NUMBER, "message": "one"}).status_code == 200 and listeners(pg_url),
                 what="a request served while the node listens")
    (first,) = listeners(pg_url)
    assert d.notify({"to": NUMBER, "message": "kept"}).status_code == 200
    # notices off and the key revoked: nothing will ever tell the node, which goes on with what it kept
    sql(pg_url, "ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed", "UPDATE api_keys SET revoked_at = 1")
    assert d.notify({"to": NUMBER, "message": "still kept"}).status_code == 200
    # the listening connection killed: notices may have been lost, so what the node kept is void
    sql(pg_url, f"SELECT pg_terminate_backend({first})")
    d.wait_until(lambda: d.notify({"to": NUMBER, "message": "refused"}).status_code == 401, timeout=3,
                 what="the revoked key refused")
    d.wait_until(lambda: listeners(pg_url) not in ([], [first]), timeout=5, what="a new listening connection")
