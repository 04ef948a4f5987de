"""The records kept fifteen years: the database refuses to delete them (and to rewrite the two
hash-chained logs) from any client, unless a transaction opens the guard (mall.core.retention)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mall.core import partitions, retention
from mall.ledger import disclosure
from tests.factories import World
from tests.mall.test_disclosure import deal

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_kept_tables() -> set[str]:
    """The tables of docs/operations.md's first retention table ("Kept at least 15 years")."""
    doc = DOCS.read_text()
    section = doc.split("**Kept at least 15 years", 1)[1].split("**Operational data", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}


def test_the_guarded_tables_are_the_ones_the_documentation_keeps() -> None:
    assert set(retention.KEPT) == documented_kept_tables()
    assert set(retention.APPEND_ONLY) <= set(retention.KEPT)


async def rows_in(world: World, table: str) -> int:
    async with world.db.engine.connect() as conn:
        return int((await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())  # noqa: S608


async def refused(world: World, sql: str) -> str:
    """The error a statement gets from the database, from a plain connection."""
    with pytest.raises(DBAPIError) as caught:
        async with world.db.engine.begin() as conn:
            await conn.execute(text(sql))
    return str(caught.value.orig)


async def test_no_client_deletes_a_kept_record_or_rewrites_the_logs(world: World) -> None:
    for key in ("laptop", "desk"):
        await deal(world, key)
    await disclosure.publish_pending(world.db)
    counts = {t: await rows_in(world, t) for t in retention.KEPT}
    # The deal filled the tables of a purchase. A row trigger (SQLite; PostgreSQL's partitioned
    # tables) is tried where there are rows; a statement trigger refuses even an empty DELETE.
    filled = {t for t, n in counts.items() if n}
    assert {"orders", "order_lines", "order_events", "outbox", "disclosure_records", "ledger_head"} <= filled
    assert {"organizations", "users", "listings", "budget_lines", "budget_movements", "checkouts"} <= filled
    by_row = set(retention.KEPT) if world.db.is_sqlite else set(partitions.PARTITIONED)
    tried = tuple(t for t in retention.KEPT if counts[t] or t not in by_row)
    for table in tried:
        message = await refused(world, f'DELETE FROM "{table}"')  # noqa: S608
        assert "依法保存的记录不可删除或改写" in message and table in message, (table, message)
    for table in ("disclosure_records", "audit_log") if counts["audit_log"] else ("disclosure_records",):
        message = await refused(world, f'UPDATE "{table}" SET hash = hash')  # noqa: S608
        assert "UPDATE" in message and table in message
    if not world.db.is_sqlite:
        message = await refused(world, "TRUNCATE orders CASCADE")
        assert "TRUNCATE" in message
    assert {t: await rows_in(world, t) for t in retention.KEPT} == counts  # nothing went
    # What is not a hash-chained log changes as the business goes on (a status, a price).
    async with world.db.engine.begin() as conn:
        await conn.execute(text("UPDATE orders SET note = note"))


async def test_the_guard_opens_inside_one_transaction_only(world: World) -> None:
    await deal(world, "laptop")
    await disclosure.publish_pending(world.db)
    before = await rows_in(world, "disclosure_records")
    # An error after opening it rolls the opening back with everything else.
    with pytest.raises(RuntimeError):
        async with world.db.engine.begin() as conn, retention.opened(conn):
            await conn.execute(text("DELETE FROM disclosure_records"))
            raise RuntimeError("stopped halfway")
    assert await rows_in(world, "disclosure_records") == before
    async with world.db.engine.connect() as conn:
        assert not (await conn.execute(text("SELECT maintenance FROM retention_guard"))).scalar_one()
    # Opened and closed again: what it allowed is done, and the next statement is refused again.
    async with world.db.engine.begin() as conn, retention.opened(conn):
        await conn.execute(text("DELETE FROM disclosure_records WHERE seq = 1"))
    assert await rows_in(world, "disclosure_records") == before - 1
    assert "依法保存的记录不可删除或改写" in await refused(world, "DELETE FROM orders")


def test_the_retention_section_names_every_table() -> None:
    from mall.schema import metadata

    section = DOCS.read_text().split("## Retention", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", section))
    assert sorted(t for t in metadata.tables if t not in named) == []
