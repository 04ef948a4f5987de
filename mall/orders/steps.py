"""An order's current step, who acts next and by when (mall.core.steps)."""

from __future__ import annotations

from datetime import timedelta

from mall.core import clock
from mall.core.steps import NextStep, end_of_day
from mall.core.workdays import WorkCalendar
from mall.orders.models import Order, OrderStatus
from mall.sme.rules import is_sme

# A contract not filed within this many working days is shown to the regulator: the law gives 7
# working days from the signing (政府采购法第四十七条). A contract not yet signed by both counts from
# the confirmation (the deal is public already; its contract should follow it).
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
    if st in (OrderStatus.CONFIRMED, OrderStatus.SIGNED) and order.cancel_requested_by:
        other = "supplier" if order.cancel_requested_by == "buyer" else "buyer"
        return NextStep("取消申请待处理", other, "同意或拒绝对方的取消申请")
    if st == OrderStatus.CONFIRMED:
        due = None
        if order.confirmed_at is not None:
            due = end_of_day(
                calendar.add_working_days(clock.local_date(order.confirmed_at), CONTRACT_FILING_WORKING_DAYS)
            )
        waiting = [
            name
            for name, at in (("供应商", order.supplier_signed_at), ("采购人", order.buyer_signed_at))
            if at is None
        ]
        actor = "supplier" if order.supplier_signed_at is None else "buyer"
        return NextStep(
            "待双方签署合同",
            actor,
            "待" + "、".join(waiting) + "以本单位证书签署电子合同（防篡改签名）",
            due,
            f"双方签署、采购人备案应在确认后 {CONTRACT_FILING_WORKING_DAYS} 个工作日内完成，逾期列入监管清单",
        )
    if st == OrderStatus.SIGNED:
        due = None
        if order.signed_at is not None:
            due = end_of_day(
                calendar.add_working_days(clock.local_date(order.signed_at), CONTRACT_FILING_WORKING_DAYS)
            )
        return NextStep(
            "待备案合同",
            "buyer",
            "双方已签署，采购人备案合同",
            due,
            f"签订之日起 {CONTRACT_FILING_WORKING_DAYS} 个工作日内备案（政府采购法第四十七条），逾期列入监管清单",
        )
    if st == OrderStatus.CONTRACTED:
        return NextStep(
            "待发货",
            "supplier",
            "按合同约定发货（可分批），登记物流公司与运单号；开具发票后登记发票",
            None,
            "合同备案后采购人可凭已确认的发票预付款",
        )
    if st == OrderStatus.SHIPPED:
        return NextStep(
            "待收货",
            "buyer",
            "核对到货数量后确认收货（可部分收货）",
            None,
            "未发完、短收或验收退回的数量由供应商补发",
        )
    if st == OrderStatus.RECEIVED:
        return NextStep(
            "待验收",
            "buyer",
            "组织验收，填写验收单（验收人员、逐项结果）并评价供应商",
            None,
            "有不合格项的，退回供应商重新交付",
        )
    if st == OrderStatus.ACCEPTED:
        due = None
        note = "按合同约定的期限付款"
        if order.accepted_at is not None and is_sme(order.supplier_scale):
            due = order.accepted_at + timedelta(days=payment_due_days)
            note = f"中小企业合同须在验收后 {payment_due_days} 日内付款，逾期列入监管清单"
        return NextStep(
            "待付款", "buyer", "确认供应商登记的发票后付款，登记国库集中支付凭证号与金额（可分次）", due, note
        )
    if st == OrderStatus.PAID:
        return NextStep("已完成", None, "订单已付款，全部环节办结")
    return NextStep("已取消", None, "订单已取消，预算已释放")
