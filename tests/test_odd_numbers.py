"""Numbers Python cannot take as they come: JSON integers of more than 4,300
digits (int() refuses them), digits that are not ASCII ("²".isdigit() is True,
int("²") raises) and integers past SQLite's 64 bits. Each gets the 400
envelope (or is ignored where the provider sent it), never a 500.
"""
from __future__ import annotations

import socket
from urllib.parse import quote

import pytest

from conftest import twilio_overrides

HUGE = "9" * 5000
NUMBER = "+15551234567"
RULE = """
rules:
  - id: door
    source: {webhook: door}
    notify: {to: [manager], message: "Door {{ event.state }}", action_type: sms}
"""


@pytest.fixture
def d(make_daemon, fake_twilio, tmp_path):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "door.yaml").write_text(RULE)
    d = make_daemon(twilio_overrides(fake_twilio))
    d.fake = fake_twilio
    return d


def assert_400(r) -> dict:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["ok"] is False and body["code"] == 400 and "4300" in body["error"], body
    return body


@pytest.mark.parametrize("path, body", [
    ("/api/v1/calls/notify", '{"to": "+15551234567", "message": "x", "repeat": %s}'),
    ("/api/v1/calls/notify", '{"to": %s, "message": "x"}'),
    ("/api/v1/calls/templates", '{"name": "t", "message": "x", "repeat": %s}'),
    ("/api/v1/silences", '{"to": %s, "duration": "1h", "reason": "x"}'),
    ("/api/v1/silences", '{"rule_id": "door", "duration": %s, "reason": "x"}'),
    ("/hooks/door", '{"state": %s}'),
])
def test_a_json_integer_of_more_than_4300_digits_is_a_400(d, path, body):
    r = d.api.post(d.url(path), data=body % HUGE, headers={"Content-Type": "application/json"}, timeout=10)
    assert_400(r)


def test_a_huge_integer_in_a_dashboard_dry_run_is_an_error_on_the_page(d):
    from test_ui_auth import add_user, csrf_of, login
    add_user(d)
    s, r = login(d)
    page = s.post(d.url("/ui/rules/dry-run"), data={"csrf": csrf_of(r.text), "rule": "door",
                                                    "event": '{"state": %s}' % HUGE}, timeout=10)
    assert page.status_code == 400 and "event: not JSON" in page.text


@pytest.mark.parametrize("log_id", ["²", "1²", "٣", "99999999999999999999", HUGE])
def test_a_callback_log_id_that_is_no_row_id_is_a_400(d, log_id):
    for path in ("/twilio/status", "/twilio/gather", "/twilio/twiml"):
        # signed as Twilio signs: the URL it was given, percent-encoded
        status, text = d.fake.post_signed(d.url(f"{path}?log_id={quote(log_id)}"),
                                          {"CallSid": "CA1", "CallStatus": "busy"})
        assert status == 400, (path, log_id, text)
        assert '"code":400' in text.replace(" ", "")


@pytest.mark.parametrize("code", ["²", "٣٠٠٠٣", "99999999999999999999", HUGE])
def test_an_error_code_that_is_no_number_is_ignored_not_a_500(d, code):
    r = d.notify({"to": NUMBER, "message": "x"})
    call = r.json()["calls"][0]
    status, text = d.fake.post_signed(d.url(f"/twilio/status?log_id={call['log_id']}"),
                                      {"CallSid": call["call_sid"], "CallStatus": "failed", "ErrorCode": code})
    assert status == 200, text
    history = d.daemon.store.conn.execute("SELECT status, error_code FROM status_callbacks WHERE log_id = ?",
                                          (call["log_id"],)).fetchall()
    assert [(h["status"], h["error_code"]) for h in history] == [("failed", None)]


def test_a_content_length_of_thousands_of_digits_is_a_413_not_a_crash(d):
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    try:
        sock.sendall(b"POST /api/v1/calls/notify HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     + HUGE.encode() + b"\r\n\r\n")
        answer = sock.recv(65536)
    finally:
        sock.close()
    assert answer.split(b" ", 2)[1] in (b"400", b"413"), answer[:300]
