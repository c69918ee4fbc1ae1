"""Group commit on PostgreSQL: the writes of concurrent requests share one transaction.

As on SQLite (alertd/store/sqlite/batch.py): ``run(write, *args)`` queues
``write(tx, *args)`` and returns a future; at the end of the loop's turn one task runs
every queued write in one transaction, each in its own savepoint, and commits once
(bench/pg_driver.py: eight writes a commit nearly double the rows per second). A caller
awaits its own commit, so nothing is answered ok before it is stored; a write that
raises is rolled back alone; a commit that fails fails the whole batch.

Unlike SQLite's, up to ``IN_FLIGHT`` batches commit at once, on pooled connections: a
burst is shared among them (a network round trip, not the disk, is what a PostgreSQL
write mostly waits for, so parallel transactions beat one long one: 32 concurrent
writes of a trigger each, 387 a second in one batch at a time, 1141 in up to 8), and
what arrives meanwhile waits for a free one. Decisions that depend on earlier writes take a per-key lock
(claims.lock_key), as they must anyway with other nodes writing.
"""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

from ..queries import settle
from . import translated, unavailable
from .connection import Conn

IN_FLIGHT = 8  # batches committing at once, on a pool of 10: two connections stay for reads and claims

class GroupCommit:
    def __init__(self, db):
        self.db = db
        self._queue: list[tuple[Callable[..., Any], tuple, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()  # the batches committing now
        self._waiting = False  # a _start is scheduled
        self.batches = self.writes = 0  # for the bench: writes per commit

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
        alone = len(batch) == 1
        done: list[tuple[asyncio.Future, Any, Exception | None]] = []
        async with translated(), self.db.pool.acquire() as conn, conn.transaction():
            tx = Conn(conn, self.db.node_id, self.db.db_clock)
            for write, args, future in batch:
                if alone:  # the transaction is the savepoint: an error fails it whole
                    done.append((future, await _call(write, tx, args), None))
                    continue
                try:
                    async with translated(), conn.transaction():  # nested: a savepoint
                        result = await _call(write, tx, args)
                except Exception as exc:
                    if unavailable(exc):  # the connection is gone: so is the whole transaction
                        raise
                    done.append((future, None, exc))
                    continue
                done.append((future, result, None))
        return done


async def _call(write: Callable[..., Any], tx: Conn, args: tuple) -> Any:
    result = write(tx, *args)
    if inspect.isawaitable(result):
        result = await result
    return result
