"""Dashboard pages over HTTP (no browser): filters, a trigger's story, the live stream, rules, silences.
Every test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import requests

from alertd.clock import FakeClock
from alertd.dispatch.notification import Notification
from conftest import both_backends, twilio_overrides
from test_ui_auth import add_user, csrf_of, login
from conftest import sync

pytestmark = both_backends


def logged_in(make_daemon, overrides=None, clock=None):
    d = make_daemon(overrides, clock=clock)
    add_user(d)
    s, r = login(d)
    return d, s, csrf_of(r.text)


def test_log_is_newest_first_and_filters(make_daemon):
    d, s, _ = logged_in(make_daemon)
    for src in ("a", "b", "a"):
        d.notify({"to": "+15551234567", "message": f"m-{src}", "source": src})
    page = s.get(d.url("/ui/"), timeout=5).text
    assert page.index('id="log-3"') < page.index('id="log-2"') < page.index('id="log-1"')
    only_b = s.get(d.url("/ui/?source=b"), timeout=5).text
    assert 'id="log-2"' in only_b and 'id="log-1"' not in only_b
    assert 'id="log-' not in s.get(d.url("/ui/?number=%2B15550000000"), timeout=5).text


def test_story_shows_every_row_and_provider_errors_in_words(make_daemon):
    d, s, _ = logged_in(make_daemon)
    now = time.time()
    rows = d.run(d.daemon.store.logs.create_trigger({"created_at": now, "source": "t"}, [
        Notification(to="+15551230001", type="call", message="x", params={}, status="failed",
                     error={"code": 21211, "message": "The 'To' number is not valid."}),
        Notification(to="+15551230002", type="sms", message="x", params={}, status="silenced",
                     silence_id="sil_abc", step=1)], now))
    page = s.get(d.url(f"/ui/triggers/{rows[0].trigger_id}"), timeout=5).text
    assert "21211: invalid &#39;To&#39; number" in page and "sil_abc" in page and "escalation step 1" in page
    assert s.get(d.url("/ui/triggers/999"), timeout=5).status_code == 404


def test_acknowledge_from_the_dashboard(make_daemon):
    d, s, csrf = logged_in(make_daemon, {"provider": {"simulate_press": False}})
    log_id = d.notify({"to": "+15551234567", "message": "x", "gather": True}).json()["calls"][0]["log_id"]
    r = s.post(d.url(f"/ui/logs/{log_id}/ack"), data={"csrf": csrf, "next": "/ui/"}, timeout=5)
    assert r.url.endswith("/ui/")
    assert d.run(d.daemon.store.logs.get(log_id))["acknowledged_by"] == "dashboard:ops"


def test_events_stream_sends_new_rows(make_daemon):
    d, s, _ = logged_in(make_daemon)
    assert requests.get(d.url("/ui/events"), timeout=5).status_code == 401
    with s.get(d.url("/ui/events?after=0"), stream=True, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        d.notify({"to": "+15551234567", "message": "live one"})
        started = time.monotonic()
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                assert msg["id"] == 1 and "live one" in msg["html"]
                break
        assert time.monotonic() - started < 2


def test_rules_page_shows_load_errors_with_file_and_line(make_daemon, tmp_path):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "bad.yaml").write_text("rules:\n  - id: door\n    tmeplate: nope\n")
    d, s, _ = logged_in(make_daemon)
    page = s.get(d.url("/ui/rules"), timeout=5).text
    assert "rules/bad.yaml:3: rule &#39;door&#39;: unknown key &#39;tmeplate&#39;" in page


def test_add_and_end_a_silence(make_daemon):
    d, s, csrf = logged_in(make_daemon)
    r = s.post(d.url("/ui/silences"), data={"csrf": csrf, "matcher": "to", "value": "5551234567",
                                             "duration": "1h", "reason": "testing"}, timeout=5)
    assert "to = +15551234567" in r.text
    ((sid,),) = d.query("SELECT silence_id FROM silences")
    bad = s.post(d.url("/ui/silences"), data={"csrf": csrf, "matcher": "to", "value": "x", "duration": "1h",
                                               "reason": "r"}, timeout=5)
    assert bad.status_code == 400
    s.post(d.url(f"/ui/silences/{sid}/end"), data={"csrf": csrf}, timeout=5)
    assert sid not in s.get(d.url("/ui/silences"), timeout=5).text


def test_log_filters_by_time_range_in_the_config_timezone(make_daemon):
    d, s, _ = logged_in(make_daemon)
    d.notify({"to": "+15551234567", "message": "now"})
    assert 'id="log-1"' in s.get(d.url("/ui/?since=2000-01-01T00:00"), timeout=5).text
    assert 'id="log-1"' not in s.get(d.url("/ui/?until=2000-01-01T00:00"), timeout=5).text
    assert 'id="log-1"' in s.get(d.url("/ui/?since=not-a-time"), timeout=5).text


def test_on_call_now_and_next_handoffs(make_daemon):
    d, s, _ = logged_in(make_daemon, {"rotations": {"primary": {
        "members": ["oncall_primary", "oncall_secondary"], "shift": "1d", "start": "2026-01-05T09:00"}}})
    page = s.get(d.url("/ui/silences"), timeout=5).text
    assert "<strong>primary</strong>" in page and "next: " in page
    assert "oncall_primary" in page and "oncall_secondary" in page


def test_story_lists_every_status_callback_with_its_time_and_error_codes_in_words(make_daemon, fake_twilio):
    clock = FakeClock(datetime(2026, 3, 2, 15, 0, 1, tzinfo=timezone.utc))  # 10:00:01 in New York
    d, s, _ = logged_in(make_daemon, twilio_overrides(fake_twilio), clock=clock)
    call = d.notify({"to": "+15551234567", "message": "x", "action_type": "both"}).json()["calls"][0]
    for status, at in (("initiated", 1), ("ringing", 3), ("in-progress", 9), ("completed", 31)):
        clock.set(datetime(2026, 3, 2, 15, 0, at, tzinfo=timezone.utc))
        fake_twilio.complete_call(call["call_sid"], status)
    fake_twilio.sms_status(call["sms_sid"], "undelivered", ErrorCode="30003")
    page = s.get(d.url("/ui/triggers/1"), timeout=5).text
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert ("Call callbacks initiated 10:00:01 ringing 10:00:03 in-progress 10:00:09 completed 10:00:31"
            " SMS callbacks undelivered 10:00:31 ✗ 30003: unreachable handset") in text, text


def test_the_live_stream_ends_when_its_session_is_logged_out(make_daemon):
    import threading
    import time

    d, s, csrf = logged_in(make_daemon)
    opened, ended = threading.Event(), threading.Event()

    def listen():
        with s.get(d.url("/ui/events"), stream=True, timeout=30) as r:
            if r.status_code == 200:
                opened.set()
            for _ in r.iter_lines():
                pass
        ended.set()
    threading.Thread(target=listen, daemon=True).start()
    assert opened.wait(10), "the stream did not open"
    assert not ended.is_set()  # the stream runs while the session lives
    s.post(d.url("/ui/logout"), data={"csrf": csrf}, timeout=5)
    assert ended.wait(5), "the stream outlived the session"
