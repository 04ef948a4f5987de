"""协议供货, read: agreements as a visitor may see them, their entered suppliers and products, the
deal summary (成交结果汇总), and the agreement prices the supermarket may not exceed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.categories import name_of
from catalog.goods import brand_key, model_key
from catalog.models import (
    AGREEMENT_STATUS_LABELS,
    Agreement,
    AgreementProduct,
    AgreementStatus,
    AgreementSupplier,
)
from mall.core import clock
from mall.core.auth import Principal
from mall.core.errors import InvalidInput, NotFound, RuleViolation
from mall.core.models import Organization
from mall.core.money import money, money_str
from mall.orders.models import Order, OrderStatus

LIST_MAX = 200  # the newest agreements a list shows


async def get(s: AsyncSession, agreement_id: uuid.UUID) -> Agreement:
    a = await s.get(Agreement, agreement_id)
    if a is None:
        raise NotFound("框架协议不存在", code="agreement_not_found")
    return a


def visible_to(who: Principal | None, a: Agreement) -> bool:
    """Drafts (and drafts abandoned without ever being in force) are the center's own business; an
    agreement that was put in force is public, also once it has ended."""
    if a.activated_at is not None:
        return True
    return who is not None and who.role == "center" and who.org_id == a.center_org_id


async def visible(s: AsyncSession, who: Principal | None, agreement_id: uuid.UUID) -> Agreement:
    """The agreement if `who` may see it; a draft of another center does not exist for them."""
    a = await get(s, agreement_id)
    if not visible_to(who, a):
        raise NotFound("框架协议不存在", code="agreement_not_found")
    return a


def check_status(status: str) -> None:
    """A status filter from a query string: one of the statuses, or empty for all."""
    if status and status not in AGREEMENT_STATUS_LABELS:
        raise InvalidInput(
            f"参数 status 应为 {' | '.join(AGREEMENT_STATUS_LABELS)} 之一",
            code="invalid_parameter",
            parameter="status",
        )


async def listed(s: AsyncSession, who: Principal | None, status: str = "") -> list[Agreement]:
    """The newest agreements `who` may see, of one status (checked with `check_status`) or all."""
    stmt = select(Agreement).order_by(Agreement.created_at.desc()).limit(LIST_MAX)
    if status:
        stmt = stmt.where(Agreement.status == status)
    return [a for a in (await s.execute(stmt)).scalars() if visible_to(who, a)]


async def entered(s: AsyncSession, agreement_id: uuid.UUID) -> list[tuple[AgreementSupplier, Organization]]:
    rows = await s.execute(
        select(AgreementSupplier, Organization)
        .join(Organization, Organization.id == AgreementSupplier.supplier_org_id)
        .where(AgreementSupplier.agreement_id == agreement_id)
        .order_by(AgreementSupplier.entered_at)
    )
    return [(r[0], r[1]) for r in rows.all()]


async def products_of(
    s: AsyncSession, agreement_id: uuid.UUID, *, active_only: bool = True
) -> list[tuple[AgreementProduct, str]]:
    stmt = (
        select(AgreementProduct, Organization.name)
        .join(Organization, Organization.id == AgreementProduct.supplier_org_id)
        .where(AgreementProduct.agreement_id == agreement_id)
        .order_by(AgreementProduct.category_code, AgreementProduct.price)
    )
    if active_only:
        stmt = stmt.where(AgreementProduct.active.is_(True))
    return [(r[0], str(r[1])) for r in (await s.execute(stmt)).all()]


@dataclass(frozen=True)
class SummaryRow:
    supplier_name: str
    orders: int
    amount: Decimal


@dataclass(frozen=True)
class Summary:
    """成交结果汇总: every deal under the agreement (confirmed or later, not cancelled)."""

    orders: int
    amount: Decimal
    by_supplier: list[SummaryRow]


DEALT = (
    OrderStatus.CONFIRMED,
    OrderStatus.SIGNED,
    OrderStatus.CONTRACTED,
    OrderStatus.SHIPPED,
    OrderStatus.RECEIVED,
    OrderStatus.ACCEPTED,
    OrderStatus.PAID,
)


async def summary(s: AsyncSession, agreement_id: uuid.UUID) -> Summary:
    rows = (
        await s.execute(
            select(Organization.name, func.count(Order.id), func.sum(Order.total_amount))
            .join(Organization, Organization.id == Order.supplier_org_id)
            # direct orders, and the deals of its second-stage competitions (二次竞价)
            .where(
                Order.source_id == agreement_id,
                Order.mode.in_(("agreement", "inquiry", "auction")),
                Order.status.in_(DEALT),
            )
            .group_by(Organization.id, Organization.name)
        )
    ).all()
    by = sorted(
        (SummaryRow(str(n), int(c), money(str(t or 0))) for n, c, t in rows),
        key=lambda r: r.amount,
        reverse=True,
    )
    return Summary(sum(r.orders for r in by), sum((r.amount for r in by), Decimal(0)), by)


def _in_force_prices(*columns: Any) -> Any:
    """A select of agreement products' `columns` in agreements in force today."""
    today = clock.local_date(clock.now())
    return (
        select(*columns)
        .join(Agreement, Agreement.id == AgreementProduct.agreement_id)
        .where(
            AgreementProduct.active.is_(True),
            Agreement.status == AgreementStatus.ACTIVE,
            Agreement.starts_on <= today,
            Agreement.ends_on >= today,
        )
    )


