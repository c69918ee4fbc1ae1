"""The simulator plays an inbound call (make run: no Twilio account needed), on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone

import requests

from alertd.clock import FakeClock
from conftest import CALLER_ID, both_backends

ROTATIONS = {"ops": {"members": ["oncall_primary", "oncall_secondary"], "shift": "1w", "start": "2026-01-05T09:00"}}
INBOUND = {CALLER_ID: {"rotation": "ops", "then": ["manager"], "voicemail": {"transcribe": True}}}

pytestmark = both_backends


def simulated(d, **body):
    return d.api.post(d.url("/api/v1/simulator/inbound"), json=body, timeout=10)


def make(make_daemon):
    clock = FakeClock(datetime(2026, 1, 7, 17, 0, tzinfo=timezone.utc))  # oncall_primary's week
    return make_daemon({"rotations": ROTATIONS, "inbound": INBOUND}, clock=clock)


def test_a_simulated_call_is_answered_by_whoever_is_on_call(make_daemon):
    d = make(make_daemon)
    r = simulated(d, **{"from": "555-999-8888"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "answered" and len(body["twiml"]) == 2
    assert body["message"] == "Inbound call from +15559998888: answered by ops: oncall_primary (+15551230002), 30 s"
    log = d.api.get(d.url(f"/api/v1/calls/logs/{body['log_id']}"), timeout=10).json()["log"]
    assert (log["source"], log["status"]) == ("inbound", "answered")


def test_a_simulated_call_nobody_answers_leaves_a_voicemail_that_texts_the_rotation(make_daemon):
    d = make(make_daemon)
    r = simulated(d, answer="nobody", message="The loading dock door is stuck open.")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "voicemail" and body["voicemail_trigger_id"] is not None
    assert [doc.count("<Dial") for doc in body["twiml"]] == [1, 1, 0, 0]  # ops, manager, voicemail, goodbye
    sent = d.daemon.provider.sent
    assert [(o.channel, o.to) for o in sent] == [("sms", "+15551230002")]
    assert "The loading dock door is stuck open." in sent[0].message
    link = sent[0].message.split("Listen: ")[1].split("\n")[0]
    heard = requests.get(link, timeout=10)  # the simulator's recordings are a second of silence
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    assert heard.content.startswith(b"RIFF")


def test_the_fallback_named_in_answer_takes_the_call(make_daemon):
    d = make(make_daemon)
    body = simulated(d, answer="manager").json()
    assert body["status"] == "answered" and "answered by manager (+15551230001)" in body["message"]


def test_bad_simulation_requests_are_refused_with_the_field(make_daemon):
    d = make(make_daemon)
    r = simulated(d, to="+15550000000")
    assert r.status_code == 400 and r.json()["error"].startswith("to: +15550000000 is not one of the inbound numbers")
    r = simulated(d, answr="nobody")
    assert (r.status_code, r.json()["error"]) == (400, "answr: Extra inputs are not permitted")
    assert d.api.post(d.url("/api/v1/simulator/inbound"), json={}, timeout=10,
                      headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_dashboard_shows_inbound_calls_in_the_log_but_not_as_notifications(make_daemon):
    from test_ui_glance import counts
    from test_ui_pages import logged_in
    clock = FakeClock(datetime(2026, 1, 7, 17, 0, tzinfo=timezone.utc))
    d, s, _ = logged_in(make_daemon, {"rotations": ROTATIONS, "inbound": INBOUND}, clock=clock)
    body = simulated(d).json()
    page = s.get(d.url("/ui/?source=inbound"), timeout=5).text
    assert f'id="log-{body["log_id"]}"' in page and "answered" in page
    trigger_id = d.run(d.daemon.store.logs.get(body["log_id"]))["trigger_id"]
    story = s.get(d.url(f"/ui/triggers/{trigger_id}"), timeout=5)
    assert story.status_code == 200 and "answered by ops: oncall_primary" in story.text
    assert counts(s.get(d.url("/ui/glance"), timeout=5).text, "day-2026-01-07") == {"all": 0}


def test_a_simulated_group_member_picks_up_and_is_named(make_daemon):
    inbound = {CALLER_ID: {"group": "oncall"}}
    d = make_daemon({"inbound": inbound})
    body = simulated(d, answer="oncall_secondary").json()
    assert body["message"] == ("Inbound call from +15550001111: answered by group oncall: oncall_secondary"
                               " (+15551230003), 30 s")
