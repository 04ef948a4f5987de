"""A unit of work that loses a deadlock is run again, not answered 503: `Database.retrying`, on real
PostgreSQL deadlocks (SQLite has one writer at a time and cannot deadlock)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

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


async def cut_units(
    db: Database, cut: Callable[[Database, AsyncSession], Awaitable[None]]
) -> dict[str, object]:
    """The same unit under both decorators; `cut` loses its connection on the first attempt."""
    attempts = {"retried": 0, "rolled_back": 0}

    async def body(db: Database, name: str) -> str:
        attempts[name] += 1
        async with db.write() as tx:
            await tx.session.execute(text("SELECT 1"))
            if attempts[name] == 1:
                await cut(db, tx.session)
            await tx.session.execute(text("SELECT 1"))
        return "done"

    outcome: dict[str, object] = {}
    for name, decorator in (("retried", retried), ("rolled_back", retried_if_rolled_back)):
        try:
            outcome[name] = await decorator(body)(db, name)
        except DBAPIError as exc:
            outcome[name] = exc
    outcome["attempts"] = attempts
    return outcome


async def terminated_by_the_server(db: Database, session: AsyncSession) -> None:
    """What `pg_terminate_backend` or a failover does to a connection in the middle of a transaction."""
    pid = await session.scalar(text("SELECT pg_backend_pid()"))
    async with db.engine.connect() as other:
        await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def lost_in_commit(db: Database, session: AsyncSession) -> None:
    """The connection goes while COMMIT is on its way: whether it committed is unknown. (Staged in
    the session's commit hook: no server lets a test cut a connection at exactly that instant.)"""

    def cut(_session: object) -> None:
        orig = asyncpg.exceptions.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        )
        raise DBAPIError("COMMIT", None, orig, connection_invalidated=True)

    event.listen(session.sync_session, "before_commit", cut, once=True)


async def test_a_connection_cut_before_commit_is_run_again_by_both_retries(world: World) -> None:
    if world.db.is_sqlite:
        pytest.skip("SQLite is a file, not a server: it has no connection the server could terminate")
    before = metrics.DB_RETRIES.labels("connection")._value.get()
    outcome = await cut_units(world.db, terminated_by_the_server)
    # Nothing was committed, so even what creates without a key runs again.
    assert outcome == {"retried": "done", "rolled_back": "done", "attempts": {"retried": 2, "rolled_back": 2}}
    assert metrics.DB_RETRIES.labels("connection")._value.get() == before + 2


async def test_a_connection_lost_in_commit_is_run_again_only_where_a_repeat_cannot_double_anything(
    world: World,
) -> None:
    outcome = await cut_units(world.db, lost_in_commit)
    # A transition re-reads its state, so it runs again; a creation without a key to find it by might
    # have committed unseen, so the lost connection reaches the caller (503) instead of a double.
    assert outcome["retried"] == "done"
    creation = outcome["rolled_back"]
    assert isinstance(creation, DBAPIError) and retry_reason(creation) == "connection"
    assert getattr(creation, "during_commit", False) is True
    assert outcome["attempts"] == {"retried": 2, "rolled_back": 1}


def test_what_creates_unkeyed_rows_is_never_run_again_after_a_connection_lost_in_commit() -> None:
    """The service functions that create without a key use the rolled-back-only retry; the others
    the full one (a repeat of a transition is at worst a state conflict)."""
    from bidding import award, close, offers, publish
    from catalog import agreement_setup, designated, prices, service
    from mall import cart
    from mall.ledger.exports import jobs as export_jobs
    from mall.ledger.push import subscriptions

    async def unit(db: Database) -> None:
        pass

    # every function a decorator wraps shares the code of that decorator's wrapper
    wrappers = {retried(unit).__code__: "all", retried_if_rolled_back(unit).__code__: "rolled_back"}

    def kind(fn: object) -> str:
        return wrappers.get(getattr(fn, "__code__", None), f"{fn} is not retried")  # type: ignore[arg-type]

    creating = [offers.quote, publish.create, agreement_setup.create, agreement_setup.add_product]
    creating += [designated.apply, designated.designate, service.create_listing, prices.change_price]
    transitions = [
        offers.bid,
        offers.withdraw,
        award.confirm_award,
        award.reject_quote,
        award.decline_award,
        close.close,
    ]
    transitions += [agreement_setup.activate, agreement_setup.terminate, agreement_setup.expire_due]
    transitions += [designated.review, designated.revoke, service.submit_listing, service.moderate]
    creating += [
        cart.add_to_cart,
        export_jobs.start_job,
        subscriptions.create,
    ]  # adds to a quantity, or new rows
    transitions += [cart.set_cart_quantity, cart.accept_cart_price]
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


