"""The Twilio provider makes the very requests the library's ``client.calls.create_async`` and
``client.messages.create_async`` make, and reads their answers the same way.

alertd/providers/twilio.py sends through the library's client, API domain and 2010-04-01
version instead of through ``client.calls``/``client.messages`` (which load the resource
classes of the whole account tree). Here both ways send the same thing to the fake Twilio
(and the fake SignalWire, whose LaML API is the same shape under /api/laml), over the same
HTTP layer, and the requests that arrive are compared: path, every header, the body's bytes.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client

from alertd.providers import Outgoing, ProviderError
from alertd.providers.signalwire import SignalWireProvider
from alertd.providers.twilio import TwilioProvider, call_twiml
from alertd.providers.twilio_http import HttpClient
from fake_signalwire import FakeSignalWire
from fake_twilio import FakeTwilio

FROM = "+15005550006"
EVENTS = ["initiated", "ringing", "answered", "completed"]
LONG = "Disk full on db1, " * 300  # TwiML over the 4,000 characters sent inline

CASES = {
    "call, press 1, callbacks": Outgoing(
        log_id=7, channel="call", to="+15551230001", from_=FROM, message="Door 3 open & alarm <on>",
        gather=True, status_callback="https://alertd.example/twilio/status?log_id=7&t=a b",
        gather_action="https://alertd.example/twilio/gather?log_id=7", repeat=2, language="de-DE"),
    "call, answering machines, no callback": Outgoing(
        log_id=8, channel="call", to="+15551230002", from_=FROM, message="Backup failed", machine_detection=True),
    "call, answering machines, callbacks": Outgoing(
        log_id=13, channel="call", to="+15551230007", from_=FROM, message="Backup failed", machine_detection=True,
        status_callback="https://alertd.example/twilio/status?log_id=13"),
    "call, TwiML too long, fetched": Outgoing(
        log_id=9, channel="call", to="+15551230003", from_=FROM, message=LONG,
        status_callback="https://alertd.example/twilio/status?log_id=9",
        twiml_url="https://alertd.example/twilio/twiml?log_id=9"),
    "call, TwiML too long, nowhere to fetch it": Outgoing(
        log_id=10, channel="call", to="+15551230004", from_=FROM, message=LONG),
    "sms with a callback": Outgoing(
        log_id=11, channel="sms", to="+15551230005", from_=FROM, message="Ünïcode, & and = and +",
        status_callback="https://alertd.example/twilio/status?log_id=11"),
    "sms": Outgoing(log_id=12, channel="sms", to="+15551230006", from_=FROM, message="Server down"),
}


async def by_library(client: Client, out: Outgoing) -> str:
    """The send as the library's resource lists make it: what the provider did before."""
    if out.channel == "sms":
        kwargs = {"to": out.to, "from_": out.from_, "body": out.message}
        if out.status_callback:
            kwargs["status_callback"] = out.status_callback
        return (await client.messages.create_async(**kwargs)).sid
    kwargs = {"to": out.to, "from_": out.from_}
    twiml = call_twiml(out)
    if len(twiml) <= 4000 or not out.twiml_url:
        kwargs["twiml"] = twiml
    else:
        kwargs["url"] = out.twiml_url
    if out.status_callback:
        kwargs["status_callback"] = out.status_callback
        kwargs["status_callback_event"] = EVENTS
    if out.machine_detection:
        kwargs["machine_detection"] = "Enable"
    return (await client.calls.create_async(**kwargs)).sid


def library_client(fake: FakeTwilio, base_url: str) -> Client:
    client = Client(fake.account_sid, fake.auth_token, http_client=HttpClient(10, 10))
    client.api.base_url = base_url
    client.edge = client.region = None
    return client


def both_ways(provider, fake: FakeTwilio, base_url: str, outs: list[Outgoing]):
    """Each send once through the provider, then once through the library; the sids and the requests."""
    async def main():
        await provider.start()
        client = library_client(fake, base_url)
        try:
            got = []
            for out in outs:
                ours = await provider.send(out)
                theirs = await by_library(client, out)
                got.append((ours, theirs))
            return got
        finally:
            await provider.close()
            await client.http_client.close()
    sids = asyncio.run(main())
    return sids, fake.requests


def same_requests(sids, requests, n: int) -> None:
    assert len(requests) == 2 * n
    for i, (ours, theirs) in enumerate(sids):
        a, b = requests[2 * i], requests[2 * i + 1]
        assert (ours, theirs) == (a.sid, b.sid) and ours and theirs and ours != theirs
        assert a.path == b.path
        assert a.raw_headers == b.raw_headers  # names, values, order
        assert a.body == b.body
        assert a.form == b.form


