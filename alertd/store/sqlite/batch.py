"""Group commit: the writes of concurrent requests share one transaction.

A commit is most of what a notify request costs SQLite (the WAL pages written,
and the checkpoints they bring). Under load many requests reach their write in
the same turn of the event loop; ``GroupCommit.run`` queues the write and
returns a future, and one callback at the end of that turn runs every queued
write in one transaction, each inside its own savepoint, then commits once.
A caller still awaits its own commit before going on, so "stored before the
provider is asked" and "never ok for what was not stored" hold as before; a
write that raises is rolled back alone and its caller gets the exception; a
commit that fails fails every caller of the batch.

Writes run in order, on the loop's thread, with nothing else in between, so
each sees the writes queued before it (storm folding counts on that to count
a burst's earlier rows against a number's limit). A caller gets the store's
errors (StoreUnavailable, StoreError), never sqlite3's.
"""
from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, Callable

from .connection import translated


class GroupCommit:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._queue: list[tuple[Callable[..., Any], tuple, asyncio.Future]] = []
        self.batches = self.writes = 0  # for the bench: writes per commit

    def run(self, write: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``write(conn, *args)``; the future has its result once committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((write, args, future))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        try:
            done = self._write(batch)
        except BaseException as exc:  # whatever went wrong, no transaction stays open and no caller waits forever
            try:
                _rollback(self.conn)
            finally:
                _fail(batch, _error(exc) if isinstance(exc, Exception) else RuntimeError(f"write interrupted: {exc!r}"))
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.writes += len(batch)
        for future, result, exc in done:
            if future.done():
                continue
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(_error(exc))

    def _write(self, batch) -> list[tuple[asyncio.Future, Any, Exception | None]]:
        """Every write of ``batch`` in one committed transaction; (future, result, error) each.
        Raises when the transaction as a whole failed (nothing of it is stored)."""
        conn, alone = self.conn, len(batch) == 1
        done: list[tuple[asyncio.Future, Any, Exception | None]] = []
        conn.execute("BEGIN IMMEDIATE")
        for write, args, future in batch:
            if alone:  # the transaction is the savepoint: an error fails it whole
                done.append((future, write(conn, *args), None))
                continue
            conn.execute("SAVEPOINT write")
            try:
                result = write(conn, *args)
            except Exception as exc:
                if not conn.in_transaction:  # SQLite gave the whole transaction up (disk full, I/O error)
                    raise
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                done.append((future, None, exc))
                continue
            conn.execute("RELEASE write")
            done.append((future, result, None))
        conn.execute("COMMIT")
        return done


def _error(exc: Exception) -> Exception:
    """sqlite3's error as the store's, its cause kept; any other exception as it is."""
    if isinstance(exc, sqlite3.Error):
        store_error = translated(exc)
        store_error.__cause__ = exc
        return store_error
    return exc


def _fail(batch, exc: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # a failed COMMIT may have ended it already
        conn.execute("ROLLBACK")
