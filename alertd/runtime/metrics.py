"""Prometheus metrics: counters bumped where things happen, gauges read at scrape time.

Each Daemon owns a CollectorRegistry rather than prometheus_client's global
one, so several daemons in one process (the tests) keep their own counts, and
a part built without a daemon (``Dispatcher(...)`` in a test) gets a registry
nobody scrapes.

On the notify hot path a provider request costs one Counter.inc and one
Histogram.observe on children bound here at start (no label lookup per
request) and no SQL: what needs the database (the outbox) is read when
/metrics is scraped. Labels are bounded by the config: a channel, an
outcome, a webhook name or a poll rule's id, never a number or a key.
"""
from __future__ import annotations

import time
from typing import Iterable

from prometheus_client import (CollectorRegistry, Counter, GCCollector, Histogram, PlatformCollector,
                               ProcessCollector, generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CHANNELS = {"call": ("call",), "sms": ("sms",), "both": ("call", "sms")}
OUTCOMES = ("sent", "failed", "retry", "silenced", "throttled")
ACK_VIA = ("call", "sms", "api")
# the classic text format generate_latest() writes, which every Prometheus reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Twilio's create requests take 0.1-1 s; a timeout is provider.timeout (10 s)
PROVIDER_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self._daemon_collectors: list[_DaemonCollector] = []
        self.notifications = Counter(
            "alertd_notifications", "Notifications by channel (type) and outcome: sent, failed (for good), "
            "retry (a transient failure, tried again later), silenced, throttled. "
            "A 'both' notification counts once per channel.", ["type", "outcome"], registry=r)
        self._notifications = {(ch, o): self.notifications.labels(ch, o) for ch in ("call", "sms") for o in OUTCOMES}
        self.provider_latency = Histogram(
            "alertd_provider_request_duration_seconds", "Provider (Twilio) create requests, by channel.",
            ["type"], buckets=PROVIDER_BUCKETS, registry=r)
        self._latency = {ch: self.provider_latency.labels(ch) for ch in ("call", "sms")}
        self.acknowledgements = Counter(
            "alertd_acknowledgements", "Acknowledgements received, by way: a press of 1 (call), "
            "an SMS reply, the API.", ["via"], registry=r)
        for via in ACK_VIA:
            self.acknowledgements.labels(via)
        self.escalation_steps = Counter("alertd_escalation_steps", "Escalation steps run (the trigger was "
                                        "still unacknowledged).", registry=r)
        self.call_retries = Counter("alertd_call_retries", "Unanswered calls placed again (retry.times).",
                                    registry=r)
        self.webhook_events = Counter("alertd_webhook_events", "Requests to /hooks/NAME that a rule listens on.",
                                      ["hook"], registry=r)
        self.poll_duration = Histogram("alertd_poll_duration_seconds", "Poll checks, by rule: time to the "
                                       "answer (or to the error).", ["rule"], registry=r)
        self.poll_failures = Counter("alertd_poll_failures", "Poll checks that got no HTTP answer "
                                     "(refused, timed out, DNS), by rule.", ["rule"], registry=r)
        self.deadman = Counter("alertd_deadman_notifications", "Dead man's switch notifications, by channel and "
                               "outcome (sent, failed).", ["type", "outcome"], registry=r)

    # --- recording (called where things happen) -------------------------------
    def provider_request(self, channel: str, outcome: str, seconds: float) -> None:
        self._latency[channel].observe(seconds)
        self._notifications[(channel, outcome)].inc()

    def stored(self, rows: Iterable) -> None:
        """Count what intake decided without asking the provider (Notifications):
        rows held back by a silence, throttled (wholly, or one channel of a
        'both'), or failed at creation (a template that would not render)."""
        for row in rows:
            status = row.status
            if status == "silenced" or status == "throttled" or (status == "failed" and not row.items):
                for ch in CHANNELS.get(row.type, ()):
                    self._notifications[(ch, status)].inc()
            elif row.channels and row.summary_log_id is not None:
                for ch in CHANNELS.get(row.type, ()):
                    if ch not in row.channels:
                        self._notifications[(ch, "throttled")].inc()

    def acknowledged(self, via: str) -> None:
        self.acknowledgements.labels(via).inc()

    def polled(self, rule_id: str, event: dict) -> None:
        self.poll_duration.labels(rule_id).observe((event.get("elapsed_ms") or 0.0) / 1000)
        failures = self.poll_failures.labels(rule_id)
        if event.get("error"):
            failures.inc()

    # --- exposition ---------------------------------------------------------------
    def watch(self, daemon) -> None:
        """Add the gauges read from ``daemon`` at scrape time, and the process's own."""
        collector = _DaemonCollector(daemon)
        self._daemon_collectors.append(collector)
        self.registry.register(collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    async def render(self) -> bytes:
        for collector in self._daemon_collectors:
            await collector.read()  # the store is read here, on the loop; collect() only reports it
        return generate_latest(self.registry)


class _DaemonCollector:
    """Read at scrape time: the outbox (one SQL query), the dispatcher, the rules."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.values: dict[str, float | None] = {}

    async def read(self) -> None:
        self.values = await self._values()

    def describe(self):
        # without describe() the registry would collect() at registration, before the daemon starts
        return [fam for fam, _ in self._families()]

    def _families(self):
        g, c = GaugeMetricFamily, CounterMetricFamily
        return [
            (g("alertd_outbox_pending", "Outbox items not yet sent (due, in backoff, or deferred)."), "pending"),
            (g("alertd_outbox_due", "Outbox items whose send time has come."), "due"),
            (g("alertd_outbox_oldest_due_age_seconds", "How long the oldest due outbox item has waited "
               "since its send time (0 when none)."), "oldest"),
            (g("alertd_provider_requests_in_flight", "Provider requests in flight "
               "(at most provider.max_concurrency)."), "in_flight"),
            (g("alertd_provider_failing_seconds", "How long provider requests have been failing without a "
               "success in between (0 while they succeed)."), "failing"),
            (g("alertd_dispatcher_loop_age_seconds", "Seconds since the dispatcher loop last turned."), "loop"),
            (g("alertd_rules_loaded", "Rules in the live rule set."), "rules"),
            (g("alertd_rule_errors", "Problems found by the last rule load or reload."), "rule_errors"),
            (c("alertd_rule_reload_failures", "Reloads refused for an error (the previous rules stayed live)."),
             "reload_failures"),
            (g("alertd_rules_loaded_timestamp_seconds", "When the live rule set was loaded (Unix time)."),
             "loaded_at"),
            (c("alertd_api_rate_limited", "API requests refused with 429 (server.rate_limit)."), "rate_limited"),
            (g("alertd_leader", "1 while this node runs the work that must run once (always on SQLite;"
               " on PostgreSQL while it holds the leader lease), else 0."), "leader"),
            (g("alertd_clock_offset_seconds", "How far the database's clock is ahead of this node's, as last"
               " measured: what the node adds to its own clock to schedule and claim work (0 on SQLite)."),
             "clock_offset"),
        ]

    async def _values(self) -> dict[str, float | None]:
        d = self.daemon
        values: dict[str, float | None] = {
            "rules": len(d.runner.ruleset), "rule_errors": len(d.rules.errors),
            "reload_failures": d.rules.reload_failures, "loaded_at": d.rules.loaded_at,
            "rate_limited": d.auth.limiter.limited if d.auth.limiter is not None else 0,
            "leader": 1.0 if d.leads() else 0.0, "clock_offset": d.clock.offset}
        dispatcher = d.dispatcher
        if dispatcher is not None:
            values["in_flight"] = dispatcher.in_flight
            since = dispatcher.health.failing_since
            values["failing"] = 0.0 if since is None else max(0.0, d.clock.timestamp() - since)
            values["loop"] = time.monotonic() - dispatcher.last_loop_at
        try:
            stats = await d.store.outbox.stats(d.clock.timestamp())  # the store is only read at scrape time
        except Exception:  # a broken database must not cost the other metrics: /healthz says why
            pass
        else:
            values.update(pending=stats["pending"], due=stats["due"], oldest=stats["oldest_due_age"] or 0.0)
        return values

    def collect(self):
        values = self.values
        for fam, key in self._families():
            value = values.get(key)
            if value is not None:
                fam.add_metric([], value)
                yield fam
