"""Names of administrative divisions (行政区划, GB/T 2260) for pages: a code shown as a person reads it.

`mall/data/regions.csv` holds every province-level division, and the prefectures and districts
of the provinces the mall is set up for (today 河南省, and 郑州市's districts in full); a code
not listed is named by its province and prefecture as far as they are known. Pages show the name
with the code beside it, so nothing is hidden when a name is missing.
"""

from __future__ import annotations

import csv
import functools
import uuid
from pathlib import Path

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from mall.core.models import Organization

DATA = Path(__file__).resolve().parent.parent / "data" / "regions.csv"


@functools.cache
def names() -> dict[str, str]:
    with DATA.open(encoding="utf-8", newline="") as fh:
        return {row["code"]: row["name"] for row in csv.DictReader(fh)}


def region_name(code: str) -> str:
    """ "河南省郑州市金水区" for 410105; as much as is known for a code not listed; "" when nothing is."""
    code = (code or "").strip()
    if len(code) != 6 or not code.isdigit():
        return ""
    known = names()
    province = known.get(code[:2] + "0000", "")
    if code.endswith("0000"):
        return province
    prefecture = known.get(code[:4] + "00", "")
    if code.endswith("00"):
        return province + prefecture if prefecture else province
    county = known.get(code, "")
    if code[2:4] == "90":  # 省直辖县级行政单位 (济源市): no prefecture between
        return province + county
    return province + prefecture + county


def scope_prefix(code: str) -> str:
    """What a region covers, as a prefix of the codes under it: a province (410000) every code
    starting "41", a prefecture (410100) "4101", a county (410105) itself. An empty or malformed
    code covers nothing ("-", which no code starts with)."""
    code = (code or "").strip()
    if len(code) != 6 or not code.isdigit():
        return "-"
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def within(code: str, scope: str) -> bool:
    """Whether the region `code` lies in the region `scope` (itself included)."""
    return (code or "").startswith(scope_prefix(scope))


async def org_region(session: AsyncSession, org_id: uuid.UUID | None) -> str:
    """The region of an organization (a regulator's or a center's: what it oversees); "" for none."""
    if org_id is None:
        return ""
    return (await session.scalar(select(Organization.region_code).where(Organization.id == org_id))) or ""


def in_scope(
    column: ColumnElement[str] | InstrumentedAttribute[str], scope: str | None
) -> ColumnElement[bool]:
    """SQL for "the region in `column` lies in `scope`"; no scope (None): no restriction."""
    if scope is None:
        return true()
    return column.like(scope_prefix(scope) + "%")
