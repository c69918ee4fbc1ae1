"""alertd providers list | test NAME --to NUMBER: each configured provider, and one real send through it.

A test send is a row of the trigger log (source ``alertd:providers-test``),
with its outcome and the provider's sid: it shows in ``alertd log``, and
the provider's status callbacks land on it while the daemon runs.
"""
from __future__ import annotations

import sys

from .. import phones
from ..callerid import SIMULATOR_FROM
from ..clock import SystemClock
from ..dispatch.notification import notification
from ..providers import Outgoing, ProviderError
from ..store import StoreError
from .load import load_config, store_of

SOURCE = "alertd:providers-test"


def cmd_providers(args):
    cfg = load_config(args)
    if args.providers_cmd == "list":
        for p in cfg.providers:
            print(f"{p.name:<16} {p.kind:<11} {', '.join(p.numbers) or '-'}")
        return 0
    return _test(cfg, args.name, args.to, args.type)  # a coroutine: main() runs it, then closes its store


async def _test(cfg, name: str, to: str, channel: str) -> int:
    """One SMS or call through provider ``name`` only (no failover); 0 when it accepted it."""
    # the providers' clients (aiohttp, twilio, cryptography) load only for a test send
    from ..dispatch.failover import build

    router = build(cfg, SystemClock())
    member = router.by_name.get(name)
    if member is None:
        print(f"no provider '{name}' (providers: {', '.join(router.by_name)})", file=sys.stderr)
        return 1
    try:
        to = phones.normalize(to)
    except ValueError as exc:
        print(f"--to: {exc}", file=sys.stderr)
        return 1
    from_ = phones.pick_caller_id(member.numbers or cfg.provider.numbers, to, SIMULATOR_FROM)
    message = f"alertd: a test from provider {name}."
    store = await store_of(cfg)
    log_id = await _log_row(store, notification(to, channel, message, from_=from_, status="initiated"))
    out = member.prepare(Outgoing(log_id=log_id, channel=channel, to=to, from_=from_, message=message))
    await member.provider.start()
    try:
        sid = await member.provider.send(out)
    except ProviderError as exc:
        kind = "permanent" if exc.permanent else "transient"
        print(f"{name}: {channel} to {to} failed ({kind}, code {exc.code}): {exc.message}", file=sys.stderr)
        await _outcome(store, log_id, status="failed", error=exc.as_dict(), channel=channel, provider=name)
        return 1
    finally:
        await member.provider.close()
    print(f"{name}: {channel} to {to} from {from_} accepted: {sid} (log {log_id or '-'})")
    await _outcome(store, log_id, status="initiated", channel=channel, sid=sid, provider=name)
    return 0


async def _log_row(store, row) -> int:
    """The test's row in the trigger log, written before the send (no outbox item: 'initiated');
    0 when the database cannot be written: the test is sent anyway, as it asks about the provider."""
    now = SystemClock().timestamp()
    try:
        (row,) = await store.logs.create_trigger({"source": SOURCE, "created_at": now}, [row], lease_until=now)
    except StoreError as exc:
        print(f"warning: the test is not logged: {exc}", file=sys.stderr)
        return 0
    return row.log_id


async def _outcome(store, log_id: int, **outcome) -> None:
    if not log_id:
        return
    try:
        await store.logs.set_outcome(log_id, **outcome)
    except StoreError as exc:
        print(f"warning: the test's outcome is not logged: {exc}", file=sys.stderr)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("providers", parents=[common], help="the configured providers; send a test through one")
    ps = p.add_subparsers(dest="providers_cmd", required=True)
    ps.add_parser("list", parents=[common], help="name, kind and numbers of each provider")
    t = ps.add_parser("test", parents=[common], help="send one test SMS (or call) through provider NAME")
    t.add_argument("name")
    t.add_argument("--to", required=True, help="the number to send to")
    t.add_argument("--type", choices=("sms", "call"), default="sms")
    p.set_defaults(func=cmd_providers)
