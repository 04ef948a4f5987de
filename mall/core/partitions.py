"""Yearly partitions of the three tables that grow with every deal, bid and action (PostgreSQL).

The ledger (`disclosure_records`, by `published_at`), the offer log (`offers`, by `at`) and the
audit log (`audit_log`, by `at`) are each a table partitioned by range, one partition per calendar
year in China (`disclosure_records_2026` holds 2026-01-01 00:00 to 2027-01-01 00:00 Beijing time),
plus a default partition (`<table>_other`) so that no insert can ever fail for want of one.
Every query names the parent table and keeps working across years; a year's partition can be moved
to cheaper storage (`ALTER TABLE audit_log_2025 SET TABLESPACE archive`) and stays attached, so the
archive is still read by the same queries (docs/operations.md, "Retention").

The worker's housekeeping (`workers.jobs.prune`) creates next year's partitions a year ahead, so the
default partition stays empty. SQLite has no partitions; an embedded mall holds no fifteen years.

PostgreSQL asks a partitioned table's primary key and unique constraints to include the partition
column: `seq` and `id` are unique per partition in the database, and globally by construction (the
ledger and the audit log number their rows under their head's lock, `id` is a new UUID, and `mall
ledger verify` / `mall audit verify` would find a repeated `seq`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mall.core import clock
from mall.core.db import Database

log = logging.getLogger(__name__)

CHINA = ZoneInfo("Asia/Shanghai")
# table -> the column its rows are partitioned by
PARTITIONED = {"disclosure_records": "published_at", "offers": "at", "audit_log": "at"}
FIRST_YEAR = 2020  # partitions made by the migration from this year to next year
DEFAULT = "other"


def year_start(year: int) -> str:
    return datetime(year, 1, 1, tzinfo=CHINA).isoformat()


def partition_name(table: str, year: int | str) -> str:
    return f"{table}_{year}"


def create_partition_sql(table: str, year: int) -> list[str]:
    """A year's partition, and its own TRUNCATE guard (a statement trigger is not inherited; the
    row triggers of mall.core.retention are)."""
    name = partition_name(table, year)
    return [
        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}"'
        f" FOR VALUES FROM ('{year_start(year)}') TO ('{year_start(year + 1)}')",
        f'CREATE OR REPLACE TRIGGER keep_truncate BEFORE TRUNCATE ON "{name}"'
        " FOR EACH STATEMENT EXECUTE FUNCTION mall_retention_guard()",
    ]


def create_default_sql(table: str) -> list[str]:
    name = partition_name(table, DEFAULT)
    return [
        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" DEFAULT',
        f'CREATE OR REPLACE TRIGGER keep_truncate BEFORE TRUNCATE ON "{name}"'
        " FOR EACH STATEMENT EXECUTE FUNCTION mall_retention_guard()",
    ]


async def years_present(conn: AsyncConnection, table: str) -> set[int]:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"
        ),
        {"t": table},
    )
    prefix = f"{table}_"
    return {int(n[len(prefix) :]) for n in rows.scalars() if n[len(prefix) :].isdigit()}


async def ensure(db: Database, *, today: date | None = None) -> list[str]:
    """Next year's partitions (and this year's, were they missing), made once; the names made.
    Nothing on SQLite. A year whose rows already sit in the default partition is left there and
    logged (PostgreSQL refuses to make the partition): an operator moves them (docs/operations.md)."""
    if db.is_sqlite:
        return []
    year = (today or clock.local_date(clock.now())).year
    made: list[str] = []
    for table in PARTITIONED:
        async with db.engine.connect() as conn:
            have = await years_present(conn, table)
        for y in (year, year + 1):
            if y in have:
                continue
            try:
                async with db.engine.begin() as conn:
                    await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                    for sql in create_partition_sql(table, y):
                        await conn.execute(text(sql))
                made.append(partition_name(table, y))
                log.info("partition made", extra={"partition": partition_name(table, y)})
            except Exception:
                log.exception("partition not made", extra={"partition": partition_name(table, y)})
    return made


async def rows_by_partition(db: Database) -> dict[str, int]:
    """Each partition of the partitioned tables and its row count (PostgreSQL), for operators."""
    if db.is_sqlite:
        return {}
    out: dict[str, int] = {}
    async with db.engine.connect() as conn:
        for table in PARTITIONED:
            rows = await conn.execute(
                text(f'SELECT tableoid::regclass::text, count(*) FROM "{table}" GROUP BY 1 ORDER BY 1')  # noqa: S608
            )
            out.update({str(name): int(n) for name, n in rows.all()})
    return out


def is_partition(name: str | None) -> bool:
    """A year's (or the default) partition of a partitioned table: not a table of the models."""
    if not name:
        return False
    for table in PARTITIONED:
        rest = name[len(table) + 1 :] if name.startswith(f"{table}_") else ""
        if rest == DEFAULT or (len(rest) == 4 and rest.isdigit()):
            return True
    return False


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name` for comparing the models with a database: partitions are left out."""
    return not (type_ == "table" and is_partition(name))


def without_widened_keys(diffs: list[Any]) -> list[Any]:
    """Autogenerate's differences less the pairs that are only PostgreSQL's rule for partitioned
    tables: a unique constraint of the models (added) that the database holds with the partition
    column appended (removed). An unpaired one stays a difference."""

    def key(diff: Any) -> tuple[str, str, tuple[str, ...]] | None:
        if not (isinstance(diff, tuple) and diff and diff[0] in ("add_constraint", "remove_constraint")):
            return None
        constraint = diff[1]
        table = getattr(getattr(constraint, "table", None), "name", None)
        if table not in PARTITIONED or type(constraint).__name__ != "UniqueConstraint":
            return None
        columns = tuple(c.name for c in constraint.columns)
        if diff[0] == "remove_constraint":
            if columns[-1:] != (PARTITIONED[table],):
                return None
            columns = columns[:-1]
        return diff[0], table, columns

    keys = [key(d) for d in diffs]
    added = {k[1:] for k in keys if k and k[0] == "add_constraint"}
    removed = {k[1:] for k in keys if k and k[0] == "remove_constraint"}
    paired = added & removed
    return [d for d, k in zip(diffs, keys, strict=True) if not (k and k[1:] in paired)]
