"""An order's history: one line per thing done to it, by a person or by the mall itself; and what the
disclosure ledger is told of it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock, outbox
from mall.core.auth import Principal
from mall.core.models import Organization
from mall.core.money import money_str, quantity_str
from mall.notify import orders as order_notices
from mall.orders.models import Order, OrderEvent


def record_event(s: AsyncSession, order: Order, who: Principal | None, action: str, detail: str = "") -> None:
    """One line of an order's history, by a person or (`who` None) by the mall itself."""
    label = f"{who.org_name}·{who.display_name}" if who else "系统"
    s.add(
        OrderEvent(
            order_id=order.id,
            at=clock.now(),
            actor_user_id=who.user_id if who else None,
            actor_label=label,
            action=action,
            detail=detail,
        )
    )
    # The party that acts next is told, through the outbox, in this same transaction.
    order_notices.on_order_event(s, order, who, action)
    # The risk rules look at the buyer's orders again once this commits (mall.supervision).
    outbox.stage_risk(s, buyers=[order.buyer_org_id])


async def events_of(session: AsyncSession, order_id: uuid.UUID) -> list[OrderEvent]:
    rows = await session.execute(
        select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.at)
    )
    return list(rows.scalars())


def supplier_of_record(supplier: Organization) -> dict[str, str]:
    """The supplier as a published record names it: its registered name and 统一社会信用代码 (what
    财库〔2017〕86号 asks of a deal record), and a company's registered address. A sole proprietor's
    (个体工商户) address is a person's and is never published (docs/privacy.md)."""
    named = {"name": supplier.name, "credit_code": supplier.credit_code}
    return named if supplier.is_sole_proprietor else {**named, "address": supplier.address}


def deal_payload(order: Order, kind: str = "deal", amends: uuid.UUID | None = None) -> dict[str, Any]:
    """What the world is told about an order. Taken at the moment of the deal (or its cancellation).
    Nothing a person wrote on the order (notes, addresses, reasons) and no person's name or contact
    is in it: the parties as organizations, the goods, the amounts (docs/privacy.md)."""
    at = order.confirmed_at or order.placed_at
    return {
        "kind": kind,
        "amends": str(amends) if amends else None,
        "mode": order.mode,
        "order_no": order.order_no,
        "region_code": order.region_code,
        "deal_date": clock.local_date(at).isoformat(),
        "buyer": {"name": order.buyer.name, "credit_code": order.buyer.credit_code},
        "supplier": supplier_of_record(order.supplier),
        "total_amount": money_str(order.total_amount),
        "currency": "CNY",
        "lines": [
            {
                "item_name": line.item_name,
                "brand": line.brand,
                "spec_model": line.spec_model,
                "category_code": line.category_code,
                "quantity": quantity_str(line.quantity),
                "unit": line.unit,
                "unit_price": money_str(line.unit_price),
                "amount": money_str(line.amount),
            }
            for line in order.lines
        ],
    }
