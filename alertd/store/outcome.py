"""The store's shared words: how a log row's status follows from its channels (the one rule, for every
backend and for dispatch), and the source a storm summary is stored under."""
from __future__ import annotations

from typing import Iterable

SUMMARY_SOURCE = "alertd:summary"  # the source of a storm summary's trigger and log row

# an outbox item still to send ('pending'), or an attempt that will be tried again ('retry')
STILL_TO_SEND = frozenset({"pending", "retry"})


def row_status(channels: Iterable[str]) -> str:
    """The status of a log row from the state of each of its channels: an outbox
    item's state (pending, sent, failed, cancelled) or an attempt's outcome
    (sent, retry, failed). 'queued' while any channel is still to send,
    'failed' when every channel failed for good (or there was none), else
    'initiated'."""
    states = list(channels)
    if any(s in STILL_TO_SEND for s in states):
        return "queued"
    if all(s == "failed" for s in states):
        return "failed"
    return "initiated"
