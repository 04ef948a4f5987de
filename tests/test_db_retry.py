"""A unit of work that loses a deadlock is run again, not answered 503: `Database.retrying`, on real
PostgreSQL deadlocks (SQLite has one writer at a time and cannot deadlock)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mall.core import metrics
from mall.core.db import Database, retried, retry_reason
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
