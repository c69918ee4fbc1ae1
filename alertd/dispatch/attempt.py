"""One provider request for one channel of a notification, and what the provider's answers say.

``Attempts`` makes every request, inline (the API's first attempt) and the
worker's alike: at most ``provider.max_concurrency`` at once, a transient
failure retried after exponential backoff with jitter, up to
``dispatch.max_attempts``. ``ProviderHealth`` is what the answers say about
the provider itself: since when requests have been failing, how many, the
last error. The dead man's switch, /metrics and /healthz read it. With
several providers, ``Attempts.health`` is that of them all (a send fails
only when every provider it tried failed), and each provider has one of its
own, which its circuit reads (failover.py).
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import structlog

from ..clock import SystemClock
from ..config import Config
from ..providers import Outgoing, Provider, ProviderError
from ..runtime.metrics import Metrics

log = structlog.get_logger("alertd.dispatch")
# An API request makes its first attempt inline only when a provider slot is
# expected within this long; in a storm its send goes to the worker at once
HANDOVER_WAIT = 0.5


class ProviderHealth:
    """Since when the provider's requests have failed without a success in between.

    A permanent refusal of one number (invalid, unsubscribed) is news about
    that number, not about the provider: it neither starts nor ends a spell."""

    def __init__(self, clock, name: str | None = None):
        self.clock, self.name = clock, name  # name: one provider's of providers:, None for them all
        self.failing_since: float | None = None  # clock time of the first failure since the last success
        self.failures = 0
        self.last_error: dict | None = None

    def failed(self, error: dict) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock.timestamp()
        self.failures += 1
        self.last_error = error

    def succeeded(self) -> None:
        if self.failing_since is None:
            return
        log.warning("provider requests succeed again", provider=self.name, failures=self.failures,
                    failing_for_s=round(self.clock.timestamp() - self.failing_since, 1))
        self.failing_since, self.failures, self.last_error = None, 0, None


class Attempts:
    def __init__(self, provider: Provider, config: Config, clock=None, *, metrics=None, rng=None):
        self.provider, self.config = provider, config
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.rng = rng or random.Random()
        self.health = ProviderHealth(self.clock)
        self.base_url = config.server.base_url
        self._sem = asyncio.Semaphore(config.provider.max_concurrency)
        self.in_flight = 0
        # attempts started or waiting for a slot, inline and the worker's, and the provider's
        # recent request time: how long a new inline attempt would wait (see slot_soon)
        self.busy = 0
        self.latency: float | None = None
        self.handover_wait = HANDOVER_WAIT

    def outgoing(self, to: str, message: str | None, params: dict, log_id: int, channel: str) -> Outgoing:
        """What the provider is asked to send for one channel of log row ``log_id``."""
        base = self.base_url
        return Outgoing(
            log_id=log_id, channel=channel, to=to,
            from_=params["from"], message=message, voice=params.get("voice", "alice"),
            language=params.get("language"), repeat=params.get("repeat", 1), gather=params.get("gather", False),
            status_callback=f"{base}/twilio/status?log_id={log_id}&channel={channel}",
            gather_action=f"{base}/twilio/gather?log_id={log_id}",
            twiml_url=f"{base}/twilio/twiml?log_id={log_id}",
            machine_detection=self.config.provider.machine_detection)

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        cfg = self.config.dispatch
        delay = min(cfg.backoff_max.total_seconds(), cfg.backoff_base.total_seconds() * 2 ** (attempts - 1))
        delay *= self.rng.uniform(0.5, 1.0)  # jitter: retries of a burst do not return in step
        return max(delay, retry_after or 0.0)

    async def attempt(self, outbox_id: int, attempts_before: int, out: Outgoing) -> dict:
        """One provider request. Never raises; returns a result for Store.outbox.record_results."""
        started = time.perf_counter()
        result: dict[str, Any] = {"outbox_id": outbox_id, "log_id": out.log_id, "channel": out.channel}
        async with self._sem:
            self.in_flight += 1
            sending = time.perf_counter()
            try:
                sid = await self.provider.send(out)
                # a Sent names the provider that carried it (failover.py); another Provider's sid does not
                result.update(outcome="sent", sid=sid, sent_at=self.clock.timestamp(),
                              provider=getattr(sid, "provider", None))
                self.health.succeeded()
            except Exception as exc:
                if not isinstance(exc, ProviderError):
                    # a bug in a provider (or an exception type it forgot to map) must not
                    # lose the item: retried like a transient failure, within max_attempts
                    log.exception("provider raised an unexpected exception", log_id=out.log_id)
                    exc = ProviderError(repr(exc), None)
                result["error"] = exc.as_dict()
                result["provider"] = exc.provider
                if not exc.permanent:  # a refused number says nothing about the provider
                    self.health.failed(result["error"])
                attempts = attempts_before + 1
                if exc.permanent:
                    result["outcome"] = "failed"
                elif attempts >= self.config.dispatch.max_attempts:
                    result["outcome"] = "failed"
                    result["error"] = {"code": exc.code, "message": f"gave up after {attempts} attempts: {exc.message}"}
                else:
                    result["outcome"] = "retry"
                    result["next_attempt_at"] = self.clock.timestamp() + self.backoff(attempts, exc.retry_after)
            finally:
                self.in_flight -= 1
                took = time.perf_counter() - sending
                self.latency = took if self.latency is None else 0.8 * self.latency + 0.2 * took
        elapsed = time.perf_counter() - started
        self.metrics.provider_request(out.channel, result["outcome"], elapsed)
        log.info("provider request", log_id=out.log_id, channel=out.channel, outcome=result["outcome"],
                 sid=result.get("sid"), error=result.get("error"), duration_ms=round(elapsed * 1000, 2))
        return result

    def slot_soon(self, ahead: int) -> bool:
        """Whether an attempt with ``ahead`` others before it gets a provider slot
        within ``handover_wait``: a slot frees every latency / max_concurrency."""
        cap = self.config.provider.max_concurrency
        if ahead < cap:
            return True
        if self.latency is None:
            return self.handover_wait > 0
        return (ahead - cap + 1) * self.latency / cap <= self.handover_wait
