"""`mall archive`: the yearly partitions past the online period moved to archive storage (PostgreSQL).

A partition of the ledger, the offers or the audit log (mall.core.partitions) whose year ended more
than `MALL_AUDIT_ONLINE_DAYS` days ago moves, with its indexes, to the tablespace named (made by
the operator on cheaper disks: `CREATE TABLESPACE archive LOCATION '/srv/pg-archive'`). It stays
attached to its table: every query, the feed and `mall audit verify` read it as before. Each move is
recorded in the audit log. Moving takes the partition's lock for the copy: run it at night.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text

from mall.core import audit, clock, partitions
from mall.core.db import Database
from mall.core.settings import Settings


class ArchiveError(Exception):
    pass


@dataclass(frozen=True)
class Partition:
    name: str
    year: int
    tablespace: str  # "" for the database's default


def due(year: int, today: date, online_days: int) -> bool:
    """A year's partition is past the online period once its last day is `online_days` behind."""
    return date(year + 1, 1, 1) <= today - timedelta(days=online_days)


async def year_partitions(db: Database) -> list[Partition]:
    out = []
    async with db.engine.connect() as conn:
        for table in partitions.PARTITIONED:
            rows = await conn.execute(
                text(
                    "SELECT c.relname, COALESCE(t.spcname, '') FROM pg_inherits i"
                    " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
                    " LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace WHERE p.relname = :t"
                ),
                {"t": table},
            )
            for name, space in rows.all():
                year = name[len(table) + 1 :]
                if year.isdigit():
                    out.append(Partition(name, int(year), space))
    return sorted(out, key=lambda p: (p.year, p.name))


async def archive(
    db: Database, tablespace: str, online_days: int, *, today: date | None = None, dry_run: bool = False
) -> list[str]:
    """The partitions moved (or, with `dry_run`, that would be), oldest first."""
    if db.is_sqlite:
        return []
    today = today or clock.local_date(clock.now())
    async with db.engine.connect() as conn:
        known = (
            await conn.execute(text("SELECT 1 FROM pg_tablespace WHERE spcname = :n"), {"n": tablespace})
        ).first()
    if not known:
        raise ArchiveError(f"表空间 {tablespace} 不存在：请先由数据库管理员创建（CREATE TABLESPACE）")
    moved = []
    for part in await year_partitions(db):
        if part.tablespace == tablespace or not due(part.year, today, online_days):
            continue
        if not dry_run:
            async with db.engine.begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                await conn.execute(text(f'ALTER TABLE "{part.name}" SET TABLESPACE "{tablespace}"'))
                indexes = await conn.execute(
                    text(
                        "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = CAST(:t AS regclass)"
                    ),
                    {"t": part.name},
                )
                for (index,) in indexes.all():
                    await conn.execute(text(f'ALTER INDEX "{index}" SET TABLESPACE "{tablespace}"'))
            await audit.record_now(
                db, None, "partition_archived", target=part.name, detail=f"移入表空间 {tablespace}"
            )
        moved.append(part.name)
    return moved


def archive_command(settings: Settings, tablespace: str, *, dry_run: bool) -> int:
    async def go() -> list[str]:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            return await archive(db, tablespace, settings.audit_online_days, dry_run=dry_run)
        finally:
            await db.dispose()

    if settings.resolved_database_url.startswith("sqlite"):
        print("嵌入式数据库（SQLite）没有按年分区，无需归档")
        return 0
    try:
        moved = asyncio.run(go())
    except ArchiveError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    verb = "将移入" if dry_run else "已移入"
    if not moved:
        print(f"没有超过在线保存期（{settings.audit_online_days} 天）且未归档的分区")
    for name in moved:
        print(f"{verb}表空间 {tablespace}：{name}")
    return 0
