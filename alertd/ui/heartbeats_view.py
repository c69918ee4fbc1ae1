"""The dashboard's heartbeats: each check's state, last ping, next deadline and ping URL, a bar
of the last days' up and down, its recent pings, and pause / resume.

The bar has one cell per local day (the configured timezone), worked out from
the stored flips: a day with any time down shows ✗ and how long, a day all
up ✓, a paused day ⏸, a day before the first ping ·. Each cell carries its
words too (title and a hidden label): nothing is told by colour alone.
"""
from __future__ import annotations

from datetime import datetime

from fastapi.responses import RedirectResponse

from ..api.heartbeats import describe
from ..engine.heartbeat import ago
from .glance import day_starts

DAYS = 14
PINGS = 20
EXCERPT = 120
SYMBOLS = {"down": "✗", "up": "✓", "paused": "⏸", "none": "·"}


def day_bar(initial: str | None, flips: list, starts: list[datetime], now: float) -> list[dict]:
    """One cell per day from ``starts`` (oldest first, the last being today, which ends at ``now``).

    ``initial`` is the status in force at the first start (None: unknown, taken as never pinged);
    ``flips`` (at, new) are the later flips, oldest first."""
    cells = []
    status, i = initial or "new", 0
    for k, start in enumerate(starts):
        t0 = start.timestamp()
        t1 = starts[k + 1].timestamp() if k + 1 < len(starts) else now
        seconds = {"up": 0.0, "down": 0.0, "paused": 0.0, "new": 0.0}
        t = t0
        while i < len(flips) and flips[i]["at"] < t1:
            seconds[status] = seconds.get(status, 0.0) + max(0.0, flips[i]["at"] - t)
            t, status = max(t, flips[i]["at"]), flips[i]["new"]
            i += 1
        seconds[status] = seconds.get(status, 0.0) + max(0.0, t1 - t)
        worst = ("down" if seconds["down"] > 0 else "up" if seconds["up"] > 0
                 else "paused" if seconds["paused"] > 0 else "none")
        words = {"down": f"down for {ago(seconds['down'])}", "up": "up all day",
                 "paused": "paused", "none": "no pings yet"}[worst]
        cells.append({"day": f"{start:%a} {start.day}", "worst": worst, "symbol": SYMBOLS[worst],
                      "title": f"{start:%Y-%m-%d}: {words}"})
    return cells


def bar_for(store, name: str, now: datetime, tz) -> list[dict]:
    starts = day_starts(now, tz, DAYS)
    initial, flips = store.heartbeats.flips(name, starts[0].timestamp())
    return day_bar(initial, flips, starts, now.timestamp())


def add_routes(base: str, *, page, post, html) -> None:
    def checks(d):
        return {r["rule_id"]: r for r in d.store.heartbeats.all()}

    @page("/heartbeats")
    async def heartbeats(request, session):
        d = request.app.state.daemon
        now = d.clock.now()
        rows = [dict(describe(r, d.heartbeats.specs.get(name), now.timestamp(), d.config.server.base_url),
                     bar=bar_for(d.store, name, now, d.config.tz), row=r) for name, r in checks(d).items()]
        return html("heartbeats.html", request, session, checks=rows)

    @page("/heartbeats/{name}")
    async def heartbeat(request, session, name: str):
        d = request.app.state.daemon
        row = checks(d).get(name)
        if row is None:
            return html("message.html", request, session, status=404, title="Not found",
                        text=f"No heartbeat {name}.")
        now = d.clock.now()
        info = describe(row, d.heartbeats.specs.get(name), now.timestamp(), d.config.server.base_url)
        pings = [dict(p, excerpt=(p["body"] or "")[:EXCERPT], cut=len(p["body"] or "") > EXCERPT)
                 for p in d.store.heartbeats.recent_pings(name, PINGS)]
        return html("heartbeat.html", request, session, c=info, row=row, pings=pings,
                    bar=bar_for(d.store, name, now, d.config.tz))

    for action in ("pause", "resume"):
        def register(action=action):
            @post(f"/heartbeats/{{name}}/{action}")
            async def pause_or_resume(request, session, form, name: str):
                d = request.app.state.daemon
                try:
                    d.heartbeats.set_paused(name, action == "pause")
                except KeyError:
                    return html("message.html", request, session, status=404, title="Not found",
                                text=f"No heartbeat {name}.")
                return RedirectResponse(f"{base}/heartbeats/{name}", status_code=303)
            pause_or_resume.__name__ = f"heartbeat_{action}"
        register()



