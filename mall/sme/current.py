"""The size a supplier declared that is in force on a day (mall.sme): what an order records when it
is placed, what a listing shows, what the payment rule and the statistics read."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.sme.models import SmeDeclaration


async def declarations_on(
    s: AsyncSession, org_ids: Iterable[uuid.UUID], day: date
) -> dict[uuid.UUID, SmeDeclaration]:
    ids = sorted(set(org_ids))
    if not ids:
        return {}
    rows = (
        await s.execute(
            select(SmeDeclaration)
            .where(
                SmeDeclaration.org_id.in_(ids),
                SmeDeclaration.declared_on <= day,
                SmeDeclaration.valid_until >= day,
            )
            .order_by(SmeDeclaration.declared_on, SmeDeclaration.declared_at)
        )
    ).scalars()
    out: dict[uuid.UUID, SmeDeclaration] = {}
    for d in rows:  # the newest wins
        out[d.org_id] = d
    return out


async def size_on(s: AsyncSession, org_id: uuid.UUID, day: date) -> str:
    """ "medium", "small", "micro", "sme", "large", or "" without a declaration in force."""
    d = (await declarations_on(s, [org_id], day)).get(org_id)
    return d.size if d is not None else ""
