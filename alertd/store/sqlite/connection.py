"""The SQLite connection: opening it, migrating it, transactions, and the
translation of sqlite3's errors into the store's (alertd/store/errors.py).

SQLite in WAL mode with synchronous=NORMAL: a committed transaction survives a
crash or kill -9 of the daemon (not a power cut before the next checkpoint).
Every statement is parameterised. The daemon uses one connection from its
event loop thread: each statement takes microseconds, which is cheaper than
handing it to a thread.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import SchemaTooNew, StoreError, StoreUnavailable, wrap_public_coroutines
from .checkpoint import Checkpointer
from .schema import MIGRATIONS

Row = sqlite3.Row


def translated(exc: sqlite3.Error) -> StoreError:
    """sqlite3's error as the store's: an OperationalError (locked, disk full,
    read-only, I/O) is StoreUnavailable, anything else a StoreError (a defect)."""
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(str(exc))
    return StoreError(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def translating() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise translated(exc) from exc


def _translating_call(fn: Callable) -> Callable:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except sqlite3.Error as exc:
            raise translated(exc) from exc
    return wrapper


class Table:
    """One table group. Each public method is a coroutine, as on every backend (a
    PostgreSQL driver awaits the network); here it runs to its end without giving the
    loop up, since each statement takes microseconds. It raises StoreError, never
    sqlite3.Error.

    A method whose first parameter is ``tx`` runs inside the caller's
    transaction (the handle ``Store.batch.run`` passes to a write); the others
    open and commit their own.
    """

    def __init__(self, db: "Database"):
        self.db = db

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        wrap_public_coroutines(cls, _translating_call)

    def q(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        """A statement on the shared connection, outside any transaction of its own."""
        return self.db.conn.execute(sql, args)

    def tx(self) -> "_Tx":
        return _Tx(self.db.conn)


def private_file(path: Path) -> None:
    """Create ``path`` 0600 (and the folders leading to it 0700) unless it exists, whatever the umask:
    the database holds phone numbers, messages and password hashes. SQLite gives the -wal and -shm
    files the database file's mode. Folders and files that exist are left as they are."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def connect(path: str | Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    path = Path(path)
    if str(path) != ":memory:":
        private_file(path)
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the schema version now in force."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise SchemaTooNew(f"database schema v{version} is newer than this alertd (v{len(MIGRATIONS)}); upgrade alertd")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


class _Tx:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                self.conn.execute("ROLLBACK")
                raise
        self.conn.execute("ROLLBACK")


class Database:
    """The open connection, migrated; what every table group of this backend shares.
    Once ``start_checkpoints()`` ran (a daemon's store.open()), WAL checkpoints run on a
    thread of their own and never inside a commit on this connection (checkpoint.py)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with translating():
            self.conn = connect(self.path)
            migrate(self.conn)
        self.checkpointer = None if str(path) == ":memory:" else Checkpointer(self.path)

    def start_checkpoints(self) -> None:
        if self.checkpointer is not None:
            with translating():
                self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self.checkpointer.start()

    def stop_checkpoints(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default, for what runs after

    def tx(self) -> _Tx:
        return _Tx(self.conn)

    def close(self) -> None:
        self.stop_checkpoints()
        self.conn.close()

    def ping(self) -> bool:
        try:
            return self.conn.execute("SELECT 1").fetchone()[0] == 1
        except sqlite3.Error:
            return False
