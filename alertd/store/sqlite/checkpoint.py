"""WAL checkpoints on a thread of their own, never on the event loop.

In WAL mode a commit appends to the -wal file; a checkpoint copies those pages into the
database file and fsyncs both. SQLite's automatic checkpoint runs inside whichever commit
crosses 1,000 pages: here, a commit on the loop thread, so the loop stalled for the copy
and the fsyncs (5 to 15 ms on this 2-core machine, longer on a busy disk) in the middle of
a burst of notify requests. The daemon's connection has the automatic checkpoint off, and
this thread, on a connection of its own, runs a PASSIVE checkpoint once a second when
something was committed since its last one. PASSIVE never waits for, nor blocks, the
loop's readers and writers (sqlite3 releases the GIL while SQLite works), and the
durability is the same: with synchronous=NORMAL a commit was never fsynced before a
checkpoint anyway. Closing the last connection checkpoints what is left, as before.
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import structlog

log = structlog.get_logger("alertd.store")

EVERY = 1.0  # seconds between looks


class Checkpointer:
    def __init__(self, path: Path, *, every: float = EVERY):
        self.path, self.every = path, every
        self.checkpoints = 0  # completed PASSIVE checkpoints that had something to copy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.error("cannot open the database for checkpoints", error=str(exc))
            return
        try:
            seen = None
            while not self._stop.wait(self.every):
                try:
                    # data_version changes when another connection commits
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version == seen:
                        continue
                    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    seen = version
                    if frames > 0:
                        self.checkpoints += 1
                except sqlite3.Error as exc:  # a full disk, a removed file: try again next time
                    log.warning("wal checkpoint failed", error=str(exc))
        finally:
            conn.close()
