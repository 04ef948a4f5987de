"""An order's history: one line per thing done to it, by a person or by the mall itself; and what the
disclosure ledger is told of it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.auth import Principal
from mall.core.money import money_str, quantity_str
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


async def events_of(session: AsyncSession, order_id: uuid.UUID) -> list[OrderEvent]:
    rows = await session.execute(
        select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.at)
    )
    return list(rows.scalars())


def deal_payload(order: Order, kind: str = "deal", amends: uuid.UUID | None = None) -> dict[str, Any]:
    """What the world is told about an order. Taken at the moment of the deal (or its cancellation)."""
    at = order.confirmed_at or order.placed_at
    return {
        "kind": kind,
        "amends": str(amends) if amends else None,
        "mode": order.mode,
        "order_no": order.order_no,
        "region_code": order.region_code,
        "deal_date": clock.local_date(at).isoformat(),
        "buyer": {"name": order.buyer.name, "credit_code": order.buyer.credit_code},
        "supplier": {
            "name": order.supplier.name,
            "credit_code": order.supplier.credit_code,
            "address": order.supplier.address,
        },
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
