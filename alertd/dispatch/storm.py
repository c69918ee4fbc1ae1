"""Storm control: at most ``limits.per_number`` notifications per number and channel.

    limits:
      per_number: {calls: 3, sms: 5, per: 15m}

Off unless configured. The window slides: a notification may go out at ``t``
when fewer than the limit of counted notifications to that number on that
channel go out in (t - per, t]. What counts: first notifications, escalation
steps and summaries, sent or still to send; retries of an unanswered call do
not (they are the same notification, placed again), nor does anything
throttled, silenced, cancelled or failed. A 'both' row counts for calls and
for SMS.

What exceeds the limit is not sent one by one but folded into one summary per
(number, channel): a log row of its own (source ``alertd:summary``, status
'scheduled') with an outbox item due the moment the window allows, that is
when the oldest counted notification leaves it. The worker sends it like any
deferred row, so it survives a restart. Its message is rewritten as alerts
fold in: "7 more alerts: Disk full on db1; Server down (3 times); ...". Each
folded row is logged with status 'throttled' and the summary's log id in
``summary_log_id``. A 'both' row over the limit on one channel only is sent on
the other and folded on that one (it keeps its status, and gets the
summary's id). Each summary's alerts are listed in ``summary_folds`` (a 'both'
row over both limits is in both summaries; ``summary_log_id`` names the first).
Pressing 1 on a summary (or replying 1 to it) acknowledges every trigger
folded into it. When the summary goes out it leaves out what was
acknowledged or silenced since it was folded, and is not sent at all when
nothing is left (see ``refresh``).

Retries are never throttled, and a row due later (``send_at``) is checked at
its own send time against what counts by then.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import structlog

from ..store import Store
from ..store.outcome import SUMMARY_SOURCE
from . import silences
from .notification import Notification

log = structlog.get_logger("alertd.storm")
CHANNELS = {"call": ("call",), "sms": ("sms",), "both": ("call", "sms")}
# A summary is read aloud or texted: a call reads 1,000 characters in about a
# minute; 600 characters of SMS are at most 4 billed segments of 153 (GSM-7).
# Both stay far under the API's 4,000 and Twilio's 1,600-character SMS body.
SUMMARY_MAX = {"call": 1000, "sms": 600}
PART_MAX = 160  # one alert's message, cut, so several fit
MORE = "; ..."  # ASCII on purpose: one non-GSM character makes the whole SMS UCS-2, at twice the segments


def channel_limits(limits: Any) -> dict[str, int]:
    """config.PerNumberLimits -> {"call": n, "sms": n} for the limited channels."""
    return {ch: n for ch, n in (("call", limits.calls), ("sms", limits.sms)) if n is not None}


def summary_text(folded: dict, channel: str) -> str:
    """"N more alerts: first; second (3 times); ..." from params["folded"]."""
    n = folded["count"]
    parts = [text if k == 1 else f"{text} ({k} times)" for text, k in folded["parts"]]
    head = f"{n} more alert{'s' if n != 1 else ''}: "
    tail = MORE if folded.get("more") else ""
    return head + "; ".join(parts) + tail


def add_to(folded: dict, message: str | None, channel: str) -> dict:
    """Count one more alert into a summary's ``folded`` state; its message is
    listed while the summary stays under SUMMARY_MAX for the channel."""
    text = " ".join((message or "(no message)").split())
    if len(text) > PART_MAX:
        text = text[:PART_MAX - 3].rstrip() + "..."
    folded = {"count": folded["count"] + 1, "parts": [list(p) for p in folded["parts"]],
              "more": folded.get("more", False),
              **({"total": folded["total"] + 1} if "total" in folded else {})}
    for part in folded["parts"]:
        if part[0] == text:
            part[1] += 1
            break
    else:
        if not folded["more"]:
            folded["parts"].append([text, 1])
            if len(summary_text({**folded, "more": True}, channel)) > SUMMARY_MAX[channel]:
                folded["parts"].pop()
                folded["more"] = True
    # a count one digit longer, or a "(10 times)", must not push it over either
    while len(summary_text(folded, channel)) > SUMMARY_MAX[channel] and len(folded["parts"]) > 1:
        folded["parts"].pop()
        folded["more"] = True
    return folded


def _due(times: list[float], limit: int, per: float) -> float:
    """When a window holding ``times`` (sorted, at least ``limit``) first has
    room for one more: once the (len - limit + 1) oldest have left it."""
    return times[len(times) - limit] + per


def fold(store: Store, rows: list[Notification], now: float, limits: Any) -> Callable | None:
    """Mark the rows over ``limits`` (config.PerNumberLimits, None when off):
    status 'throttled', or ``channels`` for a 'both' row over on one channel.
    Returns the step that writes their summaries and sets each row's
    ``summary_log_id``, for Store.logs.insert_trigger(prepare=...) to run in the
    transaction that stores the rows; None when nothing is over.

    A policy of intake, after the silences. Only 'queued' rows with a number
    are looked at: failed and silenced ones stay as they are.
    """
    if limits is None:
        return None
    caps = channel_limits(limits)
    per = limits.per.total_seconds()
    taken: dict[tuple[str, str], list[float]] = {}  # counted earlier in this same batch
    plan: list[tuple[dict, str, float, float]] = []  # (row, channel, due_at, at)
    for row in rows:
        if row.status != "queued" or not row.to or row.attempt > 1:
            continue
        at = max(now, row.send_at or now)
        over, fits = [], []
        for ch in CHANNELS.get(row.type, ()):
            if ch not in caps:
                fits.append(ch)
                continue
            key = (row.to, ch)
            times = sorted(store.storm.counted_times(row.to, ch, at - per, at) + taken.get(key, []))
            if len(times) >= caps[ch]:
                over.append((ch, _due(times, caps[ch], per)))
            else:
                fits.append(ch)
        if not over:
            for ch in fits:
                taken.setdefault((row.to, ch), []).append(at)
            continue
        for ch in fits:
            taken.setdefault((row.to, ch), []).append(at)
        if fits:
            row.channels = tuple(fits)
        else:
            row.status = "throttled"
        plan.extend((row, ch, due, at) for ch, due in over)
    if not plan:
        return None

    def write_summaries(tx) -> None:
        for row, ch, due, at in plan:
            summary_id = _fold_one(store, tx, row, ch, due, at, per, now)
            if row.summary_log_id is None:
                row.summary_log_id = summary_id  # the first, for the trigger log's field
            row.folds.append((summary_id, ch))  # every one (Store.logs.insert_trigger links them)
    return write_summaries


def hold_summaries(store: Store, claimed: list[dict], now: float, limits: Any) -> list[dict]:
    """The claimed outbox items to attempt now: a summary's first attempt waits
    again (postponed, unleased) while its window is still full. That happens
    when a notification it counted on went out later than planned (the
    provider answered 429 for a while): limits count what really went out,
    so the summary's due time moves with it. Called by the worker.
    """
    caps = channel_limits(limits) if limits is not None else {}
    per = limits.per.total_seconds() if limits is not None else 0.0
    ready = []
    for item in claimed:
        if item["source"] != SUMMARY_SOURCE:
            ready.append(item)
            continue
        cap = caps.get(item["channel"])
        if cap is not None and not item["attempts"]:  # a retry's window was checked before its first attempt
            times = store.storm.counted_times(item["to"], item["channel"], now - per, now,
                                              exclude_log_id=item["log_id"])
            if len(times) >= cap:
                due = _due(times, cap, per)
                store.storm.postpone(item["log_id"], item["outbox_id"], due)
                log.info("summary waits for the window", log_id=item["log_id"], to=item["to"],
                         channel=item["channel"], wait_s=round(due - now, 3))
                continue
        if refresh(store, item, now):
            ready.append(item)
    return ready


def refresh(store: Store, item: dict, now: float) -> bool:
    """A summary about to go out tells only what still needs a human: alerts
    acknowledged since they were folded, or held back by a silence added since,
    leave its message. Returns False, with the summary stored 'cancelled' (or
    'silenced', with the silence's id), when nothing is left to tell."""
    rows = store.storm.folded_into(item["log_id"])
    folded = item["params"]["folded"]
    if len(rows) != folded.get("total", folded["count"]):
        # a summary folded before its alerts were linked (schema 8) to it: it cannot
        # tell which of its alerts are gone, so it goes out as written
        return True
    active = silences.active(store, now)
    keep, silenced_by = [], None
    for r in rows:
        if r["acknowledged_at"] is not None:
            continue
        held = silences.pick(active, source=r["source"], rule_id=r["rule_id"], to=r["to_number"], at=now)
        if held is not None:
            silenced_by = silenced_by or held
            continue
        keep.append(r)
    if rows and not keep:
        store.storm.drop_summary(item["log_id"], item["outbox_id"], silenced_by)
        log.info("summary not sent: every alert folded into it was acknowledged or silenced since",
                 log_id=item["log_id"], to=item["to"], folded=len(rows), silence_id=silenced_by)
        return False
    if len(keep) < len(rows):
        total = folded.get("total", folded["count"])
        folded = {"count": 0, "parts": []}
        for r in keep:
            folded = add_to(folded, r["message"], item["channel"])
        item["params"]["folded"] = {**folded, "total": total}  # how many point at it, told or not
        item["message"] = summary_text(folded, item["channel"])
        store.storm.set_summary(item["log_id"], item["message"], item["params"])
        log.info("summary shortened", log_id=item["log_id"], to=item["to"], folded=len(rows), left=len(keep))
    return True


def _fold_one(store: Store, tx, row: Notification, channel: str, due: float, at: float, per: float,
              now: float) -> int:
    """Fold one row's ``channel`` into the open summary, or start one due at ``due``."""
    found = store.storm.open_summary(tx, row.to, channel, at - per)
    if found is not None:
        params = json.loads(found["params"])
        params["folded"] = add_to(params["folded"], row.message, channel)
        params["gather"] = params.get("gather") or bool(row.params.get("gather"))
        store.storm.update_summary(tx, found["log_id"], summary_text(params["folded"], channel), params)
        summary_id = found["log_id"]
    else:
        src = row.params or {}
        params = {"from": src.get("from"), "voice": src.get("voice", "alice"), "language": src.get("language"),
                  "repeat": 1, "gather": bool(src.get("gather")),
                  "folded": add_to({"count": 0, "parts": []}, row.message, channel)}
        summary_id = store.storm.create_summary(tx, row.to, channel, summary_text(params["folded"], channel),
                                                params, due, now)
    log.info("notification throttled", to=row.to, channel=channel, summary_log_id=summary_id,
             folded=params["folded"]["count"], new_summary=found is None)
    return summary_id
