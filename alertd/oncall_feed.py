"""Calendar feeds of rotations: tokens, and the iCalendar text.

Calendar apps subscribe to a URL and cannot send an Authorization header, so
the feed URL carries its own token (``alertd oncall feed NAME``). Like API keys,
tokens are stored as SHA-256 hashes and shown once; each reads one rotation's
feed and nothing else, and can be revoked.

The feed is built with the ``icalendar`` library: one VEVENT per shift
(alertd/shifts.py), times in UTC, so no VTIMEZONE is needed and every app shows
them in its own zone; the UID is stable for a shift, so a refresh updates
events instead of duplicating them.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from .config import Config
from .shifts import Shift, rotation_shifts

TOKEN_PREFIX = "cal_"
WEEKS = 8
FEED_PATH = "/api/v1/oncall/{rotation}.ics"


class FeedError(ValueError):
    """An unknown rotation or feed."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(config: Config, store, rotation: str, now: float) -> tuple[int, str]:
    """(feed id, token) for ``rotation``; the token is not stored, only its hash. Raises FeedError."""
    if rotation not in config.rotations:
        raise FeedError(f"unknown rotation '{rotation}' (rotations: {', '.join(config.rotations) or 'none configured'})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    return await store.reach.add_feed(rotation, token[: len(TOKEN_PREFIX) + 4], hash_token(token), now), token


def feed_url(config: Config, rotation: str, token: str) -> str:
    return config.server.base_url + FEED_PATH.format(rotation=rotation) + "?token=" + token


async def token_valid(store, rotation: str, token: str) -> bool:
    return bool(token) and await store.reach.find_feed(rotation, hash_token(token)) is not None


def summary(config: Config, rotation: str, shift: Shift) -> str:
    contact = config.contacts.get(shift.contact)
    who = (contact.name if contact and contact.name else None) or shift.contact
    return f"{who} on call for {rotation}" + (" (override)" if shift.override else "")


async def calendar(config: Config, store, rotation: str, now: datetime, weeks: int = WEEKS) -> bytes:
    """The feed of ``rotation``: every shift overlapping the next ``weeks`` weeks."""
    # imported at the first feed fetched, not at start: 80 modules, ~8 MiB of RSS and 40 ms
    # of start-up that a daemon whose rotations nobody subscribes to never needs
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", "-//alertd//on-call rotations//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"On call: {rotation}")
    # how often to fetch again: RFC 7986's property, and the one Outlook reads
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    stamp = now.replace(microsecond=0)
    for shift in await rotation_shifts(config, store, rotation, now, now + timedelta(weeks=weeks)):
        event = icalendar.Event()
        kind = "override" if shift.override else "shift"
        event.add("uid", f"{rotation}-{kind}-{int(shift.starts_at.timestamp())}-{shift.contact}@alertd")
        event.add("dtstamp", stamp)
        event.add("dtstart", shift.starts_at)
        event.add("dtend", shift.ends_at)
        event.add("summary", summary(config, rotation, shift))
        contact = config.contacts.get(shift.contact)
        event.add("description", f"{shift.contact} ({contact.phone if contact else '?'}), {kind}")
        event.add("transp", "TRANSPARENT")  # being on call is not being busy
        cal.add_component(event)
    return cal.to_ical()
