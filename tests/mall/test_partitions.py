"""Yearly partitions of the ledger, the offer log and the audit log on PostgreSQL (mall.core.partitions):
rows land in their Chinese calendar year's partition, every query reads across them, next year's
partitions are made ahead, and the retention guard holds on each partition too."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mall.core import audit, clock, partitions, retention
from mall.ledger import disclosure
from tests.factories import World
from tests.mall.test_disclosure import deal, feed


def test_partition_names_are_told_from_the_models_tables() -> None:
    assert partitions.is_partition("disclosure_records_2026")
    assert partitions.is_partition("audit_log_other")
    assert not partitions.is_partition("disclosure_records")
    assert not partitions.is_partition("offers_extra")
    assert not partitions.is_partition("audit_head")


@pytest.fixture
def postgres(world: World) -> World:
    if world.db.is_sqlite:
        pytest.skip("SQLite has no partitions (an embedded mall holds no fifteen years): PostgreSQL run only")
    return world


async def scalar(world: World, sql: str, **params: Any) -> Any:
    async with world.db.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def test_each_year_lands_in_its_own_partition_and_every_query_reads_across(
    postgres: World, client: Any
) -> None:
    world = postgres
    for table in partitions.PARTITIONED:
        kind = await scalar(world, "SELECT relkind::text FROM pg_class WHERE relname = :t", t=table)
        assert kind == "p", table
    # 2025-12-31 16:30 UTC is already 2026 in China: the year of the partition is China's.
    moments = [
        datetime(2025, 6, 30, 2, 0, tzinfo=UTC),
        datetime(2025, 12, 31, 15, 30, tzinfo=UTC),
        datetime(2025, 12, 31, 16, 30, tzinfo=UTC),
    ]
    for at, key in zip(moments, ("laptop", "desk", "printer"), strict=True):
        await deal(world, key, at=at)
        clock.clock.freeze(at)
        try:
            await disclosure.publish_pending(world.db)
            await audit.record_now(world.db, None, "logout", target=key)
        finally:
            clock.clock.unfreeze()
    await disclosure.publish_pending(world.db)
    async with world.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tableoid::regclass::text, seq FROM disclosure_records ORDER BY seq")
        )
        placed = rows.all()
    assert [p for p, _ in placed] == [
        "disclosure_records_2025",
        "disclosure_records_2025",
        "disclosure_records_2026",
    ]
    by_partition = await partitions.rows_by_partition(world.db)
    assert by_partition["audit_log_2025"] >= 2 and by_partition["audit_log_2026"] >= 1
    # The public feed, one record by its number, the chain and the audit log read across years.
    items = (await feed(client))["items"]
    assert [i["seq"] for i in items] == [1, 2, 3] or [i["seq"] for i in items] == [3, 2, 1]
    assert (await client.get("/api/disclosures/1")).status_code == 200
    assert (await disclosure.verify_chain(world.db)).ok
    assert (await audit.verify(world.db)).ok


async def test_next_years_partitions_are_made_once_ahead(postgres: World) -> None:
    world = postgres
    made = await partitions.ensure(world.db, today=date(2031, 3, 1))
    assert sorted(made) == sorted(f"{t}_{y}" for t in partitions.PARTITIONED for y in (2031, 2032))
    assert await partitions.ensure(world.db, today=date(2031, 3, 1)) == []
    # A row of 2032 goes to its partition, not to the default one.
    clock.clock.freeze(datetime(2032, 5, 1, tzinfo=UTC))
    try:
        await audit.record_now(world.db, None, "logout", target="2032")
    finally:
        clock.clock.unfreeze()
    assert await scalar(world, "SELECT count(*) FROM audit_log_2032") == 1
    assert await scalar(world, "SELECT count(*) FROM audit_log_other") == 0


async def test_the_retention_guard_holds_on_each_partition(postgres: World) -> None:
    world = postgres
    await deal(world, "laptop")
    await disclosure.publish_pending(world.db)
    year = clock.local_date(clock.now()).year
    part = f"disclosure_records_{year}"
    assert await scalar(world, f'SELECT count(*) FROM "{part}"') == 1  # noqa: S608
    for sql in (
        f'DELETE FROM "{part}"',  # noqa: S608
        f'TRUNCATE "{part}"',
        f'UPDATE "{part}" SET hash = hash',  # noqa: S608
        "TRUNCATE offers",
    ):
        with pytest.raises(DBAPIError, match="依法保存的记录不可删除或改写"):
            async with world.db.engine.begin() as conn:
                await conn.execute(text(sql))
    assert await scalar(world, f'SELECT count(*) FROM "{part}"') == 1  # noqa: S608
    async with world.db.engine.connect() as conn:
        assert await retention.missing(conn) == {}
