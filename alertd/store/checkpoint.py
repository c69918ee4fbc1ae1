"""WAL checkpoints in a thread of their own, off the event loop.

SQLite runs an automatic checkpoint inside the COMMIT that takes the WAL past
1,000 pages: it copies the pages into the database file and fsyncs both files,
10 to 40 ms on a busy disk, and that COMMIT runs on the event loop's thread
(alertd/store/batch.py), so every request in flight waited. A notify request
writes a dozen pages, so at 100 requests/s that was a stall about once a second.

``Checkpointer`` runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval``
seconds on a connection of its own in a thread (sqlite3 lets go of the GIL
while SQLite works): the copying and the fsyncs happen there, and the WAL
usually restarts before it reaches 1,000 pages. PASSIVE never blocks a writer
or a reader. The automatic checkpoint stays on as the backstop: a checkpoint
from another connection cannot finish while writes keep arriving during it,
and only a complete one lets the WAL restart, so under a steady load the
COMMIT's checkpoint still runs now and then, with little left to copy.
Nothing about durability changes: the commits are the same; the WAL is
synced more often, not less.
"""
from __future__ import annotations

import sqlite3
import threading

import structlog

log = structlog.get_logger("alertd.store")


class Checkpointer:
    def __init__(self, path, interval: float = 0.25):
        self.path, self.interval = str(path), interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path == ":memory:" or self._thread is not None:
            return  # an in-memory database has no WAL and no other connection can see it
        self._thread = threading.Thread(target=self._run, name="alertd-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread (closing the store's connection checkpoints the WAL, as before)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(10)
        self._thread = None

    def open(self) -> sqlite3.Connection:
        """The checkpointing connection (the thread's own)."""
        return sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)

    @staticmethod
    def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint: (busy, WAL frames, frames copied), or None when SQLite refused."""
        try:
            return tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        except sqlite3.Error as exc:  # busy or failing disk: the next turn tries again
            log.warning("wal checkpoint failed", error=str(exc))
            return None

    def _run(self) -> None:
        conn = self.open()
        try:
            while not self._stop.wait(self.interval):
                self.checkpoint(conn)
        finally:
            conn.close()
