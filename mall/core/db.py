"""Database access: one engine per process (or per job), explicit read and write transactions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import BigInteger, DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from mall.core import encryption, metrics
from mall.core.encryption import DataKeys
from mall.core.money import CENT, from_cents, normalize_quantity, to_cents
from mall.core.transient import connection_lost, retry_reason, retry_wait

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Money(TypeDecorator[Decimal]):
    """CNY amount stored as an integer number of 分: exact on SQLite and PostgreSQL alike."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_cents(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_cents(value)


class Quantity(TypeDecorator[Decimal]):
    """Quantity stored as an integer number of thousandths."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else int((Decimal(value) * 1000).to_integral_exact())

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else normalize_quantity(Decimal(value).scaleb(-3))


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


AfterCommit = Callable[[], Awaitable[None]] | Callable[[], object]


class Tx:
    """A unit of work: the session plus callbacks that run only after a successful commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._after: list[AfterCommit] = []

    def after_commit(self, fn: AfterCommit) -> None:
        self._after.append(fn)


T = TypeVar("T")
log = logging.getLogger("mall.db")

# session.info keys: set on the session of every `Database.write()`; and the callables, by name, that
# run inside that transaction after its work and before COMMIT (`before_commit`).
WRITE = "mall_write"
BEFORE_COMMIT = "mall_before_commit"


