"""What the regulator watches that spans orders: split purchases (化整为零, 条例第28条)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, func, literal, literal_column, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.categories import name_of
from mall.core.models import BudgetLine, Order, OrderLine, OrderStatus, Organization
from mall.core.money import from_cents, to_cents
from mall.core.settings import Settings

# Purchases of the same class are added up at the third level of the 品目 code (e.g. A020101 计算机
# covers desktops, laptops and servers): buying them separately does not make them different goods.
CLASS_LENGTH = 7

# A confirmed order whose contract the buyer has not signed and filed within this many days is shown
# to the regulator (the deal is already public; the contract should follow it).
CONTRACT_FILING_DAYS = 7


@dataclass(frozen=True)
class SplitCase:
    buyer_name: str
    budget_line_id: uuid.UUID
    project_code: str
    fiscal_year: int
    category_class: str
    orders: int
    total: Decimal

    @property
    def class_name(self) -> str:
        return name_of(self.category_class.ljust(9, "0")) or self.category_class


def _class() -> ColumnElement[str]:
    # Inlined constants: PostgreSQL matches GROUP BY expressions by text, and bind parameters differ.
    return func.substr(OrderLine.category_code, literal_column("1"), literal_column(str(CLASS_LENGTH)))


def _cases_stmt(settings: Settings) -> Select[str, uuid.UUID, str, int, str, int, int]:
    cents = func.sum(type_coerce(OrderLine.amount, BigInteger))
    return (
        select(
            Organization.name,
            Order.budget_line_id,
            BudgetLine.project_code,
            BudgetLine.fiscal_year,
            _class().label("cls"),
            func.count(func.distinct(Order.id)),
            cents.label("cents"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .join(BudgetLine, BudgetLine.id == Order.budget_line_id)
        .join(Organization, Organization.id == Order.buyer_org_id)
        .where(Order.status != OrderStatus.CANCELLED)
        .group_by(
            Organization.name, Order.budget_line_id, BudgetLine.project_code, BudgetLine.fiscal_year, _class()
        )
        .having(cents > literal(to_cents(settings.open_tender_threshold), BigInteger()))
    )


def _case(row: Any) -> SplitCase:
    name, line_id, project, year, cls, n, cents = row
    return SplitCase(str(name), line_id, str(project), int(year), str(cls), int(n), from_cents(int(cents)))


async def split_purchase_cases(session: AsyncSession, settings: Settings) -> list[SplitCase]:
    """Budget projects whose purchases of one class, outside tendering, add up above the open-tender threshold."""
    rows = await session.execute(_cases_stmt(settings))
    return sorted((_case(r) for r in rows.all()), key=lambda c: c.total, reverse=True)


async def split_purchase_warnings(
    session: AsyncSession, settings: Settings, orders: list[Order]
) -> list[str]:
    """Warnings for the buyer after a checkout whose orders take a class over the threshold."""
    if not orders:
        return []
    line_ids = {o.budget_line_id for o in orders}
    classes = {ln.category_code[:CLASS_LENGTH] for o in orders for ln in o.lines}
    stmt = _cases_stmt(settings).where(Order.budget_line_id.in_(line_ids), _class().in_(classes))
    out = []
    for row in (await session.execute(stmt)).all():
        case = _case(row)
        out.append(
            f"提示：预算项目 {case.project_code} 本年度已累计采购「{case.class_name}」类商品 {case.total:,.2f} 元"
            f"（{case.orders} 笔），超过公开招标数额标准 {settings.open_tender_threshold:,.0f} 元，"
            "可能构成化整为零规避公开招标，该情况将提示财政监管部门。"
        )
    return out
