"""What the regulator watches that spans orders: late payments to small suppliers, contracts not
filed, split purchases (化整为零, 条例第28条), and the watch lists of inquiries, auctions and
designated services. The oversight page and the /api/oversight endpoints read the same functions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.oversight import BiddingWatch, bidding_watch
from catalog import designated
from catalog.categories import name_of
from mall.budgets.models import BudgetLine
from mall.core import clock
from mall.core.models import Organization
from mall.core.money import from_cents, to_cents
from mall.core.regions import in_scope, within
from mall.core.settings import Settings
from mall.core.workdays import WorkCalendar
from mall.notices.models import Notice, NoticeKind
from mall.orders.models import Order, OrderLine, OrderStatus
from mall.orders.steps import CONTRACT_FILING_WORKING_DAYS
from mall.sme.rules import SME_SIZES

# Purchases of the same class are added up at the third level of the 品目 code (e.g. A020101 计算机
# covers desktops, laptops and servers): buying them separately does not make them different goods.
CLASS_LENGTH = 7


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


def _cases_stmt(
    settings: Settings, scope: str | None = None
) -> Select[str, uuid.UUID, str, int, str, int, int]:
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
        .where(Order.status != OrderStatus.CANCELLED, in_scope(Order.region_code, scope))
        .group_by(
            Organization.name, Order.budget_line_id, BudgetLine.project_code, BudgetLine.fiscal_year, _class()
        )
        .having(cents > literal(to_cents(settings.open_tender_threshold), BigInteger()))
    )


def _case(row: Any) -> SplitCase:
    name, line_id, project, year, cls, n, cents = row
    return SplitCase(str(name), line_id, str(project), int(year), str(cls), int(n), from_cents(int(cents)))


async def split_purchase_cases(
    session: AsyncSession, settings: Settings, scope: str | None = None
) -> list[SplitCase]:
    """Budget projects whose purchases of one class, outside tendering, add up above the open-tender
    threshold (in the region `scope`; None: everywhere)."""
    rows = await session.execute(_cases_stmt(settings, scope))
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


# ---------------------------------------------------------------- payments and contracts


@dataclass(frozen=True)
class Late:
    """An order and the whole days since the step that should have been followed by another."""

    order: Order
    days: int


def _unpaid(settings: Settings, now: datetime, scope: str | None = None) -> Select[Order]:
    # The payment deadline protects small and medium suppliers (the declaration in force when the
    # order was made, mall.sme): they are chosen here, in the query, before any limit, so a long list
    # of large suppliers' orders cannot hide them.
    warn_before = now - timedelta(days=settings.payment_warn_days)
    return select(Order).where(
        Order.status == OrderStatus.ACCEPTED,
        Order.accepted_at <= warn_before,
        Order.supplier_scale.in_(SME_SIZES),
        in_scope(Order.region_code, scope),
    )


async def unpaid_orders(
    s: AsyncSession,
    settings: Settings,
    now: datetime,
    *,
    limit: int = 100,
    offset: int = 0,
    scope: str | None = None,
) -> list[Late]:
    """Orders of small and medium suppliers accepted `payment_warn_days` ago or more and not paid,
    the longest waiting first."""
    stmt = _unpaid(settings, now, scope).order_by(Order.accepted_at, Order.id).offset(offset).limit(limit)
    found = (await s.execute(stmt)).scalars().unique()
    return [Late(o, (now - o.accepted_at).days if o.accepted_at else 0) for o in found]


async def unpaid_count(s: AsyncSession, settings: Settings, now: datetime, scope: str | None = None) -> int:
    return await s.scalar(select(func.count()).select_from(_unpaid(settings, now, scope).subquery())) or 0


def _late_paid(scope: str | None = None) -> Select[Order]:
    return select(Order).where(Order.payment_overdue.is_(True), in_scope(Order.region_code, scope))


async def late_payments(
    s: AsyncSession, *, limit: int = 50, offset: int = 0, scope: str | None = None
) -> list[Order]:
    """Orders paid after the deadline, the latest payment first."""
    stmt = _late_paid(scope).order_by(Order.paid_at.desc(), Order.id).offset(offset).limit(limit)
    return list((await s.execute(stmt)).scalars().unique())


async def late_payment_count(s: AsyncSession, scope: str | None = None) -> int:
    return await s.scalar(select(func.count()).select_from(_late_paid(scope).subquery())) or 0


def filing_cutoff(now: datetime, calendar: WorkCalendar) -> datetime:
    """Orders confirmed before this instant are past their filing deadline, the end of the
    `CONTRACT_FILING_WORKING_DAYS`-th working day after the day of confirmation (China time): that
    is, confirmed on a day before the one that many working days before today."""
    day = calendar.add_working_days(clock.local_date(now), -CONTRACT_FILING_WORKING_DAYS)
    return datetime.combine(day, time.min, clock.SHANGHAI)


def _unfiled(now: datetime, calendar: WorkCalendar, scope: str | None = None) -> Select[Order]:
    """Not filed in time: a contract signed by both counts from its signing (政府采购法第四十七条),
    one not yet signed by both from the confirmation."""
    cutoff = filing_cutoff(now, calendar)
    return select(Order).where(
        or_(
            and_(Order.status == OrderStatus.CONFIRMED, Order.confirmed_at < cutoff),
            and_(Order.status == OrderStatus.SIGNED, Order.signed_at < cutoff),
        ),
        in_scope(Order.region_code, scope),
    )


async def unfiled_contracts(
    s: AsyncSession,
    now: datetime,
    calendar: WorkCalendar,
    *,
    limit: int = 100,
    offset: int = 0,
    scope: str | None = None,
) -> list[Late]:
    """Confirmed orders whose contract was not filed within `CONTRACT_FILING_WORKING_DAYS`, the
    oldest first, with the calendar days since their confirmation."""
    stmt = _unfiled(now, calendar, scope).order_by(Order.confirmed_at, Order.id).offset(offset).limit(limit)
    found = (await s.execute(stmt)).scalars().unique()
    return [Late(o, (now - (o.signed_at or o.confirmed_at)).days if o.confirmed_at else 0) for o in found]


async def unfiled_count(
    s: AsyncSession, now: datetime, calendar: WorkCalendar, scope: str | None = None
) -> int:
    return await s.scalar(select(func.count()).select_from(_unfiled(now, calendar, scope).subquery())) or 0


@dataclass(frozen=True)
class LateNotice:
    """A 合同公告 published after its deadline, or not published although its deadline passed."""

    order: Order
    published_at: datetime | None
    seq: int | None


async def late_contract_notices(
    s: AsyncSession, settings: Settings, now: datetime, *, limit: int = 100, scope: str | None = None
) -> list[LateNotice]:
    """Contracts signed by both whose 合同公告 was not published within
    `contract_notice_working_days` working days: missing ones first, then late ones."""
    day = settings.work_calendar.add_working_days(
        clock.local_date(now), -settings.contract_notice_working_days
    )
    cutoff = datetime.combine(day, time.min, clock.SHANGHAI)
    published = select(Notice.order_id).where(
        Notice.kind == NoticeKind.CONTRACT, Notice.order_id.is_not(None)
    )
    missing = (
        (
            await s.execute(
                select(Order)
                .where(
                    Order.signed_at.is_not(None),
                    Order.signed_at < cutoff,
                    Order.id.not_in(published),
                    in_scope(Order.region_code, scope),
                )
                .order_by(Order.signed_at)
                .limit(limit)
            )
        )
        .scalars()
        .unique()
    )
    out = [LateNotice(o, None, None) for o in missing]
    late = (
        await s.execute(
            select(Notice, Order)
            .join(Order, Order.id == Notice.order_id)
            .where(
                Notice.kind == NoticeKind.CONTRACT, Notice.late.is_(True), in_scope(Order.region_code, scope)
            )
            .order_by(Notice.seq.desc())
            .limit(limit)
        )
    ).all()
    out += [LateNotice(o, n.published_at, n.seq) for n, o in late]
    return out


async def status_counts(s: AsyncSession, scope: str | None = None) -> dict[str, int]:
    """How many orders are in each state."""
    stmt = select(Order.status, func.count()).where(in_scope(Order.region_code, scope)).group_by(Order.status)
    rows = (await s.execute(stmt)).all()
    return {str(status): int(n) for status, n in rows}


async def overdue_designation_reviews(
    s: AsyncSession, now: datetime, scope: str | None = None
) -> list[designated.Found]:
    """Applications to be a designated supplier that the center has not reviewed in time (for a
    service region within `scope`)."""
    return [
        f
        for f in await designated.find(s, status=designated.DesignationStatus.APPLIED)
        if f.designation.review_due_at is not None
        and f.designation.review_due_at < now
        and (scope is None or within(f.designation.region_code, scope))
    ]


@dataclass(frozen=True)
class Overview:
    """Everything the oversight page shows."""

    unpaid: list[Late]
    late_paid: list[Order]
    counts: dict[str, int]
    pending: int
    split_cases: list[SplitCase]
    watch: BiddingWatch
    overdue_reviews: list[designated.Found]
    unfiled: list[Late]
    late_notices: list[LateNotice]


async def overview(s: AsyncSession, settings: Settings, now: datetime, scope: str | None = None) -> Overview:
    """The oversight page's lists, in the region `scope` (the overseer's; None: everywhere)."""
    counts = await status_counts(s, scope)
    return Overview(
        unpaid=await unpaid_orders(s, settings, now, scope=scope),
        late_paid=await late_payments(s, scope=scope),
        counts=counts,
        pending=counts.get(OrderStatus.PLACED, 0),
        split_cases=await split_purchase_cases(s, settings, scope),
        watch=await bidding_watch(s, scope=scope),
        overdue_reviews=await overdue_designation_reviews(s, now, scope),
        unfiled=await unfiled_contracts(s, now, settings.work_calendar, scope=scope),
        late_notices=await late_contract_notices(s, settings, now, scope=scope),
    )