def before_commit(
    session: AsyncSession | Session, name: str, hook: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run `hook(session)` once at the end of this write transaction, just before it commits (a
    second registration under the same name is the same hook). Only a `Database.write()` session
    runs them: elsewhere this raises, so that nothing meant for the commit is silently dropped."""
    if not session.info.get(WRITE):
        raise RuntimeError("before_commit outside a write transaction (Database.write)")
    session.info.setdefault(BEFORE_COMMIT, {}).setdefault(name, hook)


# Set while a unit of work runs again after its connection was lost during COMMIT (see `retrying`).
_UNSEEN_COMMIT: ContextVar[bool] = ContextVar("unseen_commit", default=False)


def commit_may_have_happened() -> bool:
    """True while a unit of work runs again after its connection was lost during COMMIT: its first
    run may have committed. A unit that can recognise its own effect answers with it instead of
    doing it twice (a bid: the supplier's own lowest accepted bid already equals this amount)."""
    return _UNSEEN_COMMIT.get()


class Database:
    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 20,
        retries: int = 4,
        data_keys: DataKeys | None = None,
    ) -> None:
        """`data_keys` encrypt and decrypt the personal-data columns (`Settings.resolved_data_keys()`);
        without them a SQLite database uses the key file beside it and any other database has none."""
        self.url = url
        # How many times a unit of work run through `retrying` is run again after a transient failure.
        self.retries = retries
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs.update(pool_size=5, max_overflow=10, connect_args={"timeout": 30})
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        else:
            _lost_connections_invalidated(self.engine)
        encryption.bind(
            self.engine.sync_engine.dialect,
            data_keys
            if data_keys is not None
            else functools.partial(encryption.keys_beside, url)
            if self.is_sqlite
            else None,
        )
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        # SQLite has one writer at a time. Writers of this process queue here, first come first
        # served, instead of sleeping and retrying inside SQLite's busy handler (which lets a
        # latecomer overtake and stretches the tail to seconds). Other processes still meet the
        # busy timeout.
        self._write_turn = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so
        concurrent writers queue instead of failing on a lock upgrade."""
        async with self._turn(), self._writer() as session:
            tx = Tx(session)
            session.info[WRITE] = True
            committing = False
            try:
                async with session.begin():
                    yield tx
                    # Work that must be the transaction's last (the audit log's append, which
                    # takes the last lock of the lock order), then COMMIT. What the work changed is
                    # flushed first: changes recorded at the flush (mall.core.audit.watch) register
                    # their hook there.
                    await session.flush()
                    while hooks := session.info.pop(BEFORE_COMMIT, None):
                        for hook in hooks.values():
                            await hook(session)
                    committing = True
            except DBAPIError as exc:
                # Failed in COMMIT itself: had the connection gone, the commit may have happened.
                exc.during_commit = committing  # type: ignore[attr-defined]
                raise
        for fn in tx._after:
            if asyncio.iscoroutinefunction(fn):
                await fn()
            else:
                # Plain callbacks may block (a Redis round trip): keep them off the event loop.
                await asyncio.to_thread(fn)

    async def retrying(self, work: Callable[[], Awaitable[T]], *, unseen_commit: bool = True) -> T:
        """Run a unit of work (a callable that opens its own transaction, to write or to read) and, when it fails for
        a transient reason (`retry_reason`), run it again: at most `retries` more times, after a
        jittered wait that doubles (about 20 ms, 40, 80, 160). What runs again must be safe to run
        again: it re-reads what it needs, and an ordering transaction is keyed by its Idempotency-Key,
        so a commit whose outcome was unknown is answered with the orders it made, never doubled. An
        exhausted retry raises the last error (the web shell answers 503 with Retry-After).
        With `unseen_commit=False` a connection lost during COMMIT is not run again: for work that
        creates something without a key to recognise it by, whose commit may have happened unseen
        (a connection lost before COMMIT was sent rolled the work back, and it runs again)."""
        attempt = 0
        marked: Token[bool] | None = None
        try:
            while True:
                try:
                    return await work()
                except DBAPIError as exc:
                    reason = retry_reason(exc)
                    unseen = reason == "connection" and getattr(exc, "during_commit", False)
                    if reason is None or attempt >= self.retries or (unseen and not unseen_commit):
                        raise
                    if unseen and marked is None:
                        marked = _UNSEEN_COMMIT.set(True)
                    attempt += 1
                    metrics.DB_RETRIES.labels(reason).inc()
                    log.info("unit of work run again after a %s (attempt %d)", reason, attempt + 1)
                    await asyncio.sleep(retry_wait(attempt))
        finally:
            if marked is not None:
                _UNSEEN_COMMIT.reset(marked)

    def _turn(self) -> Any:
        return self._write_turn if self._write_turn is not None else contextlib.nullcontext()

    async def dispose(self) -> None:
        await self.engine.dispose()


P = ParamSpec("P")


def retried(
    fn: Callable[Concatenate[Database, P], Awaitable[T]],
) -> Callable[Concatenate[Database, P], Awaitable[T]]:
    """A function that is one unit of work on its first argument's database (a write transaction
    it opens itself, or reads), run through `Database.retrying`: it must be safe to run again."""

    @functools.wraps(fn)
    async def run(db: Database, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await db.retrying(lambda: fn(db, *args, **kwargs))

    return run


def retried_if_rolled_back(
    fn: Callable[Concatenate[Database, P], Awaitable[T]],
) -> Callable[Concatenate[Database, P], Awaitable[T]]:
    """`retried` for a unit of work that creates something with no key to find it again by (a
    procedure, a bid, a listing): run again only after failures that certainly rolled it back (a
    deadlock, a serialization failure, a busy database, a connection lost before COMMIT), never
    after a connection lost during COMMIT, which may have committed unseen."""

    @functools.wraps(fn)
    async def run(db: Database, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await db.retrying(lambda: fn(db, *args, **kwargs), unseen_commit=False)

    return run


def _lost_connections_invalidated(engine: AsyncEngine) -> None:
    """A connection the server cut is a disconnect, whatever the driver called the error: it is
    invalidated, never returned to the pool, and a pre-ping that meets it connects again."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _handle_error(context: Any) -> None:
        if not context.is_disconnect and connection_lost(context.original_exception):
            context.is_disconnect = True


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


__all__ = [
    "CENT",
    "Base",
    "Database",
    "IdMixin",
    "Money",
    "Quantity",
    "Tx",
    "UTCDateTime",
    "before_commit",
    "new_id",
]
