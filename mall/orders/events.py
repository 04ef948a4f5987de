"""An order's history: one line per thing done to it, by a person or by the mall itself."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.auth import Principal
from mall.core.models import Order, OrderEvent


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
