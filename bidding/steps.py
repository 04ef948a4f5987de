"""A procedure's current step, who acts next and by when (mall.core.steps). It tells no more than
the shown status does: nothing of how many have quoted."""

from __future__ import annotations

import uuid
from datetime import datetime

from bidding.models import Procedure, ProcedureKind, ProcedureStatus
from bidding.views import shown_status
from mall.core.steps import NextStep


def next_step(p: Procedure, now: datetime) -> NextStep:
    st = shown_status(p, now)
    inquiry = p.kind == ProcedureKind.INQUIRY
    if st == ProcedureStatus.DRAFT:
        return NextStep("草稿", "buyer", "完善采购需求后发布公告")
    if st == ProcedureStatus.PUBLISHED:
        return NextStep(
            "已发布，待开始",
            "platform",
            "到开始时间后接受报价" if inquiry else "到开始时间后开放竞价室",
            p.starts_at,
        )
    if st == ProcedureStatus.OPEN and inquiry:
        return NextStep(
            "报价中",
            "supplier",
            "提交密封报价（截止前可修改或撤回）",
            p.ends_at,
            f"截止后开启报价；有效报价少于 {p.min_participants} 家则流标",
        )
    if st == ProcedureStatus.OPEN:
        return NextStep(
            "竞价中",
            "supplier",
            "在竞价室出价（须低于本方上一次出价）",
            p.ends_at,
            f"最后 {p.snipe_window_seconds // 60} 分钟内出价将延时；少于 {p.min_participants} 家供应商有效出价则废标",
        )
    if st == ProcedureStatus.CLOSED:
        return NextStep("已截止，正在评审", "platform", "开启报价、排序并确定成交候选供应商")
    if st == ProcedureStatus.AWARDED:
        return NextStep(
            "待成交确认",
            "supplier",
            "确认成交或放弃（排名第一的供应商）",
            p.confirm_due_at,
            "逾期未确认，依次顺延给下一名",
        )
    if st == ProcedureStatus.FAILED:
        return NextStep("采购失败", None, "采购人可调整需求后重新发布采购公告")
    if st == ProcedureStatus.CONFIRMED:
        return NextStep("已成交", None, "成交订单已生成，后续环节在订单中办理")
    return NextStep("已撤销", None, "采购人已撤销本项目")


def stance(p: Procedure, step: NextStep, role: str, org_id: uuid.UUID | None) -> str:
    """How a viewer stands to the procedure's next step: the buyer's own unit for its steps; any
    eligible supplier while offers are taken (it sees the procedure only if eligible); only the
    supplier ranked first for the award."""
    if role == "buyer":
        own = org_id is not None and p.buyer_org_id == org_id
    elif role == "supplier" and step.actor == "supplier" and p.status == ProcedureStatus.AWARDED:
        own = org_id is not None and p.awarded_supplier_id == org_id
    else:
        own = role == "supplier"
    return step.stance(role, own=own)
