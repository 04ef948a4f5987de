"""Recording a credit event in the transaction that made its fact, and reading current scores.

An event is recorded once per fact: a transaction run again after a conflict, or a scan that meets
the same late order twice, adds nothing (the unique key (supplier, kind, source_id)). The fact's own
row lock (the order's, the procedure's, the case's) keeps two transactions from recording it at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.credit.models import CreditEvent, SupplierCredit
from mall.credit.rules import EVENTS


async def record(
    s: AsyncSession,
    supplier_org_id: uuid.UUID,
    kind: str,
    *,
    source_kind: str,
    source_id: uuid.UUID,
    ref: str,
    at: datetime,
) -> bool:
    """Add the event unless this fact is already recorded; True when added."""
    if kind not in EVENTS:
        raise ValueError(f"unknown credit event {kind!r}")
    seen = await s.scalar(
        select(CreditEvent.id).where(
            CreditEvent.supplier_org_id == supplier_org_id,
            CreditEvent.kind == kind,
            CreditEvent.source_id == source_id,
        )
    )
    if seen is not None:
        return False
    s.add(
        CreditEvent(
            id=uuid.uuid4(),
            supplier_org_id=supplier_org_id,
            kind=kind,
            at=at,
            source_kind=source_kind,
            source_id=source_id,
            ref=ref[:40],
        )
    )
    return True


async def scores_for(s: AsyncSession, org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, SupplierCredit]:
    """The current scores of these suppliers (a supplier never computed yet is absent)."""
    ids = sorted(set(org_ids))
    if not ids:
        return {}
    rows = (await s.execute(select(SupplierCredit).where(SupplierCredit.supplier_org_id.in_(ids)))).scalars()
    return {r.supplier_org_id: r for r in rows}
