"""Yearly partitions of the ledger, the offer log and the audit log on PostgreSQL (mall.core.partitions):
rows land in their Chinese calendar year's partition, every query reads across them, next year's
partitions are made ahead, and the retention guard holds on each partition too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mall.core import audit, clock, partitions, retention
from mall.ledger import disclosure
from mall.ops import archive
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


@pytest.fixture
async def archive_space(postgres: World) -> AsyncIterator[str]:
    """A tablespace in a directory of this machine (the suite's PostgreSQL runs here, as root can
    give the directory to the server's user); the partitions moved back and it dropped after."""
    import os
    import pwd
    import shutil
    import tempfile

    host = make_url(postgres.db.url).host or "localhost"
    if host not in ("127.0.0.1", "localhost", "::1") or os.geteuid() != 0:
        pytest.skip(
            "a tablespace needs a directory on the database server's machine, owned by its user: not here"
        )
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' system user to own the tablespace directory")
    where = Path(tempfile.mkdtemp(prefix="mall-archive-"))
    os.chmod(where, 0o700)
    os.chown(where, owner.pw_uid, owner.pw_gid)
    name = f"mall_test_archive_{os.getpid()}"
    engine = postgres.db.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f"CREATE TABLESPACE {name} LOCATION '{where}'"))
    try:
        yield name
    finally:
        async with engine.connect() as conn:
            for part in await archive.year_partitions(postgres.db):
                if part.tablespace == name:
                    await conn.execute(text(f'ALTER TABLE "{part.name}" SET TABLESPACE pg_default'))
            moved = await conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace"
                    " WHERE t.spcname = :n AND c.relkind = 'i'"
                ),
                {"n": name},
            )
            for (index,) in moved.all():
                await conn.execute(text(f'ALTER INDEX "{index}" SET TABLESPACE pg_default'))
            await conn.execute(text(f"DROP TABLESPACE {name}"))
        shutil.rmtree(where, ignore_errors=True)


async def test_partitions_past_the_online_period_move_to_archive_storage_and_stay_readable(
    postgres: World, archive_space: str, client: Any
) -> None:
    world = postgres
    old = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    await deal(world, "laptop", at=old)
    clock.clock.freeze(old)
    try:
        await disclosure.publish_pending(world.db)
    finally:
        clock.clock.unfreeze()
    with pytest.raises(archive.ArchiveError, match="表空间 no_such_space 不存在"):
        await archive.archive(world.db, "no_such_space", 180)
    # 2025 ends on 2026-01-01: still online for 180 days after, on 2026-06-01; past it on 2026-07-01.
    listed = await archive.archive(world.db, archive_space, 180, today=date(2026, 6, 1), dry_run=True)
    assert listed == [f"{t}_{y}" for y in range(2020, 2025) for t in sorted(partitions.PARTITIONED)]
    moved = await archive.archive(world.db, archive_space, 180, today=date(2026, 7, 1))
    assert moved == [f"{t}_{y}" for y in range(2020, 2026) for t in sorted(partitions.PARTITIONED)]
    assert await archive.archive(world.db, archive_space, 180, today=date(2026, 7, 1)) == []
    spaces = {p.name: p.tablespace for p in await archive.year_partitions(world.db)}
    assert spaces["disclosure_records_2025"] == archive_space and spaces["disclosure_records_2026"] == ""
    index_space = await scalar(
        world,
        "SELECT t.spcname FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace"
        " WHERE c.relname = 'disclosure_records_2025_pkey'",
    )
    assert index_space == archive_space
    # Still attached: the feed, one record and both chains read it as before; each move is audited.
    assert [i["seq"] for i in (await feed(client))["items"]] == [1]
    assert (await client.get("/api/disclosures/1")).status_code == 200
    assert (await disclosure.verify_chain(world.db)).ok and (await audit.verify(world.db)).ok
    recorded = await scalar(world, "SELECT count(*) FROM audit_log WHERE action = 'partition_archived'")
    assert recorded == len(moved)
