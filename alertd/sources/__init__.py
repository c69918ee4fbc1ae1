"""The sources: webhook, poll and schedule turn the outside world into events for the rules.

    webhook   POST /hooks/NAME bodies, in the formats rules listen for (webhook.py)
    poll      an HTTP check of a URL on a schedule (poll.py)
    schedule  APScheduler jobs for poll and schedule rules (schedule.py)

``Sources`` is where each one's events enter: recorded, then handed to the rule runner.
"""
from __future__ import annotations

from typing import Any

import structlog

from .poll import check, session
from .webhook import PayloadError, events_from

log = structlog.get_logger("alertd.engine")


class Sources:
    """Entry points for the three sources; each records its event and runs the rules.

    ``runner``: the rule runner (alertd/dispatch/rules.py, ``handle`` and
    ``ruleset``); ``http``: the aiohttp session polls use, made at the first poll."""

    def __init__(self, runner, store, clock, metrics, http_session=None):
        self.runner, self.store, self.clock, self.metrics, self.http = runner, store, clock, metrics, http_session

    async def webhook(self, name: str, body: Any, query: dict[str, str]) -> dict:
        """Raises KeyError when no rule listens on ``name``; PayloadError for a bad alert body."""
        rules = self.runner.ruleset.for_webhook(name)
        if not rules:
            raise KeyError(name)
        now = self.clock.timestamp()
        event_payload = {"body": body, "query": {k: v for k, v in query.items() if k != "key"}}
        event_id = await self.store.events.record("webhook", name, event_payload, now)
        fired: list[str] = []
        log_ids: list[int] = []
        for rule in rules:
            fmt = rule.source.webhook_format
            try:
                events = events_from(fmt, body, query)
            except ValueError as exc:
                # recorded above, so nothing is lost; the sender learns its payload is wrong
                log.warning("webhook payload does not fit the rule's format", rule_id=rule.id, error=str(exc))
                raise PayloadError(f"body: {exc} (webhook '{name}' expects format {fmt})") from None
            for event in events:
                ids = await self.runner.handle(rule, event, event_id, alert=fmt != "generic")
                if ids:
                    log_ids.extend(ids)
                    if rule.id not in fired:
                        fired.append(rule.id)
        if fired:
            await self.store.events.set_fired(event_id, fired)
        return {"event_id": event_id, "fired": fired, "log_ids": log_ids}

    async def close(self) -> None:
        """At stop: the polls' session, if a poll made one."""
        if self.http is not None:
            await self.http.close()
            self.http = None

    async def run_rule(self, rule_id: str) -> None:
        """A scheduler tick: poll the rule's URL, or make its schedule event."""
        runner = self.runner
        rule = runner.ruleset.rules.get(rule_id)
        if rule is None:
            return
        try:
            if rule.source.poll is not None:
                spec = rule.source.poll
                if self.http is None:
                    self.http = session()
                event = await check(self.http, url=spec.url, method=spec.method, headers=dict(spec.headers),
                                    body=spec.body, timeout=spec.timeout.total_seconds())
                self.metrics.polled(rule_id, event)
            else:
                event = {"scheduled_at": self.clock.now().isoformat()}
            await runner.handle(rule, event, None)
        except Exception:
            log.exception("scheduled rule failed", rule_id=rule_id)