@pytest.mark.parametrize("case", list(CASES))
def test_the_provider_sends_what_the_library_sends(case):
    out = CASES[case]
    with FakeTwilio() as fake:
        provider = TwilioProvider(fake.account_sid, fake.auth_token, fake.base_url)
        sids, requests = both_ways(provider, fake, fake.base_url, [out])
        same_requests(sids, requests, 1)
        request = requests[0]
        assert request.path == f"/2010-04-01/Accounts/{fake.account_sid}/" + (
            "Messages.json" if out.channel == "sms" else "Calls.json")
        assert request.form["To"] == out.to and request.form["From"] == FROM
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"].startswith("twilio-python/")
        if out.channel == "call":
            assert ("Url" in request.form) == (case == "call, TwiML too long, fetched")
            assert ("MachineDetection" in request.form) == out.machine_detection
            assert request.form.get("StatusCallbackEvent") == (EVENTS if out.status_callback else None)
        else:
            assert request.form["Body"] == out.message


def test_signalwire_sends_what_the_library_sends_to_its_laml_api(monkeypatch):
    outs = list(CASES.values())
    # Twilio's edge and region settings are the library's, read from the environment; they must
    # not rename SignalWire's host (the library's own client below gets them cleared by hand)
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    with FakeSignalWire() as fake:
        provider = SignalWireProvider(fake.account_sid, fake.auth_token, fake.signing_key, fake.base_url)
        sids, requests = both_ways(provider, fake, fake.base_url + "/api/laml", outs)
        same_requests(sids, requests, len(outs))
        assert requests[0].path == f"/api/laml/2010-04-01/Accounts/{fake.account_sid}/Calls.json"


def refused_both_ways(out: Outgoing, outcome: tuple, library_raises: type[Exception]):
    """The fake refuses ``out`` with ``outcome``, once to the provider, once to the library:
    (the provider's ProviderError, the library's exception, the two requests)."""
    with FakeTwilio() as fake:
        fake.script(out.to, [outcome, outcome])
        provider = TwilioProvider(fake.account_sid, fake.auth_token, fake.base_url)

        async def main():
            await provider.start()
            client = library_client(fake, fake.base_url)
            try:
                with pytest.raises(ProviderError) as ours:
                    await provider.send(out)
                with pytest.raises(library_raises) as theirs:
                    await by_library(client, out)
                return ours.value, theirs.value
            finally:
                await provider.close()
                await client.http_client.close()
        ours, theirs = asyncio.run(main())
        return ours, theirs, fake.requests


@pytest.mark.parametrize("outcome, code, status, permanent, retry_after", [
    (("error", 21211), 21211, 400, True, None),
    (("http", 429, 3), 20429, 429, False, 3.0),
    (("http", 503), 20500, 503, False, None),
])
def test_a_refusal_is_read_as_the_library_reads_it(outcome, code, status, permanent, retry_after):
    ours, theirs, (a, b) = refused_both_ways(CASES["call, press 1, callbacks"], outcome, TwilioRestException)
    assert (a.path, a.raw_headers, a.body) == (b.path, b.raw_headers, b.body)
    assert (theirs.code, theirs.status) == (code, status)
    assert (ours.code, ours.status, ours.permanent, ours.retry_after) == (code, status, permanent, retry_after)
    assert theirs.msg == "Unable to create record: " + ours.message


@pytest.mark.parametrize("status, code, permanent", [(400, 21211, True), (503, 20503, False), (429, 20429, False)])
def test_a_refusal_in_rfc_9457_shape_is_read_as_a_refusal(status, code, permanent):
    """The library raises TwilioServiceException, no TwilioRestException, for an answer with type,
    title, status and code: the provider reads it as Twilio's refusal (a permanent 4xx fails at
    once), not as an adapter's bug (retried up to max_attempts)."""
    out = CASES["sms with a callback"]
    ours, theirs, _ = refused_both_ways(out, ("problem", status, code), TwilioServiceException)
    assert (theirs.status, theirs.code) == (status, code)
    assert (ours.status, ours.code, ours.permanent) == (status, code, permanent)
    assert ours.message == f"The 'To' number {out.to} is refused."


def test_a_started_and_used_provider_leaves_the_account_tree_unloaded(tmp_path):
    """What the change is for: the resource classes of the account tree (about 7 MiB) are never imported."""
    script = tmp_path / "send.py"
    script.write_text(
        "import asyncio, sys\n"
        "from alertd.providers import Outgoing\n"
        "from alertd.providers.twilio import TwilioProvider\n"
        "from fake_twilio import FakeTwilio\n"
        "async def main(fake):\n"
        "    p = TwilioProvider(fake.account_sid, fake.auth_token, fake.base_url)\n"
        "    await p.start()\n"
        "    for channel in ('call', 'sms'):\n"
        "        sid = await p.send(Outgoing(log_id=1, channel=channel, to='+15551230001', from_='+15005550006',\n"
        "                                    message='hello', status_callback='https://a.example/s'))\n"
        "        assert sid[:2] in ('CA', 'SM'), sid\n"
        "    await p.close()\n"
        "with FakeTwilio() as fake:\n"
        "    asyncio.run(main(fake))\n"
        "    assert len(fake.calls) == 1 and len(fake.messages) == 1\n"
        "print(sorted(m for m in sys.modules if m.startswith('twilio.rest.api')))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])])}
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", str(script)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
