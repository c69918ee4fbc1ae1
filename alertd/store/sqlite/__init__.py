"""The SQLite backend of the store: every SQL statement alertd runs on SQLite.

One module per table group, each a ``Table`` over the shared ``Database``
(connection.py: connect, migrate, transactions, error translation);
``SQLiteStore`` gathers them behind the attributes that alertd/store/__init__.py
documents. Durability and concurrency are in connection.py and batch.py.
"""
from __future__ import annotations

from pathlib import Path

from .batch import GroupCommit
from .connection import Database
from .dashboard import Dashboard
from .events import Events
from .followups import Followups
from .groups import RuleGroups
from .heartbeats import Heartbeats, PingKeys
from .keys import Keys
from .logs import Logs
from .oncall import Overrides
from .outbox import Outbox
from .reach import Reach
from .retention import Retention
from .rule_state import RuleStates
from .silences import Silences
from .status import StatusCallbacks
from .storm import Storm
from .templates import Templates
from .users import Users


class SQLiteStore:
    """All reads and writes, one attribute per table group. Every method raises
    StoreError (StoreUnavailable when the database cannot be reached), never sqlite3.Error."""

    def __init__(self, path: str | Path):
        self.db = Database(path)
        self.path = self.db.path
        self.conn = self.db.conn  # for tests and tools that look at the tables themselves
        self.batch = GroupCommit(self.conn)  # the hot path's writes share commits (batch.py)
        self.keys = Keys(self.db)
        self.templates = Templates(self.db)
        self.logs = Logs(self.db)
        self.outbox = Outbox(self.db)
        self.followups = Followups(self.db)
        self.events = Events(self.db)
        self.rule_state = RuleStates(self.db)
        self.groups = RuleGroups(self.db)
        self.silences = Silences(self.db)
        self.overrides = Overrides(self.db)
        self.reach = Reach(self.db)
        self.storm = Storm(self.db)
        self.status = StatusCallbacks(self.db)
        self.retention = Retention(self.db)
        self.users = Users(self.db)
        self.dashboard = Dashboard(self.db)
        self.heartbeats = Heartbeats(self.db)
        self.ping_keys = PingKeys(self.db)

    def tx(self):
        """A transaction on the connection (tests; alertd's own code goes through the table groups)."""
        return self.db.tx()

    async def open(self) -> None:
        """The file is open and migrated once constructed; a running daemon checkpoints
        the WAL off its event loop from now on (checkpoint.py)."""
        self.db.start_checkpoints()

    async def ping(self) -> bool:
        return self.db.ping()

    async def disconnect(self) -> None:
        """The connection stays open until close(), so what a stopped daemon stored can
        still be read (serve() closes it at exit); only the checkpoint thread stops."""
        self.db.stop_checkpoints()

    def close(self) -> None:
        self.db.close()
