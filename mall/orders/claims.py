"""After-sales claims (售后): after acceptance the buyer asks for a return, an exchange or a repair;
the supplier answers within `settings.claim_answer_working_days` working days; the buyer records the
outcome. A claim does not change the order, its amount or the published deal: a refund or a
replacement that changes the contract is a cancellation or a correction, each with its own record.

A supplier's claims, its late answers and the claims closed unresolved are its after-sales record
(`record_of`), shown on its orders and read by the credit evaluation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import Conflict, InvalidInput, NotFound
from mall.core.settings import Settings
from mall.core.steps import NextStep, end_of_day
from mall.credit import record as credit
from mall.orders.events import record_event
from mall.orders.lifecycle import changing
from mall.orders.models import (
    ClaimKind,
    ClaimOutcome,
    ClaimStatus,
    Order,
    OrderClaim,
    OrderStatus,
)
from mall.orders.queries import can_see, not_found

# Claims are opened on goods the buyer has accepted (and perhaps paid for).
CLAIMABLE = (OrderStatus.ACCEPTED, OrderStatus.PAID)
# One claim at a time per order: a second waits until the first is closed.
UNFINISHED = (ClaimStatus.OPEN, ClaimStatus.ANSWERED)


def _kind(raw: str) -> ClaimKind:
    try:
        return ClaimKind(raw)
    except ValueError:
        raise InvalidInput(
            "请选择售后类型：退货、换货或维修", code="invalid_claim_kind", field="kind"
        ) from None


def _words(raw: str, label: str, field: str) -> str:
    value = fields.text(raw, label, fields.REASON_MAX, multiline=True, field=field)
    if len(value) < 2:
        raise InvalidInput(
            f"请填写{label}（2至{fields.REASON_MAX}个字符）", code=f"{field}_required", field=field
        )
    return value


async def _claim(s: AsyncSession, order: Order, claim_id: uuid.UUID) -> OrderClaim:
    claim = (
        (
            await s.execute(
                select(OrderClaim)
                .where(OrderClaim.id == claim_id, OrderClaim.order_id == order.id)
                .with_for_update()
            )
        )
        .scalars()
        .first()
    )
    if claim is None:
        raise NotFound("售后申请不存在", code="claim_not_found")
    return claim


def _in_state(claim: OrderClaim, *states: str) -> None:
    if claim.status not in states:
        raise Conflict(
            f"售后申请当前状态为「{ClaimStatus(claim.status).label}」，不能执行此操作",
            code="invalid_claim_state",
            current_status=claim.status,
        )


@retried
async def open_claim(
    db: Database,
    settings: Settings,
    who: Principal,
    order_id: uuid.UUID,
    kind: str,
    reason: str,
    line_no: int | None = None,
) -> OrderClaim:
    """The buyer opens a claim on an accepted order; the supplier's answer is due within the set
    number of working days."""
    claim_kind = _kind(kind)
    why = _words(reason, "售后原因", "reason")
    async with changing(db, who, order_id, "buyer", *CLAIMABLE) as (tx, order):
        if line_no is not None and line_no not in {x.line_no for x in order.lines}:
            raise InvalidInput("订单中没有这一行", code="invalid_line_no", field="line_no")
        unfinished = await tx.session.scalar(
            select(func.count())
            .select_from(OrderClaim)
            .where(OrderClaim.order_id == order.id, OrderClaim.status.in_(UNFINISHED))
        )
        if unfinished:
            raise Conflict("本订单已有未结束的售后申请，请先处理完毕", code="claim_unfinished")
        now = clock.now()
        due = end_of_day(
            settings.work_calendar.add_working_days(clock.local_date(now), settings.claim_answer_working_days)
        )
        claim = OrderClaim(
            id=uuid.uuid4(),
            order_id=order.id,
            supplier_org_id=order.supplier_org_id,
            line_no=line_no,
            kind=claim_kind,
            status=ClaimStatus.OPEN,
            reason=why,
            opened_at=now,
            opened_by=who.user_id,
            answer_due_at=due,
        )
        tx.session.add(claim)
        await credit.record(
            tx.session,
            order.supplier_org_id,
            "after_sales_claim",
            source_kind="claim",
            source_id=claim.id,
            ref=order.order_no,
            at=now,
        )
        line = f"第 {line_no} 行" if line_no is not None else "整单"
        record_event(tx.session, order, who, "claim_opened", f"{claim_kind.label}（{line}）：{why}")
    return claim


@retried
async def answer_claim(
    db: Database, who: Principal, order_id: uuid.UUID, claim_id: uuid.UUID, answer: str
) -> OrderClaim:
    """The supplier answers: what it will do (collect and refund, exchange, repair, and when), or why not."""
    text = _words(answer, "答复", "answer")
    async with changing(db, who, order_id, "supplier") as (tx, order):
        claim = await _claim(tx.session, order, claim_id)
        _in_state(claim, ClaimStatus.OPEN)
        now = clock.now()
        claim.status = ClaimStatus.ANSWERED
        claim.answer = text
        claim.answered_at = now
        claim.answered_late = now > claim.answer_due_at
        late = "（已超过答复期限）" if claim.answered_late else ""
        record_event(tx.session, order, who, "claim_answered", f"{text}{late}")
    return claim


@retried
async def close_claim(
    db: Database, who: Principal, order_id: uuid.UUID, claim_id: uuid.UUID, outcome: str, note: str
) -> OrderClaim:
    """The buyer records the outcome once the supplier answered, or once the answer's deadline passed
    without one (then only as unresolved)."""
    try:
        result = ClaimOutcome(outcome)
    except ValueError:
        raise InvalidInput(
            "请选择处理结果：已解决或未解决", code="invalid_outcome", field="outcome"
        ) from None
    words = _words(note, "结果说明", "note")
    async with changing(db, who, order_id, "buyer") as (tx, order):
        claim = await _claim(tx.session, order, claim_id)
        _in_state(claim, *UNFINISHED)
        now = clock.now()
        if claim.status == ClaimStatus.OPEN:
            if now <= claim.answer_due_at:
                raise Conflict(
                    "供应商尚未答复，答复期限未到，暂不能结束售后申请", code="claim_answer_pending"
                )
            if result != ClaimOutcome.UNRESOLVED:
                raise InvalidInput(
                    "供应商未答复的售后申请只能以“未解决”结束",
                    code="unanswered_claim_unresolved",
                    field="outcome",
                )
        claim.status = ClaimStatus.CLOSED
        claim.closed_at = now
        claim.outcome = result
        claim.outcome_note = words
        record_event(tx.session, order, who, "claim_closed", f"{result.label}：{words}")
    return claim


async def claims_of(s: AsyncSession, who: Principal, order: Order) -> list[OrderClaim]:
    """The order's claims, oldest first, for whoever may see the order."""
    if not can_see(who, order):
        raise not_found()
    rows = await s.execute(
        select(OrderClaim)
        .where(OrderClaim.order_id == order.id)
        .order_by(OrderClaim.opened_at, OrderClaim.id)
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class AfterSalesRecord:
    claims: int
    open: int
    answered_late: int
    unresolved: int


async def record_of(s: AsyncSession, supplier_org_id: uuid.UUID) -> AfterSalesRecord:
    """A supplier's after-sales record: every claim, those still open, late answers, unresolved ones."""
    row = (
        await s.execute(
            select(
                func.count(),
                func.count().filter(OrderClaim.status.in_(UNFINISHED)),
                func.count().filter(OrderClaim.answered_late.is_(True)),
                func.count().filter(OrderClaim.outcome == ClaimOutcome.UNRESOLVED),
            ).where(OrderClaim.supplier_org_id == supplier_org_id)
        )
    ).one()
    return AfterSalesRecord(*(int(x) for x in row))


def may_open(who: Principal, order: Order, claims: list[OrderClaim]) -> bool:
    """Whether the order page offers this viewer the form to open a claim."""
    return (
        who.role == "buyer"
        and who.org_id == order.buyer_org_id
        and order.status in CLAIMABLE
        and not any(c.status in UNFINISHED for c in claims)
    )


def next_step(claim: OrderClaim, now: datetime) -> NextStep:
    """Pure: who acts next on a claim. Past the answer's deadline the buyer may close it unanswered."""
    if claim.status == ClaimStatus.OPEN:
        if now > claim.answer_due_at:
            return NextStep("供应商逾期未答复", "buyer", "登记售后结果（未解决）或继续等待答复")
        return NextStep(
            "待供应商答复",
            "supplier",
            "答复售后申请：处理方式与时间，或不予处理的理由",
            claim.answer_due_at,
            "逾期答复计入供应商的售后记录",
        )
    if claim.status == ClaimStatus.ANSWERED:
        return NextStep("待采购人确认结果", "buyer", "登记售后结果：已解决或未解决")
    return NextStep("已结束", None, "")
