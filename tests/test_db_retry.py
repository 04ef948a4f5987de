"""A unit of work that loses a deadlock is run again, not answered 503: `Database.retrying`, on real
PostgreSQL deadlocks (SQLite has one writer at a time and cannot deadlock)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mall.core import metrics
from mall.core.db import Database, retried, retried_if_rolled_back, retry_reason
from tests.factories import World


def deadlock_retries() -> float:
    return metrics.DB_RETRIES.labels("deadlock")._value.get()


async def crossing_units(db: Database, a: uuid.UUID, b: uuid.UUID) -> list[object]:
    """Two units of work that lock the same two budget lines in opposite orders, both holding their
    first line before either asks for its second: PostgreSQL must abort one of them."""
    both_hold = asyncio.Barrier(2)
    attempts = {a: 0, b: 0}

    @retried  # as the order transitions are
    async def unit(db: Database, first: uuid.UUID, second: uuid.UUID) -> str:
        attempts[first] += 1
        async with db.write() as tx:
            touch = text("UPDATE budget_lines SET reserved = reserved WHERE id = :id")
            await tx.session.execute(touch, {"id": first})
            if attempts[first] == 1:
                await both_hold.wait()
            await tx.session.execute(touch, {"id": second})
        return "done"

    return await asyncio.gather(unit(db, a, b), unit(db, b, a), return_exceptions=True)


@pytest.fixture
def pg(world: World) -> Database:
    if world.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: two units of work cannot deadlock there")
    return world.db


async def test_the_unit_that_loses_a_deadlock_runs_again_and_both_succeed(world: World, pg: Database) -> None:
    before = deadlock_retries()
    outcome = await crossing_units(pg, world.lines["a1"].id, world.lines["b1"].id)
    assert outcome == ["done", "done"]
    assert deadlock_retries() == before + 1


async def test_without_retries_the_deadlock_reaches_the_caller(
    world: World, pg: Database, settings: object
) -> None:
    strict = Database(pg.url, pool_size=2, retries=0)
    try:
        outcome = await crossing_units(strict, world.lines["a1"].id, world.lines["b1"].id)
    finally:
        await strict.dispose()
    failed = [o for o in outcome if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], DBAPIError)
    assert retry_reason(failed[0]) == "deadlock"


async def lost_connection_units(db: Database) -> tuple[list[object], dict[str, int]]:
    """The same unit under both decorators: its first attempt has its connection terminated by the
    server mid-transaction (as `pg_terminate_backend` or a failover does), the second runs through."""
    attempts = {"retried": 0, "rolled_back": 0}

    async def body(db: Database, name: str) -> str:
        attempts[name] += 1
        async with db.write() as tx:
            pid = await tx.session.scalar(text("SELECT pg_backend_pid()"))
            if attempts[name] == 1:
                async with db.engine.connect() as other:
                    await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await tx.session.execute(text("SELECT 1"))
        return "done"

    outcome: list[object] = [
        await retried(body)(db, "retried"),
        *(await asyncio.gather(retried_if_rolled_back(body)(db, "rolled_back"), return_exceptions=True)),
    ]
    return outcome, attempts


async def test_a_lost_connection_is_run_again_only_where_a_repeat_cannot_double_anything(
    world: World,
) -> None:
    if world.db.is_sqlite:
        pytest.skip("SQLite is a file, not a server: it has no connection the server could terminate")
    pg = world.db
    before = metrics.DB_RETRIES.labels("connection")._value.get()
    (transition, creation), attempts = await lost_connection_units(pg)
    # A transition re-reads its state, so it runs again; a creation without a key to find it by might
    # have committed unseen, so the lost connection reaches the caller (503) instead of a double.
    assert transition == "done" and attempts["retried"] == 2
    assert isinstance(creation, DBAPIError) and retry_reason(creation) == "connection"
    assert attempts["rolled_back"] == 1
    assert metrics.DB_RETRIES.labels("connection")._value.get() == before + 1


def test_what_creates_unkeyed_rows_is_never_run_again_after_a_lost_connection() -> None:
    """The service functions that create without a key use the rolled-back-only retry; the others
    the full one (a repeat of a transition is at worst a state conflict)."""
    from bidding import award, close, offers, publish
    from catalog import agreement_setup, designated, prices, service

    async def unit(db: Database) -> None:
        pass

    # every function a decorator wraps shares the code of that decorator's wrapper
    wrappers = {retried(unit).__code__: "all", retried_if_rolled_back(unit).__code__: "rolled_back"}

    def kind(fn: object) -> str:
        return wrappers.get(getattr(fn, "__code__", None), f"{fn} is not retried")  # type: ignore[arg-type]

    creating = [offers.quote, offers.bid, publish.create, agreement_setup.create, agreement_setup.add_product]
    creating += [designated.apply, designated.designate, service.create_listing, prices.change_price]
    transitions = [offers.withdraw, award.confirm_award, award.reject_quote, award.decline_award, close.close]
    transitions += [agreement_setup.activate, agreement_setup.terminate, agreement_setup.expire_due]
    transitions += [designated.review, designated.revoke, service.submit_listing, service.moderate]
    assert {kind(f) for f in creating} == {"rolled_back"}
    assert {kind(f) for f in transitions} == {"all"}


def lost(orig: Exception) -> DBAPIError:
    return DBAPIError("SELECT 1", None, orig)


@pytest.mark.parametrize(
    "orig",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        # what asyncpg raises on a connection the server cut while another operation was under way
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
    ],
    ids=["admin_shutdown", "does_not_exist", "half_way", "class_08"],
)
def test_every_way_asyncpg_reports_a_terminated_connection_is_a_lost_connection(orig: Exception) -> None:
    assert retry_reason(lost(orig)) == "connection"


def test_other_database_errors_are_not_run_again() -> None:
    assert retry_reason(lost(asyncpg.exceptions.UniqueViolationError("duplicate key"))) is None
    assert retry_reason(lost(asyncpg.exceptions.UndefinedTableError("no such table"))) is None
    assert retry_reason(ValueError("deadlock detected")) is None  # not from the database


def test_a_lost_connection_that_reaches_the_web_shell_is_503_with_retry_after_not_500() -> None:
    from litestar import Litestar, get
    from litestar.testing import TestClient

    from mall.core.errors import EXCEPTION_HANDLERS

    @get("/lost")
    async def lost_route() -> None:
        raise lost(
            asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")
        )

    @get("/broken")
    async def broken_route() -> None:
        raise lost(asyncpg.exceptions.UndefinedTableError('relation "orders" does not exist'))

    with TestClient(Litestar([lost_route, broken_route], exception_handlers=EXCEPTION_HANDLERS)) as client:
        r = client.get("/lost")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "busy_retry"
        assert client.get("/broken").status_code == 500  # a real fault stays one
