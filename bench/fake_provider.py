"""A fake provider from tests/ (FakeTwilio by default; --kind telnyx, vonage,
plivo or signalwire for the others) as its own process, steered over stdin/stdout.

tests/fake_twilio.py's own __main__ has no latency setting and no way to hand
back arrival times, so the benchmarks use this launcher instead. It prints
one JSON line {"base_url", "pid", and the kind's credentials} when ready,
then answers one JSON line per command line on stdin:

    latency SECONDS   every create request waits this long before answering (twilio only)
    concurrency N     answer 429 (Retry-After: 1) beyond N requests in flight; 0: no limit
    created           {"created": {To: [[kind, monotonic arrival, Body or Twiml], ...]},
                       "outcomes": {outcome: n}} (created resources; outcomes of every request)
    reset             forget recorded requests (latency goes back to 0)
    arrivals          {"arrivals": {To: [monotonic arrival, ...]}, "count": n}
    count             {"count": n} (requests received since the last reset)
    quit              stop

Arrival times are time.monotonic(): CLOCK_MONOTONIC is system-wide on Linux,
so they compare with the load generator's time.monotonic() in another process.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_twilio import FakeTwilio  # noqa: E402


def other(kind: str):
    """A fake of another provider: (the fake, its credentials for alertd's config)."""
    if kind == "telnyx":
        from fake_telnyx import FakeTelnyx
        fake = FakeTelnyx().start()
        return fake, {"api_key": fake.api_key, "public_key": fake.public_key, "application_id": fake.application_id}
    if kind == "vonage":
        from fake_vonage import FakeVonage
        fake = FakeVonage().start()
        return fake, {"application_id": fake.application_id, "private_key": fake.private_key_pem,
                      "signature_secret": fake.signature_secret}
    if kind == "plivo":
        from fake_plivo import FakePlivo
        fake = FakePlivo().start()
        return fake, {"auth_id": fake.auth_id, "auth_token": fake.auth_token}
    from fake_signalwire import FakeSignalWire
    fake = FakeSignalWire().start()
    return fake, {"project_id": fake.account_sid, "api_token": fake.auth_token, "signing_key": fake.signing_key}


def serve_other(kind: str) -> int:
    """The commands reset, arrivals, count and quit for a fake other than FakeTwilio."""
    fake, creds = other(kind)
    if kind == "signalwire":  # FakeTwilio underneath: its own request list
        fake.arrivals = lambda: {str(r.form.get("To", "")): [r.time] for r in list(fake.requests)}
    print(json.dumps({"base_url": fake.base_url, "pid": os.getpid(), **creds}), flush=True)
    try:
        for line in sys.stdin:
            cmd = line.strip().partition(" ")[0]
            if cmd == "reset":
                fake.reset()
                out = {"ok": True}
            elif cmd in ("arrivals", "count"):
                arrivals = fake.arrivals()
                out = {"arrivals": arrivals, "count": sum(len(v) for v in arrivals.values())}
            elif cmd == "quit":
                print(json.dumps({"ok": True}), flush=True)
                break
            else:
                out = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(out), flush=True)
    finally:
        fake.stop()
    return 0


def main() -> int:
    try:  # the same loop alertd and the yardstick run on; FakeTwilio makes its loop from the policy
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="twilio", choices=("twilio", "telnyx", "vonage", "plivo", "signalwire"))
    kind = ap.parse_args().kind
    if kind != "twilio":
        return serve_other(kind)
    fake = FakeTwilio().start()

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"base_url": fake.base_url, "account_sid": fake.account_sid, "auth_token": fake.auth_token,
           "pid": os.getpid()})
    try:
        for line in sys.stdin:  # ends when the parent closes our stdin or dies
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "latency":
                fake.latency = float(arg)
                reply({"ok": True})
            elif cmd == "concurrency":
                fake.max_concurrent = int(arg) or None
                reply({"ok": True})
            elif cmd == "created":
                created: dict[str, list] = {}
                outcomes: dict[str, int] = {}
                for r in list(fake.requests):
                    outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
                    if r.sid:
                        text = r.form.get("Body") if r.kind == "sms" else r.form.get("Twiml")
                        created.setdefault(str(r.form.get("To", "")), []).append([r.kind, r.time, text])
                reply({"created": created, "outcomes": outcomes})
            elif cmd == "reset":
                fake.reset()
                reply({"ok": True})
            elif cmd == "arrivals":
                arrivals: dict[str, list[float]] = {}
                for r in list(fake.requests):
                    arrivals.setdefault(str(r.form.get("To", "")), []).append(r.time)
                reply({"arrivals": arrivals, "count": len(fake.requests)})
            elif cmd == "count":
                reply({"count": len(fake.requests)})
            elif cmd == "quit":
                reply({"ok": True})
                break
            else:
                reply({"error": f"unknown command {cmd!r}"})
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
