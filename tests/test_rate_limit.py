"""Limits on the API and on the provider: a token bucket per API key (429 in
the envelope with Retry-After), and at most provider.max_concurrency provider
requests in flight."""
from __future__ import annotations

import time

import pytest
import requests

from alertd import config as config_mod
from alertd.api.auth import generate_key
from alertd.api.ratelimit import RateLimiter
from alertd.clock import FakeClock
from conftest import twilio_overrides, write_config
from test_metrics import scrape, value

A = "+15551234567"
TEMPLATES = "/api/v1/calls/templates"


@pytest.fixture
def limited(make_daemon):
    return make_daemon({"server": {"rate_limit": {"requests": 3, "per": "1m"}}}, clock=FakeClock())


def second_key(d):
    key, prefix, digest = generate_key()
    d.on_loop(d.daemon.store.keys.create, "other", prefix, digest, time.time())
    return {"Authorization": f"Bearer {key}"}


def test_a_key_over_its_limit_gets_429_in_the_envelope_with_retry_after(limited):
    for _ in range(3):
        assert limited.api.get(limited.url(TEMPLATES), timeout=10).status_code == 200
    r = limited.api.get(limited.url(TEMPLATES), timeout=10)
    assert r.status_code == 429
    assert r.json() == {"ok": False, "code": 429,
                        "error": "Rate limit exceeded: at most 3 requests per 1m per API key; retry after 20 s."}
    assert r.headers["retry-after"] == "20"  # one request's worth of refill: 60 s / 3
    limited.clock.advance(19)
    assert limited.api.get(limited.url(TEMPLATES), timeout=10).headers["retry-after"] == "1"
    limited.clock.advance(1)
    assert limited.api.get(limited.url(TEMPLATES), timeout=10).status_code == 200
    assert value(scrape(limited), "alertd_api_rate_limited_total") == 2


def test_notify_on_its_fast_path_is_limited_too_and_nothing_is_sent(limited):
    for _ in range(3):
        assert limited.notify({"to": A, "message": "x"}).status_code == 200
    r = limited.notify({"to": A, "message": "x"})
    assert r.status_code == 429 and r.json()["code"] == 429 and r.headers["retry-after"] == "20"
    assert len(limited.daemon.provider.sent) == 3


def test_each_key_has_its_own_bucket(limited):
    for _ in range(3):
        limited.api.get(limited.url(TEMPLATES), timeout=10)
    assert limited.api.get(limited.url(TEMPLATES), timeout=10).status_code == 429
    other = second_key(limited)
    assert limited.api.get(limited.url(TEMPLATES), headers=other, timeout=10).status_code == 200


def test_requests_without_a_valid_key_are_refused_before_the_limit(limited):
    for _ in range(5):
        r = limited.api.get(limited.url(TEMPLATES), headers={"Authorization": "Bearer nope"}, timeout=10)
        assert r.status_code == 401
    assert limited.api.get(limited.url(TEMPLATES), timeout=10).status_code == 200


def test_health_and_metrics_without_a_key_are_not_limited(limited):
    for _ in range(10):
        assert requests.get(limited.url("/healthz"), timeout=10).status_code == 200
        assert requests.get(limited.url("/metrics"), timeout=10).status_code == 200
    assert value(scrape(limited), "alertd_api_rate_limited_total") == 0
    for _ in range(3):  # the key's bucket was not touched: its whole burst is still there
        assert limited.api.get(limited.url(TEMPLATES), timeout=10).status_code == 200


def test_the_default_is_6000_a_minute_and_null_turns_it_off(tmp_path, make_daemon):
    config, _ = config_mod.load(write_config(tmp_path, 8080))
    assert config.server.rate_limit.requests == 6000 and config.server.rate_limit.per.total_seconds() == 60
    d = make_daemon({"server": {"rate_limit": None}}, clock=FakeClock())
    assert d.daemon.auth.limiter is None
    for _ in range(20):
        assert d.api.get(d.url(TEMPLATES), timeout=10).status_code == 200


@pytest.mark.parametrize("limit, error", [
    ({"requests": 0}, "server.rate_limit.requests: Input should be greater than or equal to 1"),
    ({"requests": 10, "per": "0s"}, "server.rate_limit.per: must be at least 1s (write it like 1m)"),
    ({"requests": 10, "burst": 5}, "unknown key 'burst' in server.rate_limit"),
])
def test_config_errors_name_the_key(tmp_path, limit, error):
    path = write_config(tmp_path, 8080, {"server": {"rate_limit": limit}})
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(path)
    assert [p.split(": ", 1)[1] for p in exc.value.problems] == [error]


def test_the_bucket_refills_continuously_and_never_above_its_size():
    limiter = RateLimiter(2, 10.0)  # 0.2 tokens a second
    assert limiter.take(1, 0.0) is None and limiter.take(1, 0.0) is None
    assert limiter.take(1, 0.0) == pytest.approx(5.0)
    assert limiter.take(1, 2.5) == pytest.approx(2.5)  # half a token back
    assert limiter.take(1, 5.0) is None
    assert limiter.take(1, 1000.0) is None and limiter.take(1, 1000.0) is None  # full again: 2, not 200
    assert limiter.take(1, 1000.0) is not None
    assert limiter.take(1, 900.0) is not None  # a clock stepped back drains nothing and refills nothing


def test_provider_requests_in_flight_never_exceed_max_concurrency(make_daemon, fake_twilio):
    o = twilio_overrides(fake_twilio)
    o["provider"]["max_concurrency"] = 2
    d = make_daemon(o)
    fake_twilio.latency, fake_twilio.max_concurrent = 0.1, 2  # a third at once would get 429
    numbers = [f"+1555123{i:04d}" for i in range(8)]
    started = time.monotonic()
    r = d.notify({"to": numbers, "message": "x"})
    assert r.status_code == 200
    fake_twilio.wait_for(8, "call")  # the API's first attempts, then the worker's
    assert time.monotonic() - started >= 0.4  # 8 requests, 2 at a time, 0.1 s each
    assert [req.outcome for req in fake_twilio.requests] == ["created"] * 8  # never a 429 from the fake
    d.wait_until(lambda: d.daemon.dispatcher.in_flight == 0, what="the last answers")
