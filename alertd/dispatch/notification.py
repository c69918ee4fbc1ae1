"""A notification: one recipient of a trigger, from the moment it is decided to its first answer.

Every producer makes it with ``notification`` (or ``failed``): the notify API
and the dashboard's test send, the rules, follow-ups (retries and escalation
steps) and the dead man's switch. Intake's policies (silences, storm
folding) set its status and channels, the store gives it its ids and outbox
items, the first attempt its sids and status.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Notification:
    to: str                        # E.164; "" on a row that only reports a failure
    type: str                      # call | sms | both
    message: str | None
    params: dict[str, Any]         # from, voice, repeat, gather, language (a summary adds folded)
    template_id: str | None = None
    status: str = "queued"         # queued | scheduled | failed | silenced | throttled | initiated
    error: dict | None = None      # {code, message}
    attempt: int = 1               # > 1: a retry of an unanswered call
    step: int = 0                  # k: escalation step k
    send_at: float | None = None   # a deferred send (notify.at)
    silence_id: str | None = None
    # storm folding: the channels still sent of a 'both' over one limit, and the summaries it is in
    channels: tuple[str, ...] | None = None
    summary_log_id: int | None = None
    folds: list[tuple[int, str]] = field(default_factory=list)
    # the store's
    log_id: int | None = None
    trigger_id: int | None = None
    items: list[tuple[int, str]] = field(default_factory=list)  # (outbox id, channel)
    # the first attempt's
    call_sid: str | None = None
    sms_sid: str | None = None
    outcomes: list[dict] = field(default_factory=list)
    handed_over: bool = False      # left to the worker (a storm): its status is 'queued'

    @property
    def from_(self) -> str | None:
        return self.params.get("from")


def notification(to: str, type: str, message: str | None, *, from_: str | None = None, voice: str | None = None,
                 repeat: int | None = None, gather: bool = False, language: str | None = None,
                 params: dict | None = None, **fields: Any) -> Notification:
    """The one way to make a Notification. ``params`` whole (a retry places the
    stored row's again), or built from from_, voice (alice), repeat (1), gather, language."""
    if params is None:
        params = {"voice": voice or "alice", "repeat": repeat or 1, "gather": bool(gather), "language": language,
                  "from": from_}
    return Notification(to=to, type=type, message=message, params=params, **fields)


def failed(reason: str, type: str = "call", message: str | None = None, *, to: str = "", params: dict | None = None,
           **fields: Any) -> Notification:
    """A row stored 'failed' and never sent: a rule whose condition could not be
    evaluated, a recipient that is no number, a group whose rule was removed.
    Nothing vanishes without a trace in the trigger log."""
    return notification(to, type, message, params={"from": None} if params is None else params, status="failed",
                        error={"code": None, "message": reason}, **fields)
