"""kill -9 while the first provider hangs, in the middle of a failover: the
restarted daemon sends the notification through the backup, once.

A real `alertd run` with Twilio first (FakeTwilio, told to answer this
recipient after 120 s, then 503) and Telnyx second (FakeTelnyx). The notify
request is stored, its first attempt hangs on Twilio, and the daemon is
killed. The next daemon finds the item in the outbox, asks Twilio again
(503 now), fails over to Telnyx at once, and nothing is lost or sent twice.
"""
from __future__ import annotations

import threading
import time

import requests

from daemon_process import DaemonProcess
from fake_telnyx import FakeTelnyx
from test_failover import TO, providers


def test_a_kill_in_the_middle_of_a_failover_loses_nothing(tmp_path, fake_twilio):
    fake_twilio.script(TO, [("timeout", 120), ("http", 503)])
    with FakeTelnyx() as telnyx:
        d = DaemonProcess(tmp_path, providers(fake_twilio.base_url, telnyx, timeout="60s"))
        try:
            d.start()
            answered: list = []

            def send():
                try:
                    answered.append(requests.post(d.base_url + "/api/v1/calls/notify", headers=d.headers,
                                                  json={"to": TO, "message": "Pump failed"}, timeout=90))
                except requests.RequestException as exc:
                    answered.append(exc)

            client = threading.Thread(target=send)
            client.start()
            deadline = time.monotonic() + 20
            while fake_twilio._inflight == 0:  # the first attempt is waiting on Twilio
                assert time.monotonic() < deadline, "the first attempt never reached Twilio"
                time.sleep(0.02)
            d.kill9()
            client.join(30)
            assert isinstance(answered[0], requests.RequestException)  # the client never heard back
            assert d.pending() == 1  # but the row and its outbox item were stored before the attempt
            d.start()
            d.wait_drained()
            (call,) = telnyx.wait_for(1, "call")
            assert call.body["To"] == TO
            (row,) = d.query("SELECT call_provider, status FROM logs")
            assert tuple(row) == ("tx", "initiated")
            assert fake_twilio.calls == []
        finally:
            d.stop()
