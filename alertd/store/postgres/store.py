"""``PostgresStore``: the store's table groups on PostgreSQL, as ``SQLiteStore`` has them."""
from __future__ import annotations

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


class PostgresStore:
    """All reads and writes, one attribute per table group; every method a coroutine that
    raises StoreError (StoreUnavailable when the database cannot be reached)."""

    def __init__(self, db: Database):
        self.db = db
        self.node_id = db.node_id
        self.batch = GroupCommit(db)
        self.keys = Keys(db)
        self.templates = Templates(db)
        self.logs = Logs(db)
        self.outbox = Outbox(db)
        self.followups = Followups(db)
        self.events = Events(db)
        self.rule_state = RuleStates(db)
        self.groups = RuleGroups(db)
        self.silences = Silences(db)
        self.overrides = Overrides(db)
        self.storm = Storm(db)
        self.status = StatusCallbacks(db)
        self.retention = Retention(db)
        self.users = Users(db)
        self.dashboard = Dashboard(db)
        self.heartbeats = Heartbeats(db)
        self.ping_keys = PingKeys(db)
        self.reach = Reach(db)

    @classmethod
    def at(cls, url: str, node_id: str, *, min_size: int = 2, max_size: int = 10,
           db_clock: bool = False) -> "PostgresStore":
        """The store of database ``url``, not connected yet: ``await store.open()``. ``db_clock``:
        outbox leases on the database's clock, not the times passed in (Database.db_clock)."""
        return cls(Database(url, node_id, min_size=min_size, max_size=max_size, db_clock=db_clock))

    async def open(self) -> None:
        """Connect and migrate (once across nodes starting together). Raises
        StoreUnavailable when the database cannot be reached, SchemaTooNew when it is newer."""
        await self.db.open()

    def tx(self):
        """A transaction (tests; alertd's own code goes through the table groups)."""
        return self.db.tx()

    async def ping(self) -> bool:
        return await self.db.ping()

    async def disconnect(self) -> None:
        """Close the pool (a stopped daemon)."""
        await self.db.close()

    def close(self) -> None:
        """Nothing left to do at exit: disconnect() closed the pool when the daemon stopped."""
