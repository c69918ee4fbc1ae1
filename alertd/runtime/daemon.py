"""The daemon: builds config, store, provider, dispatch, sources and HTTP into one running whole."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from typing import TYPE_CHECKING

import structlog
import uvicorn

from ..api import head_timeout
from ..api.app import create_app
from ..api.auth import Authenticator
from ..api.ratelimit import RateLimiter
from ..callerid import CallerId
from ..clock import SystemClock, SyncedClock
from ..config import Config
from ..directory import Directory
from ..dispatch.attempt import Attempts
from ..dispatch.callbacks import CallbackHandler
from ..dispatch.deadman import DeadMan
from ..dispatch.failover import build as build_router
from ..dispatch.followups import Followups
from ..dispatch.heartbeats import HeartbeatNotices
from ..dispatch.intake import Intake
from ..dispatch.rules import RuleRunner
from ..dispatch.shift_notices import ShiftNotices
from ..dispatch.worker import Dispatcher, Wakeup
from ..inbound.calls import InboundCalls
from ..providers.simulator import SimulatorProvider
from ..rules.reload import RuleManager
from ..sources import Sources
from ..sources.heartbeat import Heartbeats
from ..sources.schedule import Scheduler
from ..store import Store, open_store
from . import retention
from .metrics import Metrics
from .service import NotifyingServer, loops_problem

if TYPE_CHECKING:
    from .cluster import ClusterNode

log = structlog.get_logger("alertd")


class Daemon:
    """Everything one running alertd holds, built whole here: nothing is wired
    in later. Parts are parameters so tests can hand in a FakeClock or another provider."""

    def __init__(self, config: Config, *, clock=None, provider=None, store: Store | None = None,
                 freeze_gc: bool = False, node_clock: SystemClock | None = None):
        """``freeze_gc``: gc.freeze() once started (serve() only, see start()). ``clock``: the
        time every part reads, as it is (a test's FakeClock); without it, ``node_clock`` (the
        machine's, SystemClock) followed to the database's clock on PostgreSQL (SyncedClock)."""
        self.config = config
        # a test's clock moves time the database's does not: then leases follow it too
        self.store = store = store or open_store(config.database, config.cluster.node_id, db_clock=clock is None)
        self.freeze_gc = freeze_gc
        node_clock = node_clock or SystemClock()
        # several nodes: every due time on the database's clock, as the leases (alertd/clock.py)
        self.synced = SyncedClock(node_clock) if clock is None and config.postgres else None
        self.clock = clock = clock or self.synced or node_clock
        self.metrics = metrics = Metrics()  # this daemon's own registry: GET /metrics
        # the providers: a Router over providers: (routing, failover, circuits); or the one handed in (tests)
        self.router = build_router(config, clock, metrics) if provider is None else None
        self.sender = provider or self.router  # what every send goes through
        # the one adapter when there is one (tests steer the simulator through it), else the router
        single = self.router is not None and len(self.router.members) == 1
        self.provider = self.router.members[0].provider if single else self.sender
        self.caller_id = CallerId(config.provider)
        self.directory = Directory(config, store)
        wake = Wakeup()
        self.attempts = Attempts(self.sender, config, clock, metrics=metrics)
        self.intake = Intake(store, self.attempts, config, clock, metrics, wake)
        self.submit = self.intake.submit  # the one way into the outbox
        self.followups = Followups(store, clock, submit=self.submit, directory=self.directory,
                                   caller_id=self.caller_id, wake=wake, metrics=metrics)
        self.callbacks = CallbackHandler(store, clock, self.followups, metrics=metrics)
        for adapter in [m.provider for m in self.router.members] if self.router else [self.provider]:
            if isinstance(adapter, SimulatorProvider):
                adapter.callbacks = self.callbacks
        self.auth = Authenticator(store, clock, RateLimiter.from_config(config.server.rate_limit))
        self.rules = RuleManager(config, on_swap=self._on_swap)
        self.runner = RuleRunner(config, store, clock, submit=self.submit, directory=self.directory,
                                 caller_id=self.caller_id, wake=wake, loaded=lambda: self.rules.loaded_at is not None)
        self.sources = Sources(self.runner, store, clock, metrics)
        # pings, deadlines and their flips; the flips' notifications go through the runner's path
        self.heartbeats = Heartbeats(store, clock, HeartbeatNotices(store, clock, self.runner, submit=self.submit))
        self.cluster: ClusterNode | None = None  # several nodes on PostgreSQL: made by start()
        self.deadman = (DeadMan(config, store, clock, self.attempts, directory=self.directory,
                                caller_id=self.caller_id, metrics=metrics, leads=self.leads)
                        if config.deadman is not None else None)
        self.inbound = InboundCalls(config, store, clock, submit=self.submit,
                                    caller_id=self.caller_id)  # live call routing (alertd/inbound)
        self.shift_notices = ShiftNotices(config, store, clock, submit=self.submit, caller_id=self.caller_id)
        # the worker's timers, in the order each turn runs them: voicemails and shift notices last
        timers = [self.followups, *([self.deadman] if self.deadman else []), self.runner.groups,
                  self.inbound, self.shift_notices]
        self.dispatcher = Dispatcher(store, self.attempts, config, clock, wake, timers)
        ticks = None
        if config.postgres:
            # here, not at the top: the cluster module loads the PostgreSQL driver (asyncpg,
            # ~5 MiB and 20 ms of start-up) that a daemon on SQLite never uses
            from .cluster import ClusterTicks
            ticks = ClusterTicks(lambda: store.db.pool, config.cluster.node_id)
        self.scheduler = Scheduler(self.sources.run_rule, ticks, self.synced)
        self._worker: asyncio.Task | None = None
        self._started = False
        self.metrics.watch(self)
        self.app = create_app(self, lifespan=self.lifespan)

    def loops_problem(self) -> str | None:
        """Why the dispatcher or the scheduler is not alive, or None (/healthz, the watchdog)."""
        return loops_problem(self)

    def leads(self) -> bool:
        """Whether this node runs the work that must run once: always on SQLite; on
        PostgreSQL while it holds the leader lease (alertd/runtime/cluster.py)."""
        return self.cluster is None or self.cluster.leader

    def _on_swap(self, ruleset) -> None:
        self.runner.ruleset = ruleset
        if self._started:  # before that, start() syncs both once the store is open
            self.heartbeats.sync_soon(ruleset)
        if self._started and self.leads():
            self.scheduler.sync(ruleset)
        if self._started and self.freeze_gc:
            # start() froze the rules loaded then; rules reloaded later would otherwise be
            # walked by every full collection (10,000 rules: a 450 to 560 ms loop stall on this
            # 2-core machine, bench/rules.py (c)), and the frozen old rules never freed. One
            # collection now, at a reload that already costs seconds, frees the old rules and
            # freezes the new ones with the rest.
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    async def _on_leader(self, leads: bool) -> None:
        """The periodic work follows the lease: schedules and polls (built from the rules),
        retention; the dead man's switch asks leads() itself."""
        if not leads:
            self.scheduler.clear()
            retention.unschedule(self)
            return
        self.scheduler.sync(self.runner.ruleset)
        retention.schedule(self)
        try:
            await self.scheduler.catch_up(self.clock.now())
        except Exception:  # a tick it could not catch up must not keep it from leading
            log.exception("catching up missed schedule ticks failed")

    async def start(self) -> None:
        """Everything that must be up before the API listens (systemd's READY)."""
        self.loop = asyncio.get_running_loop()
        await self.store.open()
        if self.config.postgres:
            from .cluster import ClusterNode  # on PostgreSQL only: see ClusterTicks in __init__
            self.cluster = ClusterNode(self.store.db.pool, self.config.cluster.node_id,
                                       self.config.cluster.lease.total_seconds(), on_change=self._on_leader,
                                       clock=self.synced)
            # before anything computes a due time: the ticks keep it in step from then on
            await self.cluster.measure_clock()
        await self.sender.start()
        self._worker = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        self.rules.load_initial()
        self.scheduler.start()
        self._started = True
        await self.heartbeats.sync(self.runner.ruleset)
        self.heartbeats.start()
        if self.cluster is None:
            self.scheduler.sync(self.runner.ruleset)
            retention.schedule(self)
        else:
            await self.cluster.tick()  # leads at once when no node does
            self.cluster.start()
        self.rules.watch(self.loop)
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            # only the main thread may own signals; tests run the daemon in another
            self.loop.add_signal_handler(signal.SIGHUP, self.rules.reload)
        # what start-up made (modules, schemas, the app: ~85,000 objects) lives as long as the
        # daemon; frozen, a full collection no longer walks it (~100 ms on a loaded 2-core machine,
        # a 127 ms loop stall seen in bench/notify.py) but only what came after. The daemon
        # process only: tests start many daemons in one interpreter and must get their garbage back.
        # `alertd run` turned the collector off for the start-up (cli/run.py): on again from here
        if self.freeze_gc:
            gc.freeze()
            gc.enable()
        log.info("alertd started", providers=[f"{p.name} ({p.kind})" for p in self.config.providers],
                 database=self.config.database_label, listen=self.config.server.listen,
                 node=self.config.cluster.node_id if self.config.postgres else None,
                 clock_offset_seconds=round(self.clock.offset, 3) if self.synced else None)

    async def stop(self) -> None:
        if self.cluster is not None:
            await self.cluster.stop()  # a clean stop hands the lease over at once
        self.rules.stop()
        await self.heartbeats.stop()
        if self._started:
            self.scheduler.shutdown()
        await self.sources.close()
        self.dispatcher.stop()
        if self._worker is not None:
            # what is still pending stays in the outbox for the next start
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._worker, 10)
        await self.sender.close()
        await self.store.disconnect()
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
    daemon = Daemon(config, freeze_gc=True)
    server = NotifyingServer(daemon, uvicorn.Config(
        daemon.app, host=config.server.host, port=config.server.port, access_log=False, log_config=None,
        # ws="none": alertd serves no WebSocket; uvicorn would otherwise load a WebSocket
        # implementation (0.6 MiB) for upgrade requests nothing answers
        lifespan="on", server_header=False, timeout_graceful_shutdown=15, ws="none",
        http=head_timeout.protocol(config.server.request_head_timeout.total_seconds())))
    server.run()
    daemon.store.close()
    return 0 if server.started else 1
