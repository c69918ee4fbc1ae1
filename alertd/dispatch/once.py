"""A send that must go out once per something (a shift, a voicemail), also across a restart.

``submit_once`` is dispatch.submit with a claim: the record that says "this was
sent" is written in the same transaction as the trigger and its outbox items,
so a crash leaves either both or neither. What the claim guards goes out at
most once and, once stored, at least once (the outbox's own guarantee).
"""
from __future__ import annotations

import sqlite3
from typing import Callable

from . import Dispatcher, _store

Claim = Callable[[sqlite3.Connection], bool]


async def submit_once(dispatcher: Dispatcher, claim: Claim, trigger: dict, rows: list[dict],
                      after: Callable[[sqlite3.Connection, dict], None] | None = None) -> list[dict] | None:
    """Store ``trigger`` and ``rows`` when ``claim(conn)`` says this is the first
    time (it writes its own record), then make the first attempt. Returns the
    stored rows, or None when the claim was taken before. ``after(conn, trigger)``
    runs in the same transaction with the trigger id known. Raises sqlite3.Error
    when nothing could be stored."""
    now = dispatcher.clock.timestamp()
    trigger.setdefault("created_at", now)

    def write(c: sqlite3.Connection):
        if not claim(c):
            return None
        stored = _store(c, dispatcher.store, dispatcher.config, trigger, rows, now)
        if after is not None:
            after(c, trigger)
        return stored

    stored = await dispatcher.store.group.run(write)
    if stored is None:
        return None
    dispatcher.metrics.stored(stored)
    if any(r.get("status") == "scheduled" or r.get("summary_log_id") for r in stored):
        dispatcher.poke()
    await dispatcher.deliver_now([r for r in stored if r.get("status") != "scheduled"])
    return stored

