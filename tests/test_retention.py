"""Retention: history older than `retention` is pruned in small batches; pending work never is.
The store's tests and the daemon's run on SQLite and on PostgreSQL."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alertd import config as config_mod
from alertd.runtime import retention
from alertd.dispatch.callbacks import CallbackHandler
from alertd.clock import FakeClock
from alertd.store import Store
from alertd.dispatch.notification import Notification
from conftest import both_backends, query, run_async, sync

DAY = 86400.0
NOW = 1_800_000_000.0
OLD, RECENT = NOW - 100 * DAY, NOW - 1 * DAY


@pytest.fixture
def store(backend_store):
    return backend_store


def notify(store: Store, at: float, *, outcome: str | None = "sent", channel: str = "sms", spec=None,
           source: str = "test") -> dict:
    """One trigger with one log row at ``at``; its outbox item sent, failed, or (None) left pending."""
    trigger = {"created_at": at, "source": source, **({"spec": spec} if spec else {})}
    (row,) = sync(store.logs.create_trigger(trigger, [Notification(to="+15551230001", type=channel, message="m", params={})],
                                       lease_until=at))
    if outcome is not None:
        (oid, ch), = row.items
        sync(store.outbox.record_results([{"outbox_id": oid, "log_id": row.log_id, "channel": ch, "outcome": outcome,
                               "sid": "SM1", "error": {"code": 1, "message": "x"}}]))
    return row


def count(store: Store, table: str) -> int:
    return query(store, f"SELECT COUNT(*) FROM {table}")[0][0]


def prune(store: Store, batch: int = 500) -> dict:
    return run_async(retention.prune(store, NOW, timedelta(days=90), batch=batch))


def test_rows_older_than_retention_go_with_their_outbox_items_and_triggers(store):
    old = [notify(store, OLD + i, outcome="sent" if i % 2 else "failed") for i in range(7)]
    recent = [notify(store, RECENT + i) for i in range(3)]
    for i in range(5):
        sync(store.events.record("webhook", "door", {"i": i}, OLD + i))
    sync(store.events.record("webhook", "door", {"i": "recent"}, RECENT))

    totals = prune(store, batch=3)

    assert totals == {"logs": 7, "outbox": 7, "callbacks": 0, "triggers": 7, "followups": 0, "kept": 0,
                      "events": 5, "groups": 0, "reach": 0, "batches": 3 + 2 + 1 + 1}
    # 3+3+1 log rows, 3+2 events, no groups, no inbound calls or shift notices
    assert [r["log_id"] for r in sync(store.logs.list(limit=100))] == [r.log_id for r in reversed(recent)]
    assert all(sync(store.logs.get(r.log_id)) is None and sync(store.logs.trigger(r.trigger_id)) is None for r in old)
    assert count(store, "outbox") == 3 and count(store, "triggers") == 3
    assert query(store, "SELECT payload FROM events") == [('{"i": "recent"}',)]


def test_status_callbacks_go_with_their_log_rows(store):
    handler = CallbackHandler(store, FakeClock(datetime.fromtimestamp(OLD, timezone.utc)))
    old, recent = notify(store, OLD), notify(store, RECENT)
    for row in (old, recent):
        for status in ("sent", "delivered"):
            assert sync(handler.sms_status(row.log_id, "SM1", status))

    assert prune(store)["callbacks"] == 2
    assert query(store, "SELECT log_id, status FROM status_callbacks ORDER BY id") \
        == [(recent.log_id, "sent"), (recent.log_id, "delivered")]


def test_an_outbox_item_still_pending_is_never_pruned(store):
    waiting = notify(store, OLD, outcome=None)           # still being retried
    retrying = notify(store, OLD + 1, outcome="retry")   # failed transiently: pending again
    done = notify(store, OLD + 2)
    both = sync(store.logs.create_trigger({"created_at": OLD + 3},
                                     [Notification(to="+15551230002", type="both", message="m", params={})], OLD))[0]
    (call, _), (sms, _) = both.items
    sync(store.outbox.record_results([{"outbox_id": call, "log_id": both.log_id, "channel": "call", "outcome": "sent",
                           "sid": "CA1"}]))  # the SMS of the same row is still pending

    totals = prune(store, batch=2)

    assert totals["logs"] == 1 and totals["kept"] == 3
    assert sync(store.logs.get(done.log_id)) is None
    for row in (waiting, retrying, both):
        assert sync(store.logs.get(row.log_id)) is not None
        assert sync(store.logs.trigger(row.trigger_id)) is not None
    (pending,), = query(store, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
    assert pending == 3 and count(store, "outbox") == 4  # the row's sent call stays with its pending SMS
    # once sent, they go at the next run
    for oid, row in ((waiting.items[0][0], waiting), (retrying.items[0][0], retrying), (sms, both)):
        sync(store.outbox.record_results([{"outbox_id": oid, "log_id": row.log_id, "channel": "sms", "outcome": "sent",
                               "sid": "SM2"}]))
    assert prune(store)["logs"] == 3 and count(store, "logs") == 0 and count(store, "outbox") == 0


def test_a_trigger_with_a_pending_escalation_step_is_kept_with_its_rows(store):
    spec = {"escalate": [{"after": 1000 * DAY, "to": ["+15551230003"]}]}  # far in the future: still pending
    escalating = notify(store, OLD, spec=spec)
    finished = notify(store, OLD + 1, spec={"escalate": [{"after": 60, "to": ["+15551230003"]}]})
    sync(store.followups.claim(OLD + 61))  # the finished trigger's step ran

    totals = prune(store)

    assert totals["logs"] == 1 and totals["kept"] == 1 and totals["followups"] == 1
    assert sync(store.logs.get(escalating.log_id)) is not None and len(sync(store.followups.of_trigger(escalating.trigger_id))) == 1
    assert sync(store.logs.trigger(finished.trigger_id)) is None and sync(store.followups.of_trigger(finished.trigger_id)) == []


def test_a_trigger_keeps_its_rows_that_are_newer_than_the_cutoff(store):
    row = notify(store, OLD)
    later = sync(store.logs.create_trigger({"created_at": RECENT, "trigger_id": row.trigger_id},
                                      [Notification(to="+15551230004", type="sms", message="escalated", params={})],
                                 lease_until=RECENT))[0]
    assert prune(store)["logs"] == 1
    assert sync(store.logs.trigger(row.trigger_id)) is not None and sync(store.logs.get(later.log_id)) is not None


def test_pruning_yields_to_the_event_loop_between_batches(store):
    for i in range(40):
        notify(store, OLD + i)
        sync(store.events.record("webhook", "door", {}, OLD + i))

    async def run() -> tuple[dict, int]:
        turns = 0
        done = asyncio.Event()

        async def api():  # stands for a request handler waiting for its turn
            nonlocal turns
            while not done.is_set():
                turns += 1
                await asyncio.sleep(0)

        other = asyncio.create_task(api())
        await asyncio.sleep(0)
        totals = await retention.prune(store, NOW, timedelta(days=90), batch=5)
        done.set()
        await other
        return totals, turns

    totals, turns = run_async(run())
    assert totals["logs"] == 40 and totals["events"] == 40
    # 8 full batches and an empty one, for logs and events; no groups, inbound calls or shift notices
    assert totals["batches"] == 9 + 9 + 1 + 1
    assert turns >= totals["batches"]  # the other task ran between every two batches


def test_nothing_to_prune_is_one_cheap_statement_per_kind(store):
    notify(store, RECENT)
    assert prune(store) == {"logs": 0, "outbox": 0, "callbacks": 0, "triggers": 0, "followups": 0, "kept": 0,
                            "events": 0, "groups": 0, "reach": 0, "batches": 4}


def test_rule_groups_sent_before_the_cutoff_go_and_open_ones_stay(store):
    def group(state: str, done_at: float | None) -> int:
        (gid,), = query(store, "INSERT INTO rule_groups (rule_id, group_key, first_at, due_at, events, state, done_at)"
                               " VALUES ('am', '[]', ?, ?, 1, ?, ?) RETURNING group_id", OLD, OLD, state, done_at)
        query(store, "INSERT INTO rule_group_events (group_id, event) VALUES (?, '{}')", gid)
        return gid
    old_sent, recent_sent, pending = group("sent", OLD), group("sent", RECENT), group("pending", None)
    counts = prune(store)
    assert counts["groups"] == 1
    left = [r[0] for r in query(store, "SELECT group_id FROM rule_groups ORDER BY group_id")]
    assert left == [recent_sent, pending]
    assert [r[0] for r in query(store, "SELECT DISTINCT group_id FROM rule_group_events ORDER BY 1")] == \
        [recent_sent, pending]
    assert old_sent not in left


@both_backends
def test_the_daemon_schedules_the_daily_job(daemon):
    d = daemon.daemon
    assert retention.JOB_ID not in d.scheduler.jobs()  # jobs() lists the rules' jobs only
    job = d.scheduler.scheduler.get_job(retention.JOB_ID)
    assert job.trigger.interval == timedelta(days=1) and job.coalesce and job.max_instances == 1
    # a rule reload rebuilds the rule jobs only
    d.scheduler.sync(d.runner.ruleset)
    assert d.scheduler.scheduler.get_job(retention.JOB_ID) is not None
    # the job itself, run now on the daemon's loop
    assert daemon.notify({"to": "+15551234567", "message": "kept: recent"}).status_code == 200
    daemon.run(retention.run(d))
    assert len(daemon.run(d.store.logs.list())) == 1


@pytest.mark.parametrize("value, expected", [
    (None, timedelta(days=90)), ("30d", timedelta(days=30)), ("52w", timedelta(weeks=52)),
])
def test_retention_is_a_duration_in_the_config(tmp_path, value, expected):
    path = tmp_path / "config.yaml"
    path.write_text("" if value is None else f"retention: {value}\n")
    assert config_mod.load(path)[0].retention == expected


@pytest.mark.parametrize("value, expected", [
    ("12h", "config.yaml:1: retention: must be at least 1d (write it like 30d or 52w)"),
    ("ninety", "config.yaml:1: retention: invalid duration 'ninety': write it like 30s, 5m, 2h, 1d or 1w"),
])
def test_a_bad_retention_is_an_error_at_its_line(tmp_path, value, expected):
    path = tmp_path / "config.yaml"
    path.write_text(f"retention: {value}\n")
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(path)
    assert [p.replace(str(tmp_path) + "/", "") for p in exc.value.problems] == [expected]
