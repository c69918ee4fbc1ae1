"""The daemon: wires config, store, provider, dispatcher and HTTP together."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sqlite3

import aiohttp
import structlog
import uvicorn

from . import phones, retention
from .api import head_timeout
from .api.app import create_app
from .api.auth import Authenticator
from .api.ratelimit import RateLimiter
from .callbacks import CallbackHandler
from .clock import SystemClock, from_timestamp
from .config import Config
from .deadman import DeadMan
from .dispatch import Dispatcher, submit
from .providers.simulator import SimulatorProvider
from .providers.twilio import TwilioProvider
from .engine.runner import RuleRunner, Sources
from .escalation import Followups
from .metrics import Metrics
from .rules.reload import RuleManager
from .service import NotifyingServer
from .sources.schedule import Scheduler
from .store import Store, StoreError

log = structlog.get_logger("alertd")
SIMULATOR_FROM = "+15005550006"  # Twilio's own test-credentials "from" number


PROVIDERS = {
    "twilio": lambda p: TwilioProvider(p.account_sid, p.auth_token, p.api_base_url,
                                       timeout=p.timeout.total_seconds(), max_concurrency=p.max_concurrency),
    "simulator": lambda p: SimulatorProvider(press=p.simulate_press),
}


class Daemon:
    """Everything one running alertd holds. Parts are parameters so tests can
    hand in a FakeClock or another provider."""

    freeze_gc = False  # serve(): gc.freeze() once started

    def __init__(self, config: Config, *, clock=None, provider=None, store: Store | None = None):
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = Metrics()  # this daemon's own registry: GET /metrics
        self.store = store or Store(config.database)
        self.provider = provider or PROVIDERS[config.provider.kind](config.provider)
        self.default_from = config.provider.numbers[0] if config.provider.numbers else SIMULATOR_FROM
        self.followups = Followups(self.store, self.clock, submit=self.submit, caller_id=self.caller_id,
                                   resolve_rotation=self._resolve_rotation, metrics=self.metrics)
        self.callbacks = CallbackHandler(self.store, self.clock, self.followups, metrics=self.metrics)
        if isinstance(self.provider, SimulatorProvider):
            self.provider.callbacks = self.callbacks
        self.dispatcher: Dispatcher | None = None
        self.auth = Authenticator(self.store, self.clock, RateLimiter.from_config(config.server.rate_limit))
        self.runner = RuleRunner(self)
        self.sources = Sources(self.runner)
        self.rules = RuleManager(config, on_swap=self._on_swap)
        self.scheduler: Scheduler | None = None
        self._worker: asyncio.Task | None = None
        self.deadman: DeadMan | None = None
        self.metrics.watch(self)
        self.app = create_app(self, lifespan=self.lifespan)

    def _resolve_rotation(self, name: str, now: float) -> str:
        from .oncall import resolve_rotation
        return resolve_rotation(self.config, self.store, name, from_timestamp(now))

    def caller_id(self, to: str) -> str:
        return phones.pick_caller_id(self.config.provider.numbers, to, self.default_from)

    async def submit(self, trigger: dict, rows: list[dict]) -> list[dict]:
        try:
            stored = await submit(self.dispatcher, trigger, rows)
        except sqlite3.OperationalError as exc:
            log.error("database write failed", error=str(exc))
            raise StoreError("The database cannot be written; nothing was accepted. Try again.") from None
        self.metrics.stored(stored)  # silenced, throttled, failed at once: the provider never saw them
        return stored

    def _on_swap(self, ruleset) -> None:
        self.runner.ruleset = ruleset
        if self.scheduler is not None:
            self.scheduler.sync(ruleset)

    async def start(self) -> None:
        """Everything that must be up before the API listens (systemd's READY)."""
        self.loop = asyncio.get_running_loop()
        await self.provider.start()
        self.dispatcher = Dispatcher(self.store, self.provider, self.config, self.clock, followups=self.followups,
                                     metrics=self.metrics)
        if self.config.deadman is not None:
            self.deadman = DeadMan(self, self.dispatcher)
            self.dispatcher.timers.append(self.deadman)
        self.followups.poke = self.dispatcher.poke
        self.dispatcher.timers.append(self.runner.groups)  # rule groups due after group_wait
        self._worker = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        self.sources.http = aiohttp.ClientSession()
        self.rules.load_initial()
        self.scheduler = Scheduler(self.sources.run_rule)
        self.scheduler.start()
        self.scheduler.sync(self.runner.ruleset)
        retention.schedule(self)
        self.rules.watch(self.loop)
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            # only the main thread may own signals; tests run the daemon in another
            self.loop.add_signal_handler(signal.SIGHUP, self.rules.reload)
        # what start-up made (modules, schemas, the app: ~85,000 objects) lives as long as the
        # daemon; frozen, a full collection no longer walks it (~100 ms on a loaded 2-core machine,
        # a 127 ms loop stall seen in bench/notify.py) but only what came after. The daemon
        # process only: tests start many daemons in one interpreter and must get their garbage back
        if self.freeze_gc:
            gc.freeze()
        log.info("alertd started", provider=self.config.provider.kind, database=str(self.config.database),
                 listen=self.config.server.listen)

    async def stop(self) -> None:
        self.rules.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.sources.http is not None:
            await self.sources.http.close()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self._worker is not None:
            # what is still pending stays in the outbox for the next start
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._worker, 10)
        await self.provider.close()
        log.info("alertd stopped")

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        await self.start()
        try:
            yield
        finally:
            await self.stop()


def serve(config: Config) -> int:
    """Run in the foreground until SIGTERM/SIGINT; returns the exit code."""
    daemon = Daemon(config)
    daemon.freeze_gc = True
    server = NotifyingServer(daemon, uvicorn.Config(
        daemon.app, host=config.server.host, port=config.server.port, access_log=False, log_config=None,
        lifespan="on", server_header=False, timeout_graceful_shutdown=15,
        http=head_timeout.protocol(config.server.request_head_timeout.total_seconds())))
    server.run()
    daemon.store.close()
    return 0 if server.started else 1
