"""A supplier's standing, as every selling path checks it: a suspension, an emergency suspension or
a ban in force bars it from being found, carted, ordered from, invited, quoting, bidding, confirming
a new order, applying for a designation and entering an agreement. Signed contracts proceed (the
paths after the confirmation do not ask). A warning bars nothing: it is a public record."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.errors import RuleViolation
from mall.core.models import Organization
from mall.sanctions.models import BARRING_KINDS, Sanction, SanctionKind, SanctionStatus
from mall.sanctions.rules import bars

CODE = "supplier_sanctioned"


def barring_now(org_id: Any, at: datetime) -> ColumnElement[bool]:
    """SQL: a sanction barring the organization `org_id` is in force at `at`."""
    t = Sanction
    return exists().where(
        t.supplier_org_id == org_id,
        t.kind.in_([k.value for k in BARRING_KINDS]),
        t.status == SanctionStatus.IN_FORCE,
        t.starts_at <= at,
        or_(t.ends_at.is_(None), t.ends_at > at),
    )


def not_barred(org_id: Any, at: datetime | None = None) -> ColumnElement[bool]:
    return ~barring_now(org_id, at or clock.now())


async def barring(
    s: AsyncSession, org_ids: Iterable[uuid.UUID], at: datetime | None = None
) -> dict[uuid.UUID, Sanction]:
    """The sanction barring each of these organizations at `at`, if any (the longest-running one)."""
    ids = sorted(set(org_ids))
    if not ids:
        return {}
    when = at or clock.now()
    rows = (
        await s.execute(
            select(Sanction).where(
                Sanction.supplier_org_id.in_(ids),
                Sanction.kind.in_([k.value for k in BARRING_KINDS]),
                Sanction.status == SanctionStatus.IN_FORCE,
                Sanction.starts_at <= when,
            )
        )
    ).scalars()
    out: dict[uuid.UUID, Sanction] = {}
    for x in rows:
        if not bars(x.kind, x.status, x.starts_at, x.ends_at, when):
            continue
        held = out.get(x.supplier_org_id)
        if held is None or (held.ends_at is not None and (x.ends_at is None or x.ends_at > held.ends_at)):
            out[x.supplier_org_id] = x
    return out


def until_text(x: Sanction) -> str:
    if x.kind == SanctionKind.BAN:
        return "永久"
    if x.ends_at is None:
        return "待复核"
    return f"至 {clock.local_date(x.ends_at).isoformat()}"


def refusal(x: Sanction, name: str, doing: str, *, own: bool) -> RuleViolation:
    kind = SanctionKind(x.kind).label
    whose = "贵单位" if own else f"供应商「{name}」"
    return RuleViolation(
        f"{whose}正处于{kind}期间（处理决定 {x.sanction_no}，{until_text(x)}），不能{doing}",
        code=CODE,
        sanction_no=x.sanction_no,
        sanction_kind=x.kind,
    )


async def require_good_standing(
    s: AsyncSession, org_ids: Iterable[uuid.UUID], doing: str, *, own: bool = False
) -> None:
    """Refuse (422 `supplier_sanctioned`, naming the decision) when one of these suppliers is barred.
    `own`: the supplier itself is acting (quoting, bidding, confirming, applying)."""
    found = await barring(s, org_ids)
    if not found:
        return
    org_id, x = sorted(found.items())[0]
    name = await s.scalar(select(Organization.name).where(Organization.id == org_id)) or ""
    raise refusal(x, name, doing, own=own)


def in_force_clause(at: datetime) -> ColumnElement[bool]:
    """SQL: sanctions (of any kind) in force at `at`: the public list."""
    t = Sanction
    return and_(
        t.status == SanctionStatus.IN_FORCE, t.starts_at <= at, or_(t.ends_at.is_(None), t.ends_at > at)
    )
