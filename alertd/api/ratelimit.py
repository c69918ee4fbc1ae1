"""Per-key rate limit: a token bucket per API key, in memory.

    server:
      rate_limit: {requests: 6000, per: 1m}    # the default; null turns it off

A key may send a burst of ``requests`` at once, then ``requests`` per ``per``
on average; beyond that the API answers 429 in the error envelope with
Retry-After (whole seconds until a request is allowed again). The default,
6,000 a minute, accepts a burst of 1,000 triggers from one integration at
once (an Alertmanager flushing every group, a storm), and still stops a script
stuck in a loop within seconds. Buckets live in memory: a restart refills
them, which errs on the side of letting alerts through.
"""
from __future__ import annotations

import math
from datetime import timedelta

from ..durations import format_duration


class RateLimiter:
    def __init__(self, requests: int, per_seconds: float):
        self.capacity = float(requests)
        self.rate = requests / per_seconds  # tokens per second
        self.text = f"{requests} requests per {format_duration(timedelta(seconds=per_seconds))}"
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)
        self.limited = 0  # refusals, for /metrics

    @classmethod
    def from_config(cls, cfg) -> "RateLimiter | None":
        return None if cfg is None else cls(cfg.requests, cfg.per.total_seconds())

    def take(self, key_id: int, now: float) -> float | None:
        """Spend one token of ``key_id``'s bucket; None when allowed, else the
        seconds until one is available."""
        tokens, at = self._buckets.get(key_id, (self.capacity, now))
        # max(): a clock stepped back must not drain the bucket
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key_id] = (tokens - 1.0, now)
            return None
        self._buckets[key_id] = (tokens, now)
        self.limited += 1
        return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))