def test_a_read_whose_connection_was_cut_is_run_again_whole_and_only_a_read() -> None:
    """mall.web.rerun: a GET that fails for a transient reason is run again (up to the database's
    retries); a POST is not (its service function decides); the mark never leaves the server."""
    from types import SimpleNamespace

    from litestar import Litestar, get, post
    from litestar.datastructures import State
    from litestar.testing import TestClient

    from mall.core.errors import EXCEPTION_HANDLERS
    from mall.web.rerun import ReadsRunAgain

    runs = {"flaky": 0, "down": 0, "write": 0}
    cut = asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")

    @get("/flaky")
    async def flaky() -> dict[str, int]:
        runs["flaky"] += 1
        if runs["flaky"] < 3:
            raise lost(cut)
        return {"runs": runs["flaky"]}

    @get("/down")
    async def down() -> None:
        runs["down"] += 1
        raise lost(cut)

    @post("/write")
    async def write() -> None:
        runs["write"] += 1
        raise lost(cut)

    app = Litestar(
        [flaky, down, write],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[ReadsRunAgain()],
        state=State({"db": SimpleNamespace(retries=4)}),
    )
    before = metrics.DB_RETRIES.labels("connection")._value.get()
    with TestClient(app) as client:
        r = client.get("/flaky")
        assert r.status_code == 200 and r.json() == {"runs": 3}
        assert "x-mall-transient" not in r.headers
        r = client.get("/down")
        assert r.status_code == 503 and runs["down"] == 5  # the first run and four more
        assert r.json()["code"] == "busy_retry" and "x-mall-transient" not in r.headers
        r = client.post("/write")
        assert r.status_code == 503 and runs["write"] == 1
        assert "x-mall-transient" not in r.headers
    assert metrics.DB_RETRIES.labels("connection")._value.get() == before + 2 + 4


def cut_in_commit(db: Database, *, after: bool) -> None:
    """The next write transaction on `db` loses its connection in COMMIT: before the server
    committed (`after=False`) or after (`after=True`), which the caller cannot tell apart."""
    from sqlalchemy.orm import Session

    def cut(_session: object) -> None:
        orig = asyncpg.exceptions.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        )
        raise DBAPIError("COMMIT", None, orig, connection_invalidated=True)

    event.listen(Session, "after_commit" if after else "before_commit", cut, once=True)


async def offers_of(world: World, procedure_id: uuid.UUID) -> list[tuple[str, object]]:
    from bidding.models import Offer

    async with world.db.read() as s:
        rows = await s.execute(
            select(Offer.status, Offer.amount).where(Offer.procedure_id == procedure_id).order_by(Offer.at)
        )
        return [(status, amount) for status, amount in rows.all()]


@pytest.mark.parametrize("landed", [False, True], ids=["lost_before_commit", "committed_unseen"])
async def test_a_bid_whose_commit_was_not_seen_is_answered_once_never_refused_or_doubled(
    world: World, landed: bool
) -> None:
    """A bid run again after its connection went in COMMIT: if the first run committed, the bid is
    recognised (the supplier's own lowest accepted bid is this amount) and answered as accepted with
    its seq, nothing written twice; if it did not, the bid is simply made."""
    from decimal import Decimal

    from bidding import offers
    from tests.bidding.test_room_faults import auction

    p, xs = await auction(world, 3)
    await offers.bid(world.db, xs[1], p.id, "59500.00")
    cut_in_commit(world.db, after=landed)
    r = await offers.bid(world.db, xs[0], p.id, "59000.00")
    assert r.accepted and r.amount == Decimal("59000.00") and r.seq == 2
    assert await offers_of(world, p.id) == [
        ("accepted", Decimal("59500.00")),
        ("accepted", Decimal("59000.00")),
    ]


async def test_a_statement_a_schema_change_made_stale_runs_again(world: World) -> None:
    """A column added while the mall serves (docs/operations.md, expand) changes what `SELECT *` of
    that table returns; a connection that had prepared it fails once, and that failure is transient:
    the driver has forgotten the statement and the unit of work runs again."""
    if world.db.is_sqlite:
        pytest.skip("SQLite prepares a statement again by itself when the schema changed: nothing fails")
    pg = world.db
    table = f"drill_{uuid.uuid4().hex[:8]}"
    db = Database(pg.url, pool_size=1)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)"))
            await conn.execute(text(f"INSERT INTO {table} VALUES (1, 2)"))  # noqa: S608 (a name made here)
        query = text(f"SELECT * FROM {table}")  # noqa: S608 (a name made here)
        async with db.engine.connect() as conn:
            assert (await conn.execute(query)).all() == [(1, 2)]  # prepared and kept by the pooled connection
        async with pg.engine.begin() as other:  # another process changes the schema
            await other.execute(text(f"ALTER TABLE {table} ADD COLUMN w int"))
        with pytest.raises(DBAPIError) as failed:
            async with db.engine.connect() as conn:
                await conn.execute(query)
        assert retry_reason(failed.value) == "schema_changed"
        async with db.engine.connect() as conn:  # run again: prepared anew
            assert (await conn.execute(query)).all() == [(1, 2, None)]
    finally:
        await db.dispose()
        async with pg.engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))


async def test_a_connection_asyncpg_left_half_way_is_invalidated_not_pooled_again(world: World) -> None:
    """asyncpg reports a connection left in the middle of an operation ("another operation is in
    progress", as when the server cut it half-way) with an error SQLAlchemy does not count as a
    disconnect: the engine's hook does, so the connection is dropped, not handed to the next unit
    of work, and the retry meets a fresh one."""
    if world.db.is_sqlite:
        pytest.skip("SQLite is a file, not a server: it has no driver connection to leave half-way")
    db = Database(world.db.url, pool_size=1)
    try:
        async with db.read() as session:
            first_pid = await session.scalar(text("SELECT pg_backend_pid()"))
            raw = (await (await session.connection()).get_raw_connection()).driver_connection
            busy = asyncio.ensure_future(raw.execute("SELECT pg_sleep(0.3)"))
            await asyncio.sleep(0.05)  # the driver's own operation is under way
            with pytest.raises(DBAPIError) as failed:
                await session.execute(text("SELECT 1"))
            await asyncio.gather(busy, return_exceptions=True)
        assert "another operation" in str(failed.value.orig)
        assert failed.value.connection_invalidated
        assert retry_reason(failed.value) == "connection"
        async with db.read() as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) != first_pid
    finally:
        await db.dispose()
