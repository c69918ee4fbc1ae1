"""The reference's own examples (../shared/reference/audovo-api.md), run against alertd.

The only changes: the base URL, the key, and for curl the line breaks after
each backslash, which the reference's text lost (``\\ -H`` on one line would
pass " -H" as an argument). They run through the real twilio library against
FakeTwilio, so the sids printed are the ones "Twilio" issued.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

REFERENCE_BASE = "https://audovo.com/api/v1"
REFERENCE_KEY = "ak_live_YOUR_KEY"

CURL_CALL_ONLY = """curl -X POST https://audovo.com/api/v1/calls/notify \\ -H 'Authorization: Bearer ak_live_YOUR_KEY' \\ -H 'Content-Type: application/json' \\ -d '{"to":"+15551234567","message":"Alert: No staff have clocked in.","source":"timeclock"}'"""  # noqa: E501
CURL_CALL_AND_SMS = """curl -X POST https://audovo.com/api/v1/calls/notify \\ -H 'Authorization: Bearer ak_live_YOUR_KEY' \\ -H 'Content-Type: application/json' \\ -d '{ "to": ["+15551234567", "+15559876543"], "message": "Emergency: Server room temperature exceeded threshold.", "action_type": "both", "repeat": 2, "gather": true, "source": "server_monitor" }'"""  # noqa: E501
CURL_LIST_TEMPLATES = """curl https://audovo.com/api/v1/calls/templates \\
-H 'Authorization: Bearer ak_live_YOUR_KEY'"""
CURL_CREATE_TEMPLATE = """curl -X POST https://audovo.com/api/v1/calls/templates \\ -H 'Authorization: Bearer ak_live_YOUR_KEY' \\ -H 'Content-Type: application/json' \\ -d '{ "name": "No Staff Clocked In", "message": "Alert: No staff have clocked in. Please call your manager immediately.", "action_type": "both", "voice": "alice", "repeat": 2, "gather": true }'"""  # noqa: E501
CURL_DELETE_TEMPLATE = """curl -X POST https://audovo.com/api/v1/calls/templates \\ -H 'Authorization: Bearer ak_live_YOUR_KEY' \\ -H 'Content-Type: application/json' \\ -d '{"action":"delete","template_id":"tpl_a3f8b2c1d4e5"}'"""  # noqa: E501
QUICKSTART_TEMPLATE = """curl -X POST https://audovo.com/api/v1/calls/templates \\ -H 'Authorization: Bearer ak_live_YOUR_KEY' \\ -H 'Content-Type: application/json' \\ -d '{"name":"Test Alert","message":"This is a test. Your alert system is working correctly.","gather":true}'"""  # noqa: E501
QUICKSTART_TRIGGER = """curl -X POST https://audovo.com/api/v1/calls/notify \\ -H 'Authorization: Bearer ak_live_YOUR_KEY' \\ -H 'Content-Type: application/json' \\ -d '{"template_id":"tpl_YOUR_ID","to":"+1YOUR_NUMBER","source":"quickstart"}'"""  # noqa: E501
CURL_CODE_EXAMPLE = """curl -X POST https://audovo.com/api/v1/calls/notify \\ -H 'Authorization: Bearer ak_live_YOUR_KEY' \\ -H 'Content-Type: application/json' \\ -d '{ "to": "+15551234567", "message": "Alert: No staff have clocked in at your location.", "action_type": "both", "repeat": 2, "gather": true, "source": "my_timeclock_system" }'"""  # noqa: E501

PYTHON_EXAMPLE = """\
import requests
response = requests.post(
    "https://audovo.com/api/v1/calls/notify",
    headers={"Authorization": "Bearer ak_live_YOUR_KEY"},
    json={
        "to": "+15551234567",
        "message": "Alert: No staff have clocked in.",
        "action_type": "both",
        "source": "timeclock_system",
    }
)
data = response.json()
print(data["calls"][0]["call_sid"])
"""

NODE_EXAMPLE = """\
const res = await fetch('https://audovo.com/api/v1/calls/notify', {
  method: 'POST',
  headers: {
    'Authorization': 'Bearer ak_live_YOUR_KEY',
    'Content-Type': 'application/json',
  },
  body: JSON.stringify({
    to: '+15551234567',
    message: 'Alert: No staff have clocked in.',
    action_type: 'both',
    source: 'timeclock_system',
  }),
});
const data = await res.json();
console.log(data.calls[0].call_sid);
"""

PHP_EXAMPLE = """\
<?php
$ch = curl_init('https://audovo.com/api/v1/calls/notify');
curl_setopt_array($ch, [
  CURLOPT_RETURNTRANSFER => true,
  CURLOPT_POST => true,
  CURLOPT_POSTFIELDS => json_encode([
    'to' => '+15551234567',
    'message' => 'Alert: No staff have clocked in.',
    'action_type' => 'both',
    'source' => 'timeclock_system',
  ]),
  CURLOPT_HTTPHEADER => [
    'Authorization: Bearer ak_live_YOUR_KEY',
    'Content-Type: application/json',
  ],
]);
$data = json_decode(curl_exec($ch), true);
curl_close($ch);
echo $data['calls'][0]['call_sid'];
"""


def localise(text: str, d) -> str:
    return text.replace(REFERENCE_BASE, d.url("/api/v1")).replace(REFERENCE_KEY, d.key)


