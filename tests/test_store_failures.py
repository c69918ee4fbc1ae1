"""When the database cannot be written, nothing is answered ok."""
import pytest


@pytest.fixture
def read_only(daemon):
    def set_query_only(on: bool):
        async def go():
            daemon.daemon.store.conn.execute(f"PRAGMA query_only={int(on)}")
        daemon.run(go())
    yield set_query_only
    set_query_only(False)


def test_notify_answers_503_when_the_database_refuses_the_write(daemon, read_only):
    read_only(True)
    r = daemon.notify({"to": "+15551234567", "message": "hi"})
    assert r.status_code == 503
    body = r.json()
    assert body["ok"] is False and body["code"] == 503 and "nothing was accepted" in body["error"]
    assert r.headers["retry-after"] == "5"
    read_only(False)
    assert daemon.api.get(daemon.url("/api/v1/calls/logs"), timeout=10).json()["logs"] == []
    assert daemon.daemon.provider.sent == []


def test_webhook_answers_503_when_the_database_refuses_the_write(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "door.yaml").write_text(
        "rules:\n  - id: door\n    source: {webhook: door}\n    notify: {to: manager, message: open}\n")
    d = make_daemon()

    async def go():
        d.daemon.store.conn.execute("PRAGMA query_only=1")
    d.run(go())
    r = d.api.post(d.url("/hooks/door"), json={"state": "open"}, timeout=10)
    assert r.status_code == 503 and r.json()["code"] == 503


def test_alertmanager_hook_answers_400_for_a_body_without_alerts(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "am.yaml").write_text(
        "rules:\n  - id: am\n    source: {webhook: am, format: alertmanager}\n"
        "    notify: {to: manager, message: x}\n")
    d = make_daemon()
    r = d.api.post(d.url("/hooks/am"), json={"status": "firing"}, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"ok": False, "code": 400,
                        "error": "body: an alertmanager payload needs an 'alerts' list "
                                 "(webhook 'am' expects format alertmanager)"}


def test_notify_answers_503_when_the_database_stays_locked_past_its_timeout(daemon):
    import sqlite3

    async def short_timeout():  # the daemon waits 5 s for a lock; the test need not
        daemon.daemon.store.conn.execute("PRAGMA busy_timeout=200")
    daemon.run(short_timeout())
    other = sqlite3.connect(str(daemon.daemon.store.path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock, e.g. a stuck `alertd` command
    try:
        r = daemon.notify({"to": "+15551234567", "message": "hi"})
        assert r.status_code == 503
        body = r.json()
        assert body == {"ok": False, "code": 503,
                        "error": "The database cannot be written; nothing was accepted. Try again."}
        assert r.headers["retry-after"] == "5"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert daemon.api.get(daemon.url("/api/v1/calls/logs"), timeout=10).json()["logs"] == []
    assert daemon.daemon.provider.sent == []
    assert daemon.notify({"to": "+15551234567", "message": "hi"}).status_code == 200


def test_when_the_providers_answer_cannot_be_stored_the_api_still_says_what_was_sent(make_daemon, fake_twilio):
    """The call was placed: answering 503 'nothing was accepted' would make the
    client send it again. The answer carries the provider's sid instead."""
    import threading
    import time

    from conftest import twilio_overrides

    d = make_daemon(twilio_overrides(fake_twilio))
    fake_twilio.latency = 0.5  # the create request is in flight while the database turns read-only
    answer = {}
    sender = threading.Thread(target=lambda: answer.update(r=d.notify({"to": "+15551234567", "message": "hi"})))
    sender.start()
    deadline = time.monotonic() + 5
    while not d.daemon.store.logs.get(1) and time.monotonic() < deadline:
        time.sleep(0.01)

    async def read_only(on: bool):
        d.daemon.store.conn.execute(f"PRAGMA query_only={int(on)}")
    d.run(read_only(True))
    sender.join(10)
    d.run(read_only(False))
    r = answer["r"]
    assert r.status_code == 200, r.text
    (call,) = r.json()["calls"]
    assert call["status"] == "initiated" and call["call_sid"] == fake_twilio.calls[0].sid
