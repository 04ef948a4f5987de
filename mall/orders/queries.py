"""Reading orders: who may see one, one order, a page of them, and where its payment stands."""

from __future__ import annotations

import uuid

from sqlalchemy import false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.auth import Principal
from mall.core.errors import NotFound
from mall.core.personal_data import OVERSIGHT
from mall.core.settings import Settings
from mall.orders.models import Order, OrderStatus
from mall.sme.rules import is_sme


def can_see(who: Principal, order: Order) -> bool:
    if who.role in ("center", "regulator"):
        return True
    return who.org_id in (order.buyer_org_id, order.supplier_org_id)


def personal_data_shown(who: Principal, order: Order, *, contract: bool = False) -> str | None:
    """Which personal data of others the order page shows this reader, named for the read log
    (mall.core.personal_data); None: nothing to log. The oversight roles read everything on it; the
    supplier reads the buyer's contact details (where to deliver, to whom, its notes). A party's own
    data, and the supplier's shipping note shown to the buyer, are not logged. The e-contract
    (`contract`) names the parties as organizations only and the delivery place by reference to the
    order: it shows no personal data, and reading it is not logged."""
    if contract:
        return None
    if who.role in OVERSIGHT:
        return "订单：收货地址、备注、物流信息、取消原因、验收评价、售后申请、经办人姓名"
    if who.role == "supplier" and who.org_id == order.supplier_org_id:
        return "订单：采购人填写的收货地址与备注"
    return None


def not_found() -> NotFound:
    # Someone else's order is "not found", not "forbidden": its existence is not disclosed.
    return NotFound("订单不存在", code="order_not_found")


async def get_order(session: AsyncSession, who: Principal, order_id: uuid.UUID) -> Order:
    order = await session.get(Order, order_id)
    if order is None or not can_see(who, order):
        raise not_found()
    return order


async def list_orders(
    session: AsyncSession, who: Principal, status: str | None, page: int, per_page: int
) -> tuple[int, list[Order]]:
    stmt = select(Order)
    if who.role == "buyer":
        stmt = stmt.where(Order.buyer_org_id == who.org_id)
    elif who.role == "supplier":
        stmt = stmt.where(Order.supplier_org_id == who.org_id)
    elif who.role not in ("center", "regulator"):
        stmt = stmt.where(false())  # fail closed: the platform's administrators read no orders
    if status:
        stmt = stmt.where(Order.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(Order.placed_at.desc(), Order.id).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars().unique())


def payment_state(order: Order, settings: Settings) -> str:
    """'', 'due_soon' (warned at 25 days), 'overdue' (flagged at 30) for an accepted, unpaid order."""
    if order.status != OrderStatus.ACCEPTED or order.accepted_at is None or not is_sme(order.supplier_scale):
        return ""
    days = (clock.now() - order.accepted_at).days
    if days > settings.payment_due_days:
        return "overdue"
    if days >= settings.payment_warn_days:
        return "due_soon"
    return ""
