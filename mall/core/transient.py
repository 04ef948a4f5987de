"""Which database failures are transient: the unit of work was rolled back and may simply run again.
Kept apart from the engine (mall.core.db), so the error handlers can ask without importing it."""

from __future__ import annotations

import random

from sqlalchemy.exc import DBAPIError

# Failures after which the server no longer has the connection (PostgreSQL SQLSTATE class 08, and
# 57P01-57P03: terminated by an administrator or a shutdown), and what asyncpg says of a connection
# left half-way through an operation when the server cut it.
_LOST_STATES = ("57P01", "57P02", "57P03")
_LOST_WORDS = (
    "connectiondoesnotexist",
    "connection was closed",
    "connection is closed",
    "terminating connection",
    "another operation",
    "cannot switch to state",
    "server closed the connection",
)


def retry_reason(exc: BaseException) -> str | None:
    """Why a failed unit of work may simply be run again (it was rolled back, nothing was written), or
    None: a deadlock (PostgreSQL 40P01), a serialization failure (40001), a busy SQLite database, a
    prepared statement a schema change made stale, or a connection lost under it."""
    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated:
        return "connection"
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    text = f"{type(orig).__name__} {type(getattr(orig, '__cause__', None)).__name__} {orig}".lower()
    if state == "40P01" or "deadlock detected" in text:
        return "deadlock"
    if state == "40001" or "could not serialize" in text:
        return "serialization"
    if "database is locked" in text or "database is busy" in text:
        return "busy"
    if "invalidcachedstatement" in text or "cached plan must not change result type" in text:
        # A schema change (docs/operations.md) made a statement the connection had prepared stale;
        # the driver forgets its prepared statements, so the unit of work simply runs again.
        return "schema_changed"
    if orig is not None and connection_lost(orig):
        return "connection"
    return None


def connection_lost(orig: BaseException) -> bool:
    """Whether a driver's own exception (before SQLAlchemy wraps it) says the server no longer has
    the connection. SQLAlchemy's own test misses some of asyncpg's (a connection cut half-way
    through an operation: "cannot switch to state …; another operation is in progress"), and such a
    connection would go back to the pool, or fail its pre-ping with an error instead of being
    replaced."""
    cause = getattr(orig, "__cause__", None)
    state = getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
    text = f"{type(orig).__name__} {type(cause).__name__} {orig}".lower()
    return (state or "").startswith("08") or state in _LOST_STATES or any(w in text for w in _LOST_WORDS)


def retry_wait(attempt: int) -> float:
    """Seconds to wait before running a unit of work again for the `attempt`-th time (1, 2, …):
    about 20 ms, doubling, jittered between half and one and a half of it."""
    return 0.02 * 2.0 ** (attempt - 1) * random.uniform(0.5, 1.5)
