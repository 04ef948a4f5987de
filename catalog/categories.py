"""The 2022 品目 catalogue shipped with the project (catalog/data/categories-2022.csv)."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Category

CATALOG_VERSION = "2022"
TABLE = Path(__file__).parent / "data" / f"categories-{CATALOG_VERSION}.csv"


@lru_cache(maxsize=1)
def rows() -> tuple[dict[str, str], ...]:
    with TABLE.open(encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))


@lru_cache(maxsize=1)
def names() -> dict[str, str]:
    return {r["code"]: r["name"] for r in rows()}


def name_of(code: str) -> str:
    return names().get(code, "")


@lru_cache(maxsize=1)
def _levels() -> dict[str, int]:
    return {r["code"]: int(r["level"]) for r in rows()}


def prefix_of(code: str) -> str:
    """The part of a 品目 code that its descendants share: the letter and two digits per level
    (A02030000 车辆, level 2 → A0203; A02021000 打印机, level 3 → A020210). A code not in the table
    (a prefix typed by someone) is used as it is."""
    level = _levels().get(code)
    return code[: 1 + 2 * level] if level else code


async def load(session: AsyncSession) -> int:
    """Insert the shipped table if this version is not in the database yet. Returns rows inserted."""
    present = await session.scalar(select(func.count()).where(Category.version == CATALOG_VERSION))
    if present:
        return 0
    values = [
        {
            "version": r["version"],
            "code": r["code"],
            "name": r["name"],
            "parent_code": r["parent_code"] or None,
            "level": int(r["level"]),
            "type": r["type"],
        }
        for r in rows()
    ]
    for start in range(0, len(values), 500):
        await session.execute(insert(Category), values[start : start + 500])
    return len(values)


async def children(session: AsyncSession, parent: str | None) -> list[Category]:
    stmt = select(Category).where(Category.version == CATALOG_VERSION)
    stmt = stmt.where(Category.parent_code == parent) if parent else stmt.where(Category.level == 0)
    return list((await session.execute(stmt.order_by(Category.code))).scalars())
