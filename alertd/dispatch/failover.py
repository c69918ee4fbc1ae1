"""Several providers as one: routing, failover and a circuit breaker per provider.

``Router`` is a Provider. For each send it takes the providers ``routing:``
names for the channel and the recipient (alertd/provider_config.py), skips
those whose circuit is open, and asks them in turn: a failure that another
provider could avoid (no connection, a timeout, 5xx, 429 asking to wait
longer than ``retry_after_budget``, 401/403) goes to the next one at once;
a refusal of the recipient (an invalid number) is the same everywhere and
is raised as it is. The sid it returns (``Sent``) names the provider that
carried the send, for the log row.

A timeout is ambiguous: the provider may have placed the call. Failing
over then may ring twice, which alertd prefers to not ringing at all; each
such failover is counted (``doubles``, alertd_provider_failover_after_timeout).

Each provider's health is a ``ProviderHealth`` (attempt.py), the same
object the dispatcher keeps for all of them; its ``Breaker`` reads it: after
``circuit_failures`` failures without a success in between, the provider is
skipped for ``circuit_cooldown``, as it is when at least
``circuit_failure_rate`` of its requests in the last ``circuit_window``
failed (once ``circuit_min_requests`` were made in it: a provider that
fails every other send); then one send is let through as a probe (the
others still skip it); its success closes the circuit, its failure opens
it again. When every provider that could carry a send is open, they
are all tried anyway: a send is never refused without asking anyone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import structlog
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from .. import phones
from ..clock import from_timestamp, iso
from ..providers import Outgoing, ProviderError, Sent
from ..providers.common import row_token
from ..providers.registry import adapter
from ..runtime.metrics import PROVIDER_BUCKETS
from .attempt import ProviderHealth

log = structlog.get_logger("alertd.providers")
STATES = ("closed", "open", "half-open")
OUTCOMES = ("sent", "failed", "refused")


class Window:
    """Requests and failures of the last ``seconds``, in SLOTS buckets: its memory does not
    grow with the traffic, and a bucket leaves the count whole once it is ``seconds`` old."""

    SLOTS = 10

    def __init__(self, clock, seconds: float):
        self.clock, self.width = clock, seconds / self.SLOTS
        self.slots: dict[int, list[int]] = {}  # bucket number -> [requests, failures]

    def add(self, failed: bool) -> tuple[int, int]:
        """Counts one request; returns (requests, failures) in the window."""
        now = int(self.clock.timestamp() // self.width)
        slot = self.slots.setdefault(now, [0, 0])
        slot[0] += 1
        slot[1] += failed
        for old in [k for k in self.slots if k <= now - self.SLOTS]:
            del self.slots[old]
        return sum(s[0] for s in self.slots.values()), sum(s[1] for s in self.slots.values())

    def clear(self) -> None:
        self.slots.clear()


class Breaker:
    """One provider's circuit over its ProviderHealth; times from the health's clock."""

    def __init__(self, health: ProviderHealth, failures: int, cooldown: float, *, rate: float = 1.0,
                 window: float = 60.0, min_requests: int = 10**9):
        self.health, self.clock = health, health.clock
        self.threshold, self.cooldown = failures, cooldown
        self.rate, self.min_requests = rate, min_requests
        self.window = Window(self.clock, window)
        self.opened_at: float | None = None
        self.probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock.timestamp() >= self.opened_at + self.cooldown else "open"

    def admits(self) -> bool:
        """Whether a send may go to this provider now (taking the probe's place when half-open)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self.probing:
            self.probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.health.succeeded()
        self.window.add(False)
        self.opened_at, self.probing = None, False

    def failed(self, error: dict) -> bool:
        """Counts a failure; True when it opened (or re-opened) the circuit."""
        self.health.failed(error)
        requests, failures = self.window.add(True)
        was_probe, self.probing = self.probing, False
        too_many = (self.health.failures >= self.threshold
                    or (requests >= self.min_requests and failures >= self.rate * requests))
        if was_probe or (self.opened_at is None and too_many):
            self.opened_at = self.clock.timestamp()
            self.window.clear()  # once closed again, the provider starts from a clean window
            return True
        return False

    def refused(self) -> None:
        """A refusal of the recipient: news about that number, not the provider (ProviderHealth's
        rule), so the circuit stays as it is; a probe that got one lets the next send probe again."""
        self.probing = False


@dataclass
class Member:
    """One configured provider: its adapter, where its callbacks arrive, its circuit and counts."""

    name: str
    kind: str
    provider: Any
    callback_base: str  # {public_url}/providers/{name} (/twilio for the first Twilio account)
    breaker: Breaker
    numbers: list[str] = field(default_factory=list)
    machine_detection: bool = False
    token_secret: str = ""  # set for providers whose callback URLs carry a row token
    callbacks: Any = None  # has async callback(what, inbound, hooks, prepare) -> Reply; None: no callbacks
    requests: int = 0  # since start, every outcome
    failures: int = 0  # since start, failures another provider may avoid
    latency: float | None = None  # seconds, a moving average

    @property
    def health(self) -> ProviderHealth:
        return self.breaker.health

    def prepare(self, out: Outgoing) -> Outgoing:
        """``out`` as this provider sends it: its own caller ID and callback URLs."""
        from_ = out.from_
        if self.numbers and from_ not in self.numbers:
            from_ = phones.pick_caller_id(self.numbers, out.to, from_)
        token = row_token(self.token_secret, self.name, out.log_id) if self.token_secret else ""
        t = f"&t={token}" if token else ""
        cb, lid = self.callback_base, out.log_id
        return replace(out, from_=from_, callback_base=cb, token=token,
                       status_callback=f"{cb}/status?log_id={lid}&channel={out.channel}{t}",
                       gather_action=f"{cb}/gather?log_id={lid}{t}", twiml_url=f"{cb}/twiml?log_id={lid}{t}",
                       machine_detection=self.machine_detection)

    def report(self) -> dict:
        """/healthz and the dashboard: the circuit, the current spell of failures, the counts."""
        h = self.health
        return {"name": self.name, "kind": self.kind, "circuit": self.breaker.state,
                "failing_since": iso(from_timestamp(h.failing_since)), "consecutive_failures": h.failures,
                "last_error": h.last_error, "requests": self.requests, "failures": self.failures,
                "latency_ms": None if self.latency is None else round(self.latency * 1000, 1)}


class Router:
    """A Provider over ordered Members (see the module docstring)."""

    def __init__(self, members: list[Member], order: Callable[[list[str], str, str], list[str]], *,
                 retry_after_budget: float = 2.0, metrics=None):
        self.members = members
        self.by_name = {m.name: m for m in members}
        self._names = [m.name for m in members]
        self._order = order
        self.retry_after_budget = retry_after_budget
        self.configured = all(getattr(m.provider, "configured", True) for m in members)
        self.doubles = 0  # failovers after a timeout: the call may ring twice
        self._metrics(metrics)

    def _metrics(self, metrics) -> None:
        registry = metrics.registry if metrics is not None else None
        requests = Counter("alertd_provider_requests", "Requests to each provider, by outcome: sent, "
                           "failed (a failure another provider may avoid), refused (the recipient).",
                           ["provider", "outcome"], registry=registry)
        latency = Histogram("alertd_provider_latency_seconds", "Each provider's request time.",
                            ["provider"], buckets=PROVIDER_BUCKETS, registry=registry)
        # bound once here: a send costs no label lookup (alertd/runtime/metrics.py)
        self._requests = {(n, o): requests.labels(n, o) for n in self._names for o in OUTCOMES}
        self._latency = {n: latency.labels(n) for n in self._names}
        self._doubles = Counter("alertd_provider_failover_after_timeout", "Failovers after a timeout: the first "
                                "provider may have placed the call too (a possible double ring).", registry=registry)
        if registry is not None:
            registry.register(_CircuitGauge(self))

    async def start(self) -> None:
        for m in self.members:
            await m.provider.start()

    async def close(self) -> None:
        for m in self.members:
            await m.provider.close()

    def chosen(self, channel: str, to: str) -> list[Member]:
        return [self.by_name[n] for n in self._order(self._names, channel, to)]

    async def send(self, out: Outgoing) -> str:
        """The sid (a Sent naming the provider). Raises the last ProviderError (its ``provider`` set)."""
        last: ProviderError | None = None
        chosen = self.chosen(out.channel, out.to)
        # a circuit is asked only when its turn comes: a half-open one gives its one probe to a send that reaches it
        admitted = (m for m in chosen if m.breaker.admits())
        for m in _or_all(admitted, chosen):
            if last is not None and last.timeout:
                self.doubles += 1
                self._doubles.inc()
                log.warning("failover after a timeout: the call may ring twice", log_id=out.log_id,
                            failed=last.provider, next=m.name)
            started = time.perf_counter()
            m.requests += 1
            try:
                sid = await m.provider.send(m.prepare(out))
            except Exception as exc:  # noqa: BLE001 - an adapter's bug must not stop the failover
                if not isinstance(exc, ProviderError):
                    log.exception("provider raised an unexpected exception", provider=m.name, log_id=out.log_id)
                    exc = ProviderError(repr(exc), None)
                self._took(m, started)
                exc.provider = m.name
                if not exc.provider_fault:
                    m.breaker.refused()
                    self._requests[(m.name, "refused")].inc()
                    raise exc
                m.failures += 1
                self._requests[(m.name, "failed")].inc()
                if m.breaker.failed(exc.as_dict()):
                    log.warning("provider circuit open", provider=m.name, failures=m.health.failures,
                                error=m.health.last_error)
                last = exc
                if exc.status == 429 and exc.retry_after is not None and exc.retry_after <= self.retry_after_budget:
                    raise exc  # a short wait asked: the outbox retries it after Retry-After
                continue
            self._took(m, started)
            m.breaker.succeeded()
            self._requests[(m.name, "sent")].inc()
            return Sent.of(sid, m.name)
        assert last is not None, "routing chose no provider"
        raise last

    def _took(self, m: Member, started: float) -> None:
        took = time.perf_counter() - started
        m.latency = took if m.latency is None else 0.8 * m.latency + 0.2 * took
        self._latency[m.name].observe(took)

    def health(self) -> list[dict]:
        return [m.report() for m in self.members]


def _or_all(admitted, chosen: list[Member]):
    """The admitted members; all of them when none was admitted (every circuit open)."""
    any_ = False
    for m in admitted:
        any_ = True
        yield m
    if not any_:
        yield from chosen


class _CircuitGauge:
    def __init__(self, router: Router):
        self.router = router

    def collect(self):
        g = GaugeMetricFamily("alertd_provider_circuit", "Each provider's circuit: 1 for its current state "
                              "(closed, open, half-open).", labels=["provider", "state"])
        for m in self.router.members:
            current = m.breaker.state
            for state in STATES:
                g.add_metric([m.name, state], 1.0 if state == current else 0.0)
        yield g


def build(config, clock, metrics=None, adapters: dict | None = None) -> Router:
    """The Router of ``config.providers``; ``adapters`` (name -> Provider) replaces some (tests)."""
    base = config.server.base_url
    members, legacy_twilio = [], True
    r = config.routing
    for entry in config.providers:
        made, callbacks = adapter(entry, clock)
        if adapters and entry.name in adapters:
            made = adapters[entry.name]
        # the first Twilio account keeps the /twilio/... URLs consoles were set to before providers:
        prefix = "/twilio" if entry.kind == "twilio" and legacy_twilio else f"/providers/{entry.name}"
        legacy_twilio = legacy_twilio and entry.kind != "twilio"
        breaker = Breaker(ProviderHealth(clock, entry.name), r.circuit_failures, r.circuit_cooldown.total_seconds(),
                          rate=r.circuit_failure_rate, window=r.circuit_window.total_seconds(),
                          min_requests=r.circuit_min_requests)
        members.append(Member(
            entry.name, entry.kind, made, base + prefix, breaker,
            numbers=list(entry.numbers), machine_detection=entry.machine_detection,
            token_secret=getattr(made, "token_secret", "") if getattr(made, "TOKEN_IN_URL", False) else "",
            callbacks=callbacks))
    return Router(members, r.order, retry_after_budget=r.retry_after_budget.total_seconds(), metrics=metrics)