def run_curl(example: str, d, **swap: str) -> dict:
    if shutil.which("curl") is None:
        pytest.skip("the curl binary is not installed")
    command = localise(example, d).replace(" \\ ", " \\\n  ")
    for old, new in swap.items():
        command = command.replace(old, new)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_program(argv: list[str], source: str, tmp_path, suffix: str) -> str:
    path = tmp_path / f"example{suffix}"
    path.write_text(source)
    done = subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_curl_call_only(twilio_daemon):
    body = run_curl(CURL_CALL_ONLY, twilio_daemon)
    assert body["ok"] is True
    (call,) = body["calls"]
    assert call == {"to": "+15551234567", "type": "call", "call_sid": twilio_daemon.fake.calls[0].sid,
                    "status": "initiated", "log_id": call["log_id"]}


def test_curl_call_and_sms_to_two_numbers(twilio_daemon):
    fake = twilio_daemon.fake
    body = run_curl(CURL_CALL_AND_SMS, twilio_daemon)
    assert [(c["to"], c["type"], c["status"]) for c in body["calls"]] == [
        ("+15551234567", "both", "initiated"), ("+15559876543", "both", "initiated")]
    assert {c["call_sid"] for c in body["calls"]} == {c.sid for c in fake.calls}
    assert {c["sms_sid"] for c in body["calls"]} == {m.sid for m in fake.messages}
    twiml = ET.fromstring(fake.calls[0].form["Twiml"])
    assert twiml.find("Gather/Say").get("loop") == "2"
    assert {m.form["Body"] for m in fake.messages} == {"Emergency: Server room temperature exceeded threshold."}


def test_curl_templates_create_list_and_delete(twilio_daemon):
    created = run_curl(CURL_CREATE_TEMPLATE, twilio_daemon)
    assert created["ok"] is True and created["name"] == "No Staff Clocked In"
    listed = run_curl(CURL_LIST_TEMPLATES, twilio_daemon)
    assert [t["template_id"] for t in listed["templates"]] == [created["template_id"]]

    # the delete example names a fixed id: give alertd a template with that id
    twilio_daemon.on_loop(twilio_daemon.daemon.store.templates.create, "tpl_a3f8b2c1d4e5", "From the docs",
                          {"message": "m"}, time.time())
    deleted = run_curl(CURL_DELETE_TEMPLATE, twilio_daemon)
    assert deleted["ok"] is True
    again = run_curl(CURL_DELETE_TEMPLATE, twilio_daemon)
    assert again == {"ok": False, "error": "Template not found: tpl_a3f8b2c1d4e5", "code": 404}


def test_the_quickstart_creates_a_template_and_triggers_it(twilio_daemon):
    fake = twilio_daemon.fake
    template = run_curl(QUICKSTART_TEMPLATE, twilio_daemon)
    body = run_curl(QUICKSTART_TRIGGER, twilio_daemon,
                    tpl_YOUR_ID=template["template_id"], **{"+1YOUR_NUMBER": "+15551230001"})
    (call,) = body["calls"]
    assert (call["to"], call["type"], call["status"]) == ("+15551230001", "call", "initiated")
    assert call["call_sid"] == fake.calls[0].sid
    gather = ET.fromstring(fake.calls[0].form["Twiml"]).find("Gather")
    assert gather[0].text == "This is a test. Your alert system is working correctly."
    # "Check the Trigger Log to see it logged"
    log = twilio_daemon.api.get(twilio_daemon.url(f"/api/v1/calls/logs/{call['log_id']}"), timeout=10).json()["log"]
    assert (log["source"], log["template_id"]) == ("quickstart", template["template_id"])


def test_curl_code_example(twilio_daemon):
    (call,) = run_curl(CURL_CODE_EXAMPLE, twilio_daemon)["calls"]
    assert call["type"] == "both" and call["call_sid"] and call["sms_sid"]


def test_the_python_example_prints_the_call_sid(twilio_daemon, tmp_path):
    out = run_program([sys.executable], localise(PYTHON_EXAMPLE, twilio_daemon), tmp_path, ".py")
    assert out == twilio_daemon.fake.calls[0].sid + "\n"
    assert twilio_daemon.fake.messages[0].form["Body"] == "Alert: No staff have clocked in."


def test_the_node_example_prints_the_call_sid(twilio_daemon, tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    out = run_program(["node"], localise(NODE_EXAMPLE, twilio_daemon), tmp_path, ".mjs")  # top-level await
    assert out == twilio_daemon.fake.calls[0].sid + "\n"


def test_the_php_example_prints_the_call_sid(twilio_daemon, tmp_path):
    if shutil.which("php") is None:
        pytest.skip("php is not installed")
    out = run_program(["php"], localise(PHP_EXAMPLE, twilio_daemon), tmp_path, ".php")
    assert out == twilio_daemon.fake.calls[0].sid


def test_a_zapier_payload_with_template_id_and_string_values(twilio_daemon):
    """Webhooks by Zapier send every value as a string."""
    d = twilio_daemon
    tid = d.api.post(d.url("/api/v1/calls/templates"), timeout=10,
                     json={"name": "Zap", "message": "Shift starts in 1 hour."}).json()["template_id"]
    r = d.notify({"template_id": tid, "to": "5551234567", "repeat": "2", "gather": "true", "send_sms": "true",
                  "source": "zapier"})
    assert r.status_code == 200, r.text
    (call,) = r.json()["calls"]
    assert call["type"] == "both" and call["to"] == "+15551234567"
    assert ET.fromstring(d.fake.calls[0].form["Twiml"]).find("Gather/Say").get("loop") == "2"
