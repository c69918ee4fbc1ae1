"""API keys: ak_live_ + 43 URL-safe characters, stored only as a SHA-256 hash.

A key has 256 bits of randomness, so a fast hash is enough (no key
stretching needed, unlike passwords); the lookup is by hash through a unique
index, and the final comparison is constant-time.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from ..store import Store
from . import scopes
from .errors import ApiError
from .ratelimit import RateLimiter

KEY_PREFIX = "ak_live_"
TOUCH_EVERY = 60.0  # last_used_at is written at most once a minute per key


def generate_key() -> tuple[str, str, str]:
    """(key, display prefix, hash)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(KEY_PREFIX) + 4], hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.query_params.get("key")


class Authenticator:
    def __init__(self, store: Store, clock, limiter: RateLimiter | None = None):
        self.store, self.clock = store, clock
        self.limiter = limiter  # server.rate_limit; None: no limit
        self._touched: dict[int, float] = {}

    async def __call__(self, request: Request) -> int:
        """Returns the key's id. Raises ApiError 401 (missing, unknown, revoked), 403 (the key lacks
        the route's scope, alertd/api/scopes.py) or 429 (over server.rate_limit, with Retry-After)."""
        key = presented_key(request)
        if not key:
            raise ApiError(401, "Missing API key: send 'Authorization: Bearer ak_live_...' or ?key=.")
        digest = hash_key(key)
        row = await self.store.keys.find(digest)
        # the lookup is by hash of the key, so timing reveals nothing about stored keys;
        # the final check is constant-time all the same
        # a revoked key gets the unknown key's answer: a leaked key tells its holder nothing
        if row is None or not hmac.compare_digest(digest, row["key_hash"]) or row["revoked_at"] is not None:
            raise ApiError(401, "Invalid API key.")
        # the route is absent on the notify fast path (alertd/api/app.py), which is taken on
        # the exact path: scope["path"] is it (request.url would build a whole URL, ~1% of a notify)
        route = request.scope.get("route")
        wanted = scopes.needed(request.method, route.path if route is not None else request.scope["path"],
                               request.path_params)
        if not scopes.allows(row["scopes"], wanted):
            raise ApiError(403, scopes.refusal(row["scopes"], wanted), missing_scope=wanted[0])
        now = self.clock.timestamp()
        if self.limiter is not None:
            wait = self.limiter.take(row["id"], now)
            if wait is not None:
                retry = self.limiter.retry_after(wait)
                raise ApiError(429, f"Rate limit exceeded: at most {self.limiter.text} per API key;"
                               f" retry after {retry} s.", {"Retry-After": retry})
        if now - self._touched.get(row["id"], 0.0) >= TOUCH_EVERY:
            self._touched[row["id"]] = now
            await self.store.keys.touch(row["id"], now)
        return row["id"]
