"""Notices that no single action causes, found by a periodic scan: a payment falling due."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mall.core import clock
from mall.core.db import Database, retried
from mall.notify.models import Kind, Notification
from mall.notify.orders import payment_due_item
from mall.notify.stage import stage
from mall.orders.models import Order, OrderStatus
from mall.sme.rules import SME_SIZES

# A buyer is told this many days before the payment deadline of a small or medium supplier.
PAYMENT_DUE_NOTICE_DAYS = 5
BATCH = 200


@retried
async def stage_payment_due(db: Database, payment_due_days: int) -> int:
    """Stage a notice for each accepted, unpaid order of a small or medium supplier whose deadline
    (accepted_at + `payment_due_days`) is within PAYMENT_DUE_NOTICE_DAYS and that has none yet (its
    key makes it one per order, ever). Returns how many were staged."""
    latest_acceptance = clock.now() + timedelta(days=PAYMENT_DUE_NOTICE_DAYS - payment_due_days)
    told = select(Notification.key).where(Notification.kind == Kind.PAYMENT_DUE)
    async with db.write() as tx:
        s = tx.session
        rows = (
            await s.execute(
                select(Order)
                .where(
                    Order.status == OrderStatus.ACCEPTED,
                    Order.accepted_at.is_not(None),
                    Order.accepted_at <= latest_acceptance,
                    Order.supplier_scale.in_(SME_SIZES),
                )
                .order_by(Order.accepted_at, Order.id)
                .limit(BATCH * 5)
            )
        ).scalars()
        done = set((await s.execute(told)).scalars())
        items = [payment_due_item(o, payment_due_days) for o in rows if f"payment-due:{o.id}" not in done][
            :BATCH
        ]
        stage(s, items)
    return len(items)
