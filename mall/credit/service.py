"""Credit scores computed from the events and the buyers' evaluations (docs/credit.md).

- `scan_late_deliveries` records what time alone makes due: an order not shipped within the
  contract's delivery term (合同备案之日起 N 日内), or shipped after it.
- `refresh` recomputes every supplier's stored score (the periodic tick; listings and rankings read it).
- `detail` is one supplier's score computed afresh, with every event and evaluation behind it: for the
  supplier itself, the center and the regulator.
- `ranking` lists the suppliers by score, for the regulator and the center.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import Forbidden, InvalidInput, NotFound
from mall.core.models import Organization, OrgKind
from mall.core.settings import Settings
from mall.credit import rules
from mall.credit.models import CreditEvent, SupplierCredit
from mall.credit.record import record
from mall.orders.models import Order, OrderStatus

OVERSEERS = ("center", "regulator")
RECENT_SHIPMENTS = timedelta(days=3)  # the scan runs every few minutes: a late shipment is seen at once


def window_start(now: datetime) -> datetime:
    return now - timedelta(days=rules.WINDOW_DAYS)


async def scan_late_deliveries(db: Database, settings: Settings, *, since: datetime | None = None) -> int:
    """Record a late delivery for each order past its delivery term: not shipped yet (still 合同已备案),
    or first shipped after it (orders shipped since `since`, by default the last three days).
    Returns the events added."""
    now = clock.now()
    term = timedelta(days=settings.contract_delivery_days)
    shipped_since = since or now - RECENT_SHIPMENTS
    recorded = select(CreditEvent.source_id).where(CreditEvent.kind == "late_delivery")
    async with db.read() as s:
        rows = (
            await s.execute(
                select(Order.id, Order.contract_filed_at, Order.shipped_at)
                .where(
                    Order.contract_filed_at.is_not(None),
                    Order.contract_filed_at <= now - term,
                    Order.status != OrderStatus.CANCELLED,
                    (Order.status == OrderStatus.CONTRACTED) | (Order.shipped_at >= shipped_since),
                    Order.id.not_in(recorded),
                )
                .order_by(Order.contract_filed_at)
            )
        ).all()
    late = [
        r.id
        for r in rows
        if r.contract_filed_at is not None and (r.shipped_at or now) > r.contract_filed_at + term
    ]
    added = 0
    for order_id in late:
        added += await _record_late(db, order_id, term)
    return added


@retried
async def _record_late(db: Database, order_id: uuid.UUID, term: timedelta) -> int:
    async with db.write() as tx:
        # the order's row lock: its shipment cannot happen while the event is being decided
        order = (
            await tx.session.execute(select(Order).where(Order.id == order_id).with_for_update(of=Order))
        ).scalar_one()
        if order.contract_filed_at is None or order.status == OrderStatus.CANCELLED:
            return 0
        due = order.contract_filed_at + term
        if (order.shipped_at or clock.now()) <= due:
            return 0
        added = await record(
            tx.session,
            order.supplier_org_id,
            "late_delivery",
            source_kind="order",
            source_id=order.id,
            ref=order.order_no,
            at=due,
        )
        return int(added)


async def _evaluations(
    s: AsyncSession, since: datetime, org_id: uuid.UUID | None = None
) -> list[tuple[uuid.UUID, int, str, datetime]]:
    q = select(Order.supplier_org_id, Order.evaluation_score, Order.order_no, Order.accepted_at).where(
        Order.evaluation_score.is_not(None), Order.accepted_at >= since
    )
    if org_id is not None:
        q = q.where(Order.supplier_org_id == org_id)
    rows = (await s.execute(q.order_by(Order.accepted_at.desc()))).all()
    return [(r[0], int(r[1] or 0), r[2], r[3] or since) for r in rows]


async def _events(s: AsyncSession, since: datetime, org_id: uuid.UUID | None = None) -> list[CreditEvent]:
    q = select(CreditEvent).where(CreditEvent.at >= since)
    if org_id is not None:
        q = q.where(CreditEvent.supplier_org_id == org_id)
    return list((await s.execute(q.order_by(CreditEvent.at.desc(), CreditEvent.ref))).scalars())


async def refresh(db: Database) -> int:
    """Recompute and store every supplier's score; returns how many suppliers."""
    now = clock.now()
    since = window_start(now)
    async with db.read() as s:
        suppliers = list(
            (await s.execute(select(Organization.id).where(Organization.kind == OrgKind.SUPPLIER))).scalars()
        )
        # totals per supplier, grouped in the database (a year of orders is not read row by row)
        stars = {
            r[0]: (int(r[1]), int(r[2] or 0))
            for r in (
                await s.execute(
                    select(Order.supplier_org_id, func.count(), func.sum(Order.evaluation_score))
                    .where(Order.evaluation_score.is_not(None), Order.accepted_at >= since)
                    .group_by(Order.supplier_org_id)
                )
            ).all()
        }
        kinds: dict[uuid.UUID, dict[str, int]] = {}
        for org_id, kind, n in (
            await s.execute(
                select(CreditEvent.supplier_org_id, CreditEvent.kind, func.count())
                .where(CreditEvent.at >= since)
                .group_by(CreditEvent.supplier_org_id, CreditEvent.kind)
            )
        ).all():
            kinds.setdefault(org_id, {})[kind] = int(n)
    scores = {
        org_id: rules.score_of(*stars.get(org_id, (0, 0)), kinds.get(org_id, {})) for org_id in suppliers
    }
    await _store(db, scores, now)
    return len(scores)


