"""Group commit on PostgreSQL: the writes of concurrent requests share one transaction.

As on SQLite (alertd/store/sqlite/batch.py): ``run(write, *args)`` queues
``write(tx, *args)`` and returns a future; at the end of the loop's turn one task runs
every queued write in one transaction and commits once (bench/pg_driver.py: eight
writes a commit nearly double the rows per second). A caller awaits its own commit, so
nothing is answered ok before it is stored; a commit that fails fails the whole batch.

A write that raises is rolled back alone, but not with a savepoint around every write,
as SQLite's batch does: on PostgreSQL a savepoint and its release are two more round
trips per write, about a third of the statements of a notify request. The writes run
bare; when one raises, the whole transaction is rolled back and each write of the
batch runs again in a transaction of its own, so the failing one fails alone. A write
may therefore run twice, the first time rolled back: it must leave its arguments as it
found them, or restore them when it starts (Intake._store does).

Unlike SQLite's, up to ``IN_FLIGHT`` batches commit at once, on pooled connections: a
burst is shared among them (a network round trip, not the disk, is what a PostgreSQL
write mostly waits for, so parallel transactions beat one long one: 32 concurrent
writes of a trigger each, 387 a second in one batch at a time, 1141 in up to 8), and
what arrives meanwhile waits for a free one. But each transaction costs a BEGIN and a
COMMIT, two round trips that both the node and the server pay for in CPU, and the more
transactions at once, the fewer writes each shares them among: in the notify benchmark
(32 clients), PostgreSQL's CPU a request was 0.61 and 0.70 ms with 8 at once, 0.56 and
0.46 ms with 4, 0.43 and 0.41 ms with 2, and the node's rate against the yardstick's
0.49/0.51, 0.55/0.58 and 0.54/0.52. Four keeps most of the parallel commits a burst
gains from, at less CPU a request. Decisions that depend on earlier writes take a per-key lock
(claims.lock_key), as they must anyway with other nodes writing.
"""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

from ..queries import settle
from . import translated, unavailable
from .connection import Conn

IN_FLIGHT = 4  # batches committing at once, on a pool of 10: the others stay for reads and claims

class GroupCommit:
    def __init__(self, db):
        self.db = db
        self._queue: list[tuple[Callable[..., Any], tuple, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()  # the batches committing now
        self._waiting = False  # a _start is scheduled
        self.batches = self.writes = 0  # for the bench: writes per commit
        self.reruns = 0  # batches rolled back whole because one write raised, then run write by write

    def run(self, write: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``write(tx, *args)`` (a coroutine function, or a plain one); the future
        has its result once committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((write, args, future))
        if not self._waiting and len(self._tasks) < IN_FLIGHT:
            self._waiting = True
            loop.call_soon(self._start)
        return future

    def _start(self) -> None:
        """Share what is queued among the free slots: a burst of 32 writes on 4 free
        connections is 4 transactions of 8, committing side by side."""
        self._waiting = False
        free = IN_FLIGHT - len(self._tasks)
        while self._queue and free > 0:
            size = -(-len(self._queue) // free)  # ceil
            batch, self._queue = self._queue[:size], self._queue[size:]
            task = asyncio.ensure_future(self._flush(batch))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._done)
            free -= 1

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._queue and not self._waiting:
            self._waiting = True
            asyncio.get_running_loop().call_soon(self._start)

    async def _flush(self, batch) -> None:
        try:
            done = await self._write(batch)
        except BaseException as exc:  # whatever went wrong, no caller waits forever
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else
                                         RuntimeError(f"write interrupted: {exc!r}"))
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.writes += len(batch)
        settle(done)

    async def _write(self, batch) -> list[tuple[asyncio.Future, Any, Exception | None]]:
        if len(batch) > 1:
            try:
                return await self._together(batch)
            except _OneFailed:
                self.reruns += 1  # rolled back whole: each write again, alone
        return await self._each_alone(batch)

    async def _together(self, batch) -> list[tuple[asyncio.Future, Any, Exception | None]]:
        """Every write in one transaction, no savepoints; raises _OneFailed (after the
        rollback) when a write raised anything but the database's unavailability."""
        done: list[tuple[asyncio.Future, Any, Exception | None]] = []
        async with translated(), self.db.pool.acquire() as conn, conn.transaction():
            tx = Conn(conn, self.db.node_id, self.db.db_clock)
            for write, args, future in batch:
                try:
                    result = await _call(write, tx, args)
                except Exception as exc:
                    if unavailable(exc):  # the connection is gone: so is the whole transaction
                        raise
                    raise _OneFailed() from exc
                done.append((future, result, None))
        return done

    async def _each_alone(self, batch) -> list[tuple[asyncio.Future, Any, Exception | None]]:
        """Each write in a transaction of its own, on one connection: a write that raises
        fails alone. The database gone midway: what committed is settled, the rest raise."""
        done: list[tuple[asyncio.Future, Any, Exception | None]] = []
        try:
            async with translated(), self.db.pool.acquire() as conn:
                tx = Conn(conn, self.db.node_id, self.db.db_clock)
                for write, args, future in batch:
                    try:
                        async with translated(), conn.transaction():
                            result = await _call(write, tx, args)
                    except Exception as exc:
                        if unavailable(exc) or len(batch) == 1:
                            raise
                        done.append((future, None, exc))
                        continue
                    done.append((future, result, None))
        except BaseException:
            settle(done)  # committed: their callers hear so; _flush fails the others
            raise
        return done


class _OneFailed(Exception):
    """A write of a shared transaction raised: the batch runs again, write by write."""


async def _call(write: Callable[..., Any], tx: Conn, args: tuple) -> Any:
    result = write(tx, *args)
    if inspect.isawaitable(result):
        result = await result
    return result
