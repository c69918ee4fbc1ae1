"""`alertd backup PATH`: a consistent copy of the live database.

SQLite's online backup API copies every page inside one read transaction, so
the copy is one moment of the database even while the daemon writes: in WAL
mode a reader does not block the writer, and the daemon never waits for the
backup. Copying the file with cp instead can tear a page or miss the -wal file.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote


class BackupError(Exception):
    pass


def backup(source: Path, dest: Path, *, force: bool = False) -> dict:
    """Copy ``source`` to ``dest`` (mode 0600, one self-contained file, checked).

    Written to a temporary file beside ``dest`` and renamed, so ``dest`` is
    never a half-written copy. Returns {path, bytes, schema, logs}. Raises
    BackupError with a message for the operator.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if dest.exists() and not force:
        raise BackupError(f"{dest} exists; pass --force to replace it")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a folder")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        # the history holds phone numbers and messages: not for other users to read
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        # mode=rw: never create a database where there was none; never migrate it either
        src = sqlite3.connect(f"file:{quote(str(source))}?mode=rw", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)  # all pages in one step: one snapshot
                dst.execute("PRAGMA journal_mode=DELETE")  # no -wal beside the copy
                check = dst.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise BackupError(f"the copy failed its integrity check: {check}")
                schema = dst.execute("PRAGMA user_version").fetchone()[0]
                logs = dst.execute("SELECT COUNT(*) FROM logs").fetchone()[0] if schema else 0
            finally:
                dst.close()
        finally:
            src.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        dirfd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"{exc.filename or dest}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"path": str(dest), "bytes": dest.stat().st_size, "schema": schema, "logs": logs}