@retried
async def _store(db: Database, scores: dict[uuid.UUID, rules.Score], now: datetime) -> None:
    async with db.write() as tx:
        s = tx.session
        have = {
            r.supplier_org_id: r
            for r in (
                await s.execute(
                    select(SupplierCredit)
                    .where(SupplierCredit.supplier_org_id.in_(list(scores)))
                    .with_for_update()
                )
            ).scalars()
        }
        for org_id, x in sorted(scores.items()):
            row = have.get(org_id)
            if row is None:
                row = SupplierCredit(supplier_org_id=org_id)
                s.add(row)
            row.score, row.grade, row.version = x.score, x.grade, x.version
            row.evaluations, row.events = x.evaluations, sum(x.counts.values())
            row.parts = x.parts()
            row.computed_at = now


@dataclass(frozen=True)
class EventLine:
    at: datetime
    kind: str
    label: str
    ref: str
    points: str  # signed: "-2", or an evaluation's stars "★4"


@dataclass(frozen=True)
class Detail:
    org_id: uuid.UUID
    name: str
    score: rules.Score
    stored: SupplierCredit | None
    lines: list[EventLine]  # events and evaluations in the window, the newest first
    since: datetime
    computed_at: datetime


def can_see_detail(who: Principal | None, org_id: uuid.UUID) -> bool:
    return who is not None and (who.role in OVERSEERS or (who.role == "supplier" and who.org_id == org_id))


async def detail(s: AsyncSession, who: Principal | None, org_id: uuid.UUID) -> Detail:
    """One supplier's score computed now, with every event and evaluation behind it."""
    if not can_see_detail(who, org_id):
        raise NotFound("供应商信用记录不存在", code="credit_not_found")
    org = await s.get(Organization, org_id)
    if org is None or org.kind != OrgKind.SUPPLIER:
        raise NotFound("供应商信用记录不存在", code="credit_not_found")
    now = clock.now()
    since = window_start(now)
    evaluations = await _evaluations(s, since, org_id)
    events = await _events(s, since, org_id)
    lines = [
        EventLine(e.at, e.kind, rules.EVENTS[e.kind].label, e.ref, f"-{rules.EVENTS[e.kind].points}")
        for e in events
    ] + [
        EventLine(at, "evaluation", "采购人评价", order_no, f"★{value}")
        for _, value, order_no, at in evaluations
    ]
    lines.sort(key=lambda x: (x.at, x.ref), reverse=True)
    score = rules.score([v for _, v, _, _ in evaluations], [e.kind for e in events])
    return Detail(org_id, org.name, score, await s.get(SupplierCredit, org_id), lines, since, now)


RANK_ORDERS = ("asc", "desc")


async def ranking(
    s: AsyncSession, who: Principal | None, *, order: str = "asc", page: int = 1, per_page: int = 20
) -> tuple[int, list[tuple[SupplierCredit, str]]]:
    """Suppliers by stored score (asc: the lowest first, where a regulator looks), with their names."""
    if who is None or who.role not in OVERSEERS:
        raise Forbidden("只有集中采购机构和财政监管部门可以查看信用排名", code="forbidden")
    if order not in RANK_ORDERS:
        raise InvalidInput("排序应为 asc 或 desc", code="invalid_order", field="order")
    total = await s.scalar(select(func.count()).select_from(SupplierCredit)) or 0
    by = SupplierCredit.score.asc() if order == "asc" else SupplierCredit.score.desc()
    rows = (
        await s.execute(
            select(SupplierCredit, Organization.name)
            .join(Organization, Organization.id == SupplierCredit.supplier_org_id)
            .order_by(by, Organization.name)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).all()
    return int(total), [(r[0], r[1]) for r in rows]
