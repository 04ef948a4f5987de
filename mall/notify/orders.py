"""Notices of an order's steps, for the party that acts next: called from `record_event`, in the
transaction of the step. Recipients are the active users of the buyer's or the supplier's unit; every
notice links to the order's page, where the step is done (and which the 工作台 lists)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.auth import Principal
from mall.notify.models import Kind
from mall.notify.stage import Item, for_org, stage
from mall.orders.models import Order, OrderStatus

BUYER, SUPPLIER = "buyer", "supplier"


def _when(at: datetime | None) -> str:
    return clock.local_display(at) if at is not None else "—"


def _party(order: Order, side: str) -> uuid.UUID:
    return order.buyer_org_id if side == BUYER else order.supplier_org_id


def _other(side: str) -> str:
    return SUPPLIER if side == BUYER else BUYER


def _actor_side(order: Order, who: Principal | None) -> str | None:
    if who is None or who.org_id is None:
        return None
    if who.org_id == order.buyer_org_id:
        return BUYER
    if who.org_id == order.supplier_org_id:
        return SUPPLIER
    return None


def items_for(order: Order, who: Principal | None, action: str) -> list[Item]:
    """The notices an order event makes, by action and the order's state; none for an action not
    listed here."""
    no = order.order_no
    link = f"/orders/{order.id}"
    ref = f"order:{order.id}"

    def to(side: str, kind: Kind, title: str, body: str) -> Item:
        return for_org(_party(order, side), kind, f"{title}：订单 {no}", body, link, ref=ref)

    if action == "placed":
        return [
            to(
                SUPPLIER,
                Kind.ORDER_TO_CONFIRM,
                "新订单待确认",
                f"金额 ¥{order.total_amount:,.2f}。请在 {_when(order.confirm_due_at)} 前确认，"
                "逾期未确认的订单将自动取消。",
            )
        ]
    if action == "confirmed":
        body = "订单已确认，请签订电子合同。"
        return [to(side, Kind.CONTRACT_TO_SIGN, "合同待签订", body) for side in (BUYER, SUPPLIER)]
    if action in ("supplier_signed", "buyer_signed"):
        signer = SUPPLIER if action == "supplier_signed" else BUYER
        if order.status == OrderStatus.SIGNED:
            return [to(BUYER, Kind.CONTRACT_TO_FILE, "合同待备案", "双方已签订电子合同，请办理合同备案。")]
        who_signed = "供应商" if signer == SUPPLIER else "采购人"
        return [
            to(_other(signer), Kind.CONTRACT_TO_SIGN, "合同待签订", f"{who_signed}已签订电子合同，请签订。")
        ]
    if action == "contract_filed":
        return [to(SUPPLIER, Kind.TO_SHIP, "合同已备案，待发货", "采购人已办理合同备案，请按合同约定发货。")]
    if action == "shipped":
        return [to(BUYER, Kind.DELIVERY_TO_ACCEPT, "到货待收货验收", "供应商已发货，请收货并验收。")]
    if action == "acceptance_refused":
        return [to(SUPPLIER, Kind.REDELIVER, "验收未通过", "采购人验收未通过，请查看原因并重新交付。")]
    if action == "accepted":
        return [to(SUPPLIER, Kind.ACCEPTED, "订单已验收", "采购人已验收，请按合同开具发票。")]
    if action == "invoice_recorded":
        return [to(BUYER, Kind.INVOICE_TO_CONFIRM, "发票待确认", "供应商已登记发票，请核对并确认。")]
    if action == "invoice_confirmed":
        return [to(SUPPLIER, Kind.INVOICE_ANSWERED, "发票已确认", "采购人已确认发票。")]
    if action == "invoice_rejected":
        return [to(SUPPLIER, Kind.INVOICE_ANSWERED, "发票被退回", "采购人退回了发票，请查看原因并重新登记。")]
    if action == "paid":
        return [to(SUPPLIER, Kind.PAYMENT, "已登记付款", "采购人已登记一笔付款，请核对到账情况。")]
    if action == "cancel_requested":
        asker = order.cancel_requested_by or _actor_side(order, who) or BUYER
        return [to(_other(asker), Kind.CANCEL_REQUESTED, "对方申请取消订单", "请查看取消原因，同意或拒绝。")]
    if action == "cancelled":
        actor = _actor_side(order, who)
        return [
            to(side, Kind.CANCELLED, "订单已取消", "订单已取消，占用的预算已释放。")
            for side in (BUYER, SUPPLIER)
            if side != actor
        ]
    if action == "claim_opened":
        return [to(SUPPLIER, Kind.CLAIM, "售后申请待答复", "采购人提出了售后申请，请在期限内答复。")]
    if action == "claim_answered":
        return [to(BUYER, Kind.CLAIM, "售后申请已答复", "供应商已答复售后申请，请查看并记录结果。")]
    return []


def on_order_event(session: AsyncSession, order: Order, who: Principal | None, action: str) -> None:
    """Stage the notices of this event in the event's transaction."""
    stage(session, items_for(order, who, action))


def payment_due_item(order: Order, due_days: int) -> Item:
    """The notice to the buyer of an accepted, unpaid order of a small or medium supplier whose
    payment deadline is near: one per order, ever (its key)."""
    due = (order.accepted_at or clock.now()) + timedelta(days=due_days)
    return for_org(
        order.buyer_org_id,
        Kind.PAYMENT_DUE,
        f"付款即将到期：订单 {order.order_no}",
        f"中小企业合同须在验收后 {due_days} 日内付款，本订单付款期限为 {_when(due)}，请及时付款。",
        f"/orders/{order.id}",
        ref=f"order:{order.id}",
        key=f"payment-due:{order.id}",
    )
