"""alertd oncall | silence: the commands people reach for during an incident.

They work on the database directly, like ``alertd keys``: a running daemon
reads silences and overrides at each send, so they apply at once.
Exit codes as the other commands: 0 ok, 1 refused, 2 usage.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime

from .. import oncall
from ..clock import SystemClock, from_timestamp
from ..dispatch import silences
from ..durations import format_duration, parse_duration
from . import feeds
from .load import load_config, store_of

HANDOFFS = 3


def _local(dt: datetime, tz) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _now(args, cfg) -> datetime:
    """``--at`` (ISO 8601; no offset means the config timezone) or the clock."""
    if getattr(args, "at", None):
        try:
            when = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
        except ValueError:
            print(f"--at: not an ISO 8601 time: {args.at!r}", file=sys.stderr)
            raise SystemExit(2) from None
        return when if when.tzinfo else when.replace(tzinfo=cfg.tz)
    return SystemClock().now()


async def cmd_oncall(args) -> int:
    cfg = load_config(args)
    if args.name == "override":
        return await _override(args, cfg, await store_of(cfg))
    if args.name == "feed":
        return await feeds.cmd_feed(args, cfg, await store_of(cfg))
    if args.target is not None:
        print(f"unexpected argument '{args.target}' (usage: alertd oncall [NAME])", file=sys.stderr)
        return 2
    if args.to or args.for_:
        print("--to and --for go with: alertd oncall override NAME --to CONTACT --for 8h", file=sys.stderr)
        return 2
    if args.name is not None and args.name not in cfg.rotations:
        print(f"unknown rotation '{args.name}' (rotations: {', '.join(cfg.rotations) or 'none configured'})",
              file=sys.stderr)
        return 1
    if not cfg.rotations:
        print("no rotations configured (add rotations: to the config)", file=sys.stderr)
        return 0
    store, now, tz = await store_of(cfg), _now(args, cfg), cfg.tz
    if args.weeks is not None:
        return await feeds.print_weeks(cfg, store, [args.name] if args.name else list(cfg.rotations), now, args.weeks)
    for name in [args.name] if args.name else list(cfg.rotations):
        rot = cfg.rotations[name]
        overrides = await oncall.load_overrides(store, name, now, cfg.contacts)
        current = oncall.on_call(rot, tz, now, overrides)
        print(f"{name}  (every {format_duration(rot.shift)}: {', '.join(rot.members)})")
        note = f"until {_local(current.until, tz)}"
        if current.override is not None:
            note = f"override until {_local(current.until, tz)} (scheduled: {current.scheduled})"
        print(f"  on call now  {current.contact}  {cfg.contacts[current.contact].phone}  {note}")
        for h in oncall.next_handoffs(rot, tz, now, args.next, overrides):
            extra = f"  ({h.note})" if h.note else ""
            print(f"  {_local(h.at, tz)}  {h.contact}  {cfg.contacts[h.contact].phone}{extra}")
    return 0


async def _override(args, cfg, store) -> int:
    if args.target is None or not args.to or not args.for_:
        print("usage: alertd oncall override NAME --to CONTACT --for DURATION", file=sys.stderr)
        return 2
    try:
        length = parse_duration(args.for_)
    except ValueError as exc:
        print(f"--for: {exc}", file=sys.stderr)
        return 1
    now = SystemClock().now()
    try:
        ov = await oncall.add_override(cfg, store, args.target, args.to, length, now)
    except oncall.OnCallError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    phone = cfg.contacts[ov.contact].phone
    print(f"{args.target}: {ov.contact} ({phone}) is on call until {_local(ov.ends_at, cfg.tz)}")
    return 0


async def cmd_silence(args) -> int:
    cfg = load_config(args)
    store = await store_of(cfg)
    now = SystemClock().now()
    if args.silence_cmd == "add":
        try:
            s = await silences.create(store, now=now, tz=cfg.tz, created_by="cli", rule_id=args.rule_id,
                                source=args.source, to=args.to, duration=args.duration, until=args.until,
                                reason=args.reason)
        except silences.SilenceError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print(s.silence_id)
        print(f"(silences {s.matcher} {s.value} until {_local(from_timestamp(s.ends_at, cfg.tz), cfg.tz)})",
              file=sys.stderr)
        return 0
    if args.silence_cmd == "list":
        print(f"{'ID':<17} {'MATCHES':<28} {'UNTIL':<22} {'BY':<10} REASON")
        for s in await silences.active(store, now):
            until = _local(from_timestamp(s.ends_at, cfg.tz), cfg.tz)
            print(f"{s.silence_id:<17} {s.matcher + '=' + s.value:<28} {until:<22} {s.created_by or '-':<10} "
                  f"{s.reason}")
        return 0
    if args.silence_cmd == "remove":
        if await silences.remove(store, args.id, now):
            print(f"removed silence {args.id}")
            return 0
        print(f"no silence in force with id {args.id}", file=sys.stderr)
        return 1
    return 2


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    oc = sub.add_parser(
        "oncall", parents=[common], help="who is on call now, and the next handoffs",
        usage="alertd oncall [NAME] [--next N | --weeks N] [--at TIME]\n"
              "       alertd oncall override NAME --to CONTACT --for DURATION\n"
              "       alertd oncall feed NAME | feed --list | feed --revoke ID")
    oc.add_argument("name", nargs="?", help="a rotation (default: all), 'override' or 'feed'")
    oc.add_argument("target", nargs="?", help=argparse.SUPPRESS)
    oc.add_argument("--next", type=int, default=HANDOFFS, metavar="N", help=f"handoffs to show (default {HANDOFFS})")
    oc.add_argument("--at", help="show the rotation at this time instead of now (ISO 8601)")
    oc.add_argument("--to", help="override: the contact who takes over")
    oc.add_argument("--for", dest="for_", metavar="DURATION", help="override: how long, like 8h")
    feeds.add_arguments(oc)
    oc.set_defaults(func=cmd_oncall)

    si = sub.add_parser("silence", parents=[common], help="hold back notifications for a while")
    ss = si.add_subparsers(dest="silence_cmd", required=True)
    add = ss.add_parser("add", parents=[common], help="silence a rule, a source or a number; prints its id")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--rule-id")
    what.add_argument("--source")
    what.add_argument("--to", help="a phone number")
    how_long = add.add_mutually_exclusive_group(required=True)
    how_long.add_argument("--duration", help="like 30m or 2h")
    how_long.add_argument("--until", help="ISO 8601; no offset means the config timezone")
    add.add_argument("--reason", required=True)
    ss.add_parser("list", parents=[common], help="the silences in force")
    rm = ss.add_parser("remove", parents=[common], help="end a silence now")
    rm.add_argument("id")
    si.set_defaults(func=cmd_silence)