async def ceiling_for(s: AsyncSession, brand: str, spec_model: str) -> tuple[Decimal, str] | None:
    """The lowest agreement price of the same goods (brand and model) in an agreement in force, and
    that agreement's number: the supermarket may not sell them dearer (DOMAIN: agreement ceiling)."""
    stmt = (
        _in_force_prices(AgreementProduct.price, Agreement.number)
        .where(
            AgreementProduct.brand_key == brand_key(brand),
            AgreementProduct.model_key == model_key(spec_model),
        )
        .order_by(AgreementProduct.price)
        .limit(1)
    )
    row = (await s.execute(stmt)).first()
    return None if row is None else (Decimal(str(row[0])), str(row[1]))


async def ceilings_in_force(s: AsyncSession) -> dict[tuple[str, str], tuple[Decimal, str]]:
    """(brand key, model key) → (lowest agreement price, agreement number), for agreements in force:
    the same rule as `ceiling_for`, loaded once for a bulk import."""
    rows = await s.execute(
        _in_force_prices(
            AgreementProduct.brand_key, AgreementProduct.model_key, AgreementProduct.price, Agreement.number
        )
    )
    out: dict[tuple[str, str], tuple[Decimal, str]] = {}
    for brand, model, price, number in rows.all():
        price = Decimal(str(price))
        if (brand, model) not in out or price < out[(brand, model)][0]:
            out[(brand, model)] = (price, str(number))
    return out


async def check_ceiling(s: AsyncSession, brand: str, spec_model: str, price: Decimal) -> None:
    found = await ceiling_for(s, brand, spec_model)
    if found is not None and price > found[0]:
        raise RuleViolation(
            f"售价 {price:,.2f} 元高于框架协议 {found[1]} 中同品牌同型号的协议价 {found[0]:,.2f} 元，不能上架",
            code="price_above_agreement",
            max_allowed=money_str(found[0]),
        )


def as_dict(a: Agreement) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "number": a.number,
        "title": a.title,
        "kind": a.kind,
        "category_code": a.category_code,
        "category_name": name_of(a.category_code),
        "starts_on": a.starts_on.isoformat(),
        "ends_on": a.ends_on.isoformat(),
        "direct_limit": money_str(a.direct_limit),
        "status": a.status,
        "status_label": AGREEMENT_STATUS_LABELS[a.status],
    }
