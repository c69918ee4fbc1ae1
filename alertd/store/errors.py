"""The errors every backend of the store raises, whatever its driver's own are.

Callers catch these and never a driver's exception: a backend translates at
its edge (alertd/store/sqlite/connection.py for SQLite).
"""
from __future__ import annotations

import inspect
from typing import Callable


class StoreError(Exception):
    """The database failed a read or a write. Raised as such for a defect (a
    constraint broken, a closed connection); the driver's error is its
    ``__cause__``."""


class StoreUnavailable(StoreError):
    """The database cannot be written or read right now (disk full, locked past
    the timeout, read-only, an I/O error): nothing of the operation was stored.
    Trying again later may succeed; the API answers 503."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer alertd."""


def wrap_public_coroutines(cls: type, wrap: Callable[[Callable], Callable]) -> None:
    """Replace each public coroutine method of ``cls`` (static ones too) by ``wrap(method)``:
    each backend's Table subclasses get their driver's errors translated to StoreError this way."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, staticmethod) and inspect.iscoroutinefunction(value.__func__):
            setattr(cls, name, staticmethod(wrap(value.__func__)))
        elif inspect.iscoroutinefunction(value):
            setattr(cls, name, wrap(value))
