"""alertd oncall NAME --weeks N and alertd oncall feed: rotations as shifts and as calendar feeds.

Exit codes as the other commands: 0 ok, 1 refused, 2 usage.
"""
from __future__ import annotations

import sys
from datetime import timedelta

from .. import oncall_feed
from ..clock import SystemClock, from_timestamp
from ..shifts import rotation_shifts


def _local(dt, tz) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


async def print_weeks(cfg, store, names: list[str], now, weeks: int) -> int:
    """Every shift of the next ``weeks`` weeks: the calendar feed's events, as lines."""
    if weeks < 1:
        print("--weeks: must be 1 or more", file=sys.stderr)
        return 2
    tz = cfg.tz
    for name in names:
        print(f"{name}  (shifts of the next {weeks} week{'s' if weeks != 1 else ''})")
        for s in await rotation_shifts(cfg, store, name, now, now + timedelta(weeks=weeks)):
            phone = cfg.contacts[s.contact].phone
            note = "  (override)" if s.override else ""
            print(f"  {_local(s.starts_at, tz)} - {_local(s.ends_at, tz)}  {s.contact}  {phone}{note}")
    return 0


async def cmd_feed(args, cfg, store) -> int:
    """alertd oncall feed NAME | feed --list | feed --revoke ID."""
    now = SystemClock().timestamp()
    if args.revoke is not None:
        if await store.reach.revoke_feed(args.revoke, now):
            print(f"revoked feed {args.revoke}")
            return 0
        print(f"no feed in use with id {args.revoke}", file=sys.stderr)
        return 1
    if args.list or args.target is None:
        print(f"{'ID':<5} {'ROTATION':<16} {'TOKEN':<10} {'CREATED':<22} REVOKED")
        for r in await store.reach.list_feeds():
            revoked = _local(from_timestamp(r["revoked_at"]), cfg.tz) if r["revoked_at"] else "-"
            print(f"{r['feed_id']:<5} {r['rotation']:<16} {r['prefix'] + '...':<10} "
                  f"{_local(from_timestamp(r['created_at']), cfg.tz):<22} {revoked}")
        return 0
    try:
        feed_id, token = await oncall_feed.create_token(cfg, store, args.target, now)
    except oncall_feed.FeedError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    # the URL is the secret: on standard output alone, once, for a script or a calendar app
    print(oncall_feed.feed_url(cfg, args.target, token))
    print(f"(feed {feed_id} of {args.target}; shown once; revoke with: alertd oncall feed --revoke {feed_id})",
          file=sys.stderr)
    return 0


def add_arguments(oc) -> None:
    oc.add_argument("--weeks", type=int, metavar="N", help="every shift of the next N weeks, overrides included")
    oc.add_argument("--revoke", type=int, metavar="ID", help="feed: stop the feed with this id")
    oc.add_argument("--list", action="store_true", help="feed: list the feeds (never their tokens)")
