"""At a glance: notifications per hour (24 h) and per day (7 days) by outcome, and
time to acknowledge, as small server-rendered SVG charts (templates/glance.html).

Buckets are hours and days of the configured timezone, from one reading of the
daemon's clock: a day is local midnight to local midnight, so the day a DST
change falls on has 23 or 25 hours. Each outcome is drawn with its own pattern
and named in the legend and in a table of the numbers: nothing is told by
colour alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo


# (key, words, symbol, short words for narrow table heads) in stacking order, bottom first
OUTCOMES = (("acknowledged", "acknowledged", "✓", "acked"), ("sent", "sent, not acknowledged", "→", "sent"),
            ("failed", "failed or not answered", "✗", "failed"), ("held", "silenced or throttled", "⊘", "held"))
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 360, 150, 26, 18, 12  # the SVG's viewBox: it scales to the screen


@dataclass
class Bucket:
    start: datetime
    end: datetime
    key: str     # an id for the table row: hour-2026-03-10T14, day-2026-03-08
    label: str   # under the bar ("" for most hours: there is no room for 24)
    title: str   # the bar's tooltip and the table row's heading
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def hour_starts(now: datetime, tz: tzinfo, n: int = 24) -> list[datetime]:
    """The starts of the last ``n`` local hours, oldest first; the last is the current hour."""
    # stepped in UTC: local wall-clock arithmetic would skip or repeat an hour at a DST change
    current = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    return [(current - timedelta(hours=k)).astimezone(tz) for k in range(n - 1, -1, -1)]


def day_starts(now: datetime, tz: tzinfo, n: int = 7) -> list[datetime]:
    """Local midnights of the last ``n`` days, oldest first; the last is today's."""
    today = now.astimezone(tz).date()
    return [datetime.combine(today - timedelta(days=k), datetime.min.time(), tz) for k in range(n - 1, -1, -1)]


def _buckets(starts: list[datetime], end: datetime, hourly: bool) -> list[Bucket]:
    out = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else end
        if hourly:
            label = start.strftime("%H") if start.hour % 6 == 0 else ""
            out.append(Bucket(start, stop, start.strftime("hour-%Y-%m-%dT%H"), label,
                              f"{start:%a %H:%M}–{stop:%H:%M}"))
        else:
            out.append(Bucket(start, stop, start.strftime("day-%Y-%m-%d"), f"{start:%a} {start.day}",
                              f"{start:%a} {start.day} {start:%b}"))
    return out


def nearest_rank(values: list[float], p: float) -> float | None:
    """The p-th quantile by nearest rank: always one of the values (a real time someone took)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _nice_max(value: float) -> float:
    """A round top for an axis: 1, 2, 5, 10, 20, 50, ..."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def stacked(buckets: list[Bucket]) -> dict:
    """Geometry of a stacked bar chart of ``buckets`` in the viewBox."""
    top = _nice_max(max((b.total for b in buckets), default=0))
    plot_w, plot_h = WIDTH - LEFT - 2, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(buckets)
    bars = []
    for i, b in enumerate(buckets):
        x, y = LEFT + i * slot + slot * 0.1, HEIGHT - BOTTOM
        segments = []
        for key, words, _, _ in OUTCOMES:
            n = b.counts.get(key, 0)
            if n:
                h = n / top * plot_h
                y -= h
                segments.append({"outcome": key, "y": round(y, 2), "h": round(h, 2), "n": n, "words": words})
        bars.append({"x": round(x, 2), "w": round(slot * 0.8, 2), "cx": round(x + slot * 0.4, 2), "top": round(y, 2),
                     "segments": segments, "bucket": b})
    return {"bars": bars, "max": int(top), "mid_y": TOP + plot_h / 2, "top_y": TOP, "base_y": HEIGHT - BOTTOM}


def ack_chart(days: list[Bucket], delays: list[tuple[float, float]]) -> dict:
    """Median and p90 of the time to acknowledge per day, two bars a day (minutes on the axis)."""
    per_day = []
    for b in days:
        got = [d for t, d in delays if b.start.timestamp() <= t < b.end.timestamp()]
        per_day.append((b, nearest_rank(got, 0.5), nearest_rank(got, 0.9), len(got)))
    top = _nice_max(max((p90 or 0 for _, _, p90, _ in per_day), default=0) / 60) * 60
    plot_w, plot_h = WIDTH - LEFT - 2, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(days)
    bars = []
    for i, (b, median, p90, n) in enumerate(per_day):
        x = LEFT + i * slot + slot * 0.1
        pair = []
        for k, (kind, value) in enumerate((("median", median), ("p90", p90))):
            h = (value or 0) / top * plot_h
            pair.append({"kind": kind, "x": round(x + k * slot * 0.4, 2), "y": round(HEIGHT - BOTTOM - h, 2),
                         "h": round(h, 2), "text": duration_text(value)})
        bars.append({"bucket": b, "pair": pair, "n": n, "w": round(slot * 0.38, 2), "cx": round(x + slot * 0.4, 2)})
    return {"bars": bars, "max": duration_text(top), "top_y": TOP, "base_y": HEIGHT - BOTTOM}


async def glance(store, now: datetime, tz: tzinfo) -> dict:
    """Everything the page shows, from one reading of the clock (``now``)."""
    now = now.astimezone(tz)
    hours = _buckets(hour_starts(now, tz), now, hourly=True)
    days = _buckets(day_starts(now, tz), now, hourly=False)
    for b in hours + days:
        b.counts = await store.dashboard.outcome_counts(b.start.timestamp(), b.end.timestamp())
    delays = await store.dashboard.ack_delays(days[0].start.timestamp(), now.timestamp())
    day_ago = (now - timedelta(days=1)).timestamp()
    summary = {}
    for name, values in (("24 h", [d for t, d in delays if t >= day_ago]), ("7 days", [d for _, d in delays])):
        summary[name] = {"n": len(values), "median": duration_text(nearest_rank(values, 0.5)),
                         "p90": duration_text(nearest_rank(values, 0.9))}
    return {"hours": hours, "days": days, "hourly": stacked(hours), "daily": stacked(days),
            "ack": ack_chart(days, delays), "ack_summary": summary, "outcomes": OUTCOMES,
            "dims": {"w": WIDTH, "h": HEIGHT, "left": LEFT}}


def add_routes(base: str, *, page, post, html) -> None:
    @page("/glance")
    async def at_a_glance(request, session):
        d = request.app.state.daemon
        now = d.clock.now()
        return html("glance.html", request, session, g=await glance(d.store, now, d.config.tz), now=now.timestamp(),
                    tz_name=d.config.timezone, providers=d.router.health() if d.router is not None else [])
