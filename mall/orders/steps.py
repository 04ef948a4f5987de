"""An order's current step, who acts next and by when (mall.core.steps)."""

from __future__ import annotations

from datetime import timedelta

from mall.core import clock
from mall.core.steps import NextStep, end_of_day
from mall.core.workdays import WorkCalendar
from mall.orders.models import Order, OrderStatus

# A confirmed order whose contract the buyer has not signed and filed within this many working days
# is shown to the regulator (the deal is already public; the contract should follow it). The law
# gives 7 working days from the signing (政府采购法第四十七条); the mall counts from the confirmation.
CONTRACT_FILING_WORKING_DAYS = 7


def next_step(order: Order, calendar: WorkCalendar, payment_due_days: int) -> NextStep:
    """Pure: from the order's state alone. A cancellation asked for after confirmation waits on the
    other side before anything else."""
    st = order.status
    if st == OrderStatus.PLACED:
        return NextStep(
            "待供应商确认",
            "supplier",
            "确认订单（可降价，不可涨价）或拒绝接单",
            order.confirm_due_at,
            "逾期未确认，订单自动取消并释放预算",
        )
    if st == OrderStatus.CONFIRMED and order.cancel_requested_by:
        other = "supplier" if order.cancel_requested_by == "buyer" else "buyer"
        return NextStep("取消申请待处理", other, "同意或拒绝对方的取消申请")
    if st == OrderStatus.CONFIRMED:
        due = None
        if order.confirmed_at is not None:
            day = calendar.add_working_days(
                clock.local_date(order.confirmed_at), CONTRACT_FILING_WORKING_DAYS
            )
            due = end_of_day(day)
        return NextStep(
            "待签订并备案合同",
            "buyer",
            "签订并备案合同",
            due,
            f"确认后 {CONTRACT_FILING_WORKING_DAYS} 个工作日内备案，逾期列入监管清单",
        )
    if st == OrderStatus.CONTRACTED:
        return NextStep("待发货", "supplier", "按合同约定发货并登记物流信息")
    if st == OrderStatus.SHIPPED:
        return NextStep("待收货", "buyer", "核对到货后确认收货")
    if st == OrderStatus.RECEIVED:
        return NextStep("待验收", "buyer", "组织验收并评价供应商履约")
    if st == OrderStatus.ACCEPTED:
        due = None
        note = "按合同约定的期限付款"
        if order.accepted_at is not None and order.supplier.is_sme:
            due = order.accepted_at + timedelta(days=payment_due_days)
            note = f"中小企业合同须在验收后 {payment_due_days} 日内付款，逾期列入监管清单"
        return NextStep("待付款", "buyer", "付款并登记国库集中支付凭证号", due, note)
    if st == OrderStatus.PAID:
        return NextStep("已完成", None, "订单已付款，全部环节办结")
    return NextStep("已取消", None, "订单已取消，预算已释放")
