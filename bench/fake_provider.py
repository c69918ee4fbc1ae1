"""tests/fake_twilio.FakeTwilio as its own process, steered over stdin/stdout.

tests/fake_twilio.py's own __main__ has no latency setting and no way to hand
back arrival times, so the benchmarks use this launcher instead. It prints
one JSON line {"base_url", "account_sid", "auth_token", "pid"} when ready,
then answers one JSON line per command line on stdin:

    latency SECONDS   every create request waits this long before answering
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

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_twilio import FakeTwilio  # noqa: E402


def main() -> int:
    try:  # the same loop alertd and the yardstick run on; FakeTwilio makes its loop from the policy
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
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
