"""WAL checkpoints in a thread of their own, off the event loop.

SQLite runs an automatic checkpoint inside the COMMIT that takes the WAL past
1,000 pages: it copies the pages into the database file and fsyncs both files,
10 to 40 ms on a busy disk, and that COMMIT runs on the event loop's thread
(alertd/store/batch.py), so every request in flight waited. A notify request
writes a dozen pages, so at 100 requests/s that was a stall about once a second.

``Checkpointer`` turns the automatic checkpoint off on the store's connection
and runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds on a
connection of its own in a thread (sqlite3 lets go of the GIL while SQLite
works). PASSIVE never blocks a writer or a reader; what it cannot copy yet it
copies next time. Durability is unchanged: with synchronous=NORMAL a commit is
in the WAL either way and the WAL is synced at each checkpoint, now at least
once per interval instead of only when 1,000 pages have piled up.
"""
from __future__ import annotations

import sqlite3
import threading

import structlog

log = structlog.get_logger("alertd.store")
SQLITE_DEFAULT_AUTOCHECKPOINT = 1000


class Checkpointer:
    def __init__(self, conn: sqlite3.Connection, path, interval: float = 1.0):
        self.conn, self.path, self.interval = conn, str(path), interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path == ":memory:" or self._thread is not None:
            return  # an in-memory database has no WAL and no other connection can see it
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self._thread = threading.Thread(target=self._run, name="alertd-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread and gives the checkpoint back to SQLite (closing the last connection
        checkpoints the WAL, as before)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(10)
        self._thread = None
        try:
            self.conn.execute(f"PRAGMA wal_autocheckpoint={SQLITE_DEFAULT_AUTOCHECKPOINT}")
        except sqlite3.Error:
            pass  # the connection is closing or gone: nothing left to checkpoint through it

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or failing disk: the next turn tries again
                    log.warning("wal checkpoint failed", error=str(exc))
        finally:
            conn.close()
