"""What changed in the tables a request reads every time, told by PostgreSQL.

Every API request checks its key, and every notification on its way into the outbox
reads the silences in force: two reads of tables that change a few times a day, two of
the six round trips of a notify request. Each node keeps what it read (Keys.find,
Silences.active), and a trigger on each table (schema migration 13) runs
``pg_notify('alertd_changed', <table>)`` in every transaction that changes it, whoever
makes the change: another node, the CLI, ``alertd db copy``, psql. One connection per
node LISTENs; a notice moves that table's version on, and a kept read tagged with an
older version is read again. PostgreSQL sends the notice at the commit, so another node
sees a revoked key or a new silence within a few milliseconds of it; the node that made
the change moves the version itself (``changed``), so it never sees the old state.

Only while that connection listens: when it drops (PostgreSQL restarted, the connection
killed) notices may have been missed, so every kept read is void and every read goes to
the database, as without this, until a new connection listens again (tried every second).
A connection that went quiet is asked ``SELECT 1`` every 30 s, so a silent network
failure is found too.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, Callable

import asyncpg
import structlog

CHANNEL = "alertd_changed"
RETRY = 1.0  # seconds between attempts to listen again
PROBE = 30.0  # seconds of quiet before the connection is asked whether it is still there

log = structlog.get_logger("alertd.store")


class Changes:
    def __init__(self, url: str):
        self.url = url
        self.listening = False
        self._versions: dict[str, int] = {}
        self._epoch = 0  # moves on whenever listening stops or starts: everything kept is void
        self._task: asyncio.Task | None = None
        self._stopped = False

    def tag(self, table: str) -> tuple[int, int] | None:
        """The version of ``table`` to keep a read made now under, or None while nobody listens
        (then nothing may be kept). Take it before the read: a notice that arrives while the
        read is on its way makes the read stale, and the tag says so."""
        if self._task is None and not self._stopped:
            self._task = asyncio.ensure_future(self._listen())  # at the first read: a CLI command never listens
        if not self.listening:
            return None
        return self._epoch, self._versions.get(table, 0)

    def current(self, table: str, tag: tuple[int, int] | None) -> bool:
        """Whether a read kept under ``tag`` still holds."""
        return tag is not None and self.listening and tag == (self._epoch, self._versions.get(table, 0))

    def changed(self, table: str) -> None:
        """``table`` changed: a notice, or this node's own write, which does not wait for its notice."""
        self._versions[table] = self._versions.get(table, 0) + 1

    def _notice(self, _conn, _pid, _channel, table: str) -> None:
        self.changed(table)

    async def _listen(self) -> None:
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.url)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                await conn.add_listener(CHANNEL, self._notice)
                self._epoch += 1  # what was read before listening may have changed unseen
                self.listening = True
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), PROBE)
                    except asyncio.TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=5)
                log.warning("not told of changes to keys and silences: reading them on every request",
                            error="the listening connection was lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("not told of changes to keys and silences: reading them on every request",
                            error=f"{exc.__class__.__name__}: {exc}")
            finally:
                self.listening = False
                self._epoch += 1
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RETRY)

    async def stop(self) -> None:
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class Kept:
    """Reads of one table kept until PostgreSQL says it changed: at most ``size`` of them, all
    forgotten when full. Only while the node listens (Changes.tag); the tag is taken before
    the read, so a notice that arrives while the read is on its way voids it."""

    def __init__(self, changes: Changes, table: str, size: int = 1):
        self.changes, self.table, self.size = changes, table, size
        self._reads: dict[Any, tuple[tuple[int, int], Any]] = {}

    async def read(self, key: Any, fetch: Callable[[], Awaitable[Any]], *,
                   keep: Callable[[Any], bool] = lambda value: True,
                   fits: Callable[[Any], bool] = lambda value: True) -> Any:
        """The kept read of ``key`` when it still holds and ``fits(value)``; else ``await fetch()``,
        kept when ``keep(value)``."""
        kept = self._reads.get(key)
        if kept is not None and self.changes.current(self.table, kept[0]) and fits(kept[1]):
            return kept[1]
        tag = self.changes.tag(self.table)
        value = await fetch()
        if tag is not None and keep(value):
            if len(self._reads) >= self.size:
                self._reads.clear()
            self._reads[key] = (tag, value)
        return value

    def changed(self) -> None:
        """This node changed the table: what it kept is void at once, before the notice comes."""
        self.changes.changed(self.table)
