"""An order's named transitions after it is placed: confirm or decline, cancel (by the buyer, by
consent, by the regulator, by the clock), file the contract, correct (deliveries and acceptance are
in `fulfilment`, invoices and payments in `payments`).

Each one locks the order, checks who is acting and the state it starts from, and changes it in a
write transaction that also keeps the budget, the stock and the outbox (`changing`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import BigInteger, Table, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Listing
from mall import budgets, notices
from mall.cart import unit_price_of
from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx, retried
from mall.core.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from mall.core.fields import text
from mall.core.money import money_str, round_money
from mall.credit import record as credit
from mall.ledger import disclosure
from mall.orders.events import deal_payload, record_event, supplier_of_record
from mall.orders.models import ORDER_STATUS_LABELS, Order, OrderStatus
from mall.orders.place import new_number
from mall.orders.queries import can_see, not_found
from mall.sanctions import standing

S = OrderStatus
_LISTINGS = cast(Table, Listing.__table__)
# Once the contract is filed only the regulator can undo the deal.
FILED = (S.CONTRACTED, S.SHIPPED, S.RECEIVED, S.ACCEPTED, S.PAID)


async def load_for_change(tx: Tx, who: Principal, order_id: uuid.UUID, side: str) -> Order:
    """The order, locked for this transaction, if `who` may act on it as `side` (buyer, supplier or
    regulator); its version moves on."""
    order = (
        (
            await tx.session.execute(
                select(Order).where(Order.id == order_id).with_for_update(of=Order, key_share=True)
            )
        )
        .scalars()
        .first()
    )
    if order is None or not can_see(who, order):
        raise not_found()
    party = {"buyer": order.buyer_org_id, "supplier": order.supplier_org_id}.get(side)
    if side in ("buyer", "supplier") and (who.role != side or who.org_id != party):
        raise Forbidden(
            "只有本订单的{}可以执行此操作".format("采购人" if side == "buyer" else "供应商"),
            code="not_your_order",
        )
    if side == "regulator" and who.role != "regulator":
        raise Forbidden("只有财政监管部门可以执行此操作", code="regulator_only")
    if side == "center" and who.role != "center":
        raise Forbidden("只有集中采购机构可以执行此操作", code="center_only")
    order.version += 1
    return order


def expect(order: Order, *states: str) -> None:
    if order.status not in states:
        raise Conflict(
            f"订单当前状态为「{ORDER_STATUS_LABELS[OrderStatus(order.status)]}」，不能执行此操作",
            code="invalid_state",
            current_status=order.status,
        )


@asynccontextmanager
async def changing(
    db: Database, who: Principal, order_id: uuid.UUID, side: str, *states: str
) -> AsyncIterator[tuple[Tx, Order]]:
    """One transition's write transaction: the order loaded for `side` and, when `states` are given,
    in one of them. The caller changes it and records the event inside the block."""
    async with db.write() as tx:
        order = await load_for_change(tx, who, order_id, side)
        if states:
            expect(order, *states)
        yield tx, order


def party_side(who: Principal) -> str:
    """The side a party to the order acts as (anyone else is checked, and refused, as a buyer)."""
    return who.role if who.role in ("buyer", "supplier") else "buyer"


async def confirm(
    db: Database, who: Principal, order_id: uuid.UUID, prices: dict[uuid.UUID, str] | None = None
) -> Order:
    try:
        return await db.retrying(lambda: _confirm(db, who, order_id, prices))
    except IntegrityError:
        # a contract number clashed: new number
        return await db.retrying(lambda: _confirm(db, who, order_id, prices))


def _lowered_price(line_name: str, was: Decimal, raw: str) -> Decimal:
    try:
        p = unit_price_of(raw)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, code=exc.code, field="prices") from None
    if p > was:
        raise RuleViolation(
            f"确认时只能降价：「{line_name}」原单价 {was:,.2f} 元，不能改为 {p:,.2f} 元",
            code="price_increase_refused",
        )
    return p


async def _confirm(
    db: Database, who: Principal, order_id: uuid.UUID, prices: dict[uuid.UUID, str] | None
) -> Order:
    """The supplier accepts the order, optionally at lower unit prices (never higher). The deal is made:
    the e-contract is numbered and the transaction record is staged for publication."""
    async with changing(db, who, order_id, "supplier", S.PLACED) as (tx, order):
        now = clock.now()
        await standing.require_good_standing(tx.session, [order.supplier_org_id], "确认新订单", own=True)
        if order.confirm_due_at <= now:
            raise Conflict("订单已超过确认期限，将被自动取消", code="confirm_deadline_passed")
        prices = prices or {}
        unknown = set(prices) - {line.id for line in order.lines}
        if unknown:
            raise InvalidInput("价格调整中含有不属于本订单的明细", code="unknown_line")
        changed = []
        for line in order.lines:
            if line.id not in prices or str(prices[line.id]).strip() == "":
                continue
            p = _lowered_price(line.item_name, line.unit_price, prices[line.id])
            if p != line.unit_price:
                changed.append(f"{line.item_name} {line.unit_price:,.2f}→{p:,.2f}")
                line.unit_price = p
                line.amount = round_money(p * line.quantity)
        new_total = sum((line.amount for line in order.lines), Decimal(0))
        if new_total < order.reserved_amount:
            await budgets.shrink(
                tx.session, order.budget_line_id, order.reserved_amount - new_total, order.id
            )
            order.reserved_amount = new_total
        order.total_amount = new_total
        order.status = S.CONFIRMED
        order.confirmed_at = now
        order.contract_no = new_number("HT")
        await tx.session.flush()
        await _count_sale(tx.session, order, +1)
        order.disclosure_id = disclosure.stage(tx, deal_payload(order))
        detail = f"确认订单，成交金额 {new_total:,.2f} 元，生成电子合同 {order.contract_no}"
        if changed:
            detail += "；议价：" + "，".join(changed)
        record_event(tx.session, order, who, "confirmed", detail)
    return order


@retried
async def decline(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    reason = _reason(reason)
    async with changing(db, who, order_id, "supplier", S.PLACED) as (tx, order):
        await _cancel(tx, order, who, f"供应商拒绝接单：{reason}", publish=False)
        await _credit(tx, order, "order_declined")
    return order


@retried
async def cancel(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    """The buyer withdraws an order the supplier has not confirmed yet."""
    reason = _reason(reason)
    async with changing(db, who, order_id, "buyer") as (tx, order):
        if order.status in (S.CONFIRMED, S.SIGNED):
            raise Conflict("供应商已确认订单，取消需经对方同意，请提出取消申请", code="consent_required")
        expect(order, S.PLACED)
        await _cancel(tx, order, who, f"采购人取消订单：{reason}", publish=False)
    return order


@retried
async def request_cancel(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    reason = _reason(reason)
    async with changing(db, who, order_id, party_side(who)) as (tx, order):
        if order.status in FILED:
            raise Conflict("合同已备案，只能由财政监管部门作废", code="contract_filed")
        expect(order, S.CONFIRMED, S.SIGNED)
        if order.cancel_requested_by:
            raise Conflict("已有待处理的取消申请", code="cancel_request_pending")
        order.cancel_requested_by = who.role
        order.cancel_request_reason = reason
        record_event(tx.session, order, who, "cancel_requested", f"申请取消：{reason}")
    return order


@retried
async def answer_cancel(db: Database, who: Principal, order_id: uuid.UUID, agree: bool) -> Order:
    async with changing(db, who, order_id, party_side(who), S.CONFIRMED, S.SIGNED) as (tx, order):
        if not order.cancel_requested_by:
            raise Conflict("没有待处理的取消申请", code="no_cancel_request")
        if order.cancel_requested_by == who.role:
            raise Forbidden("取消申请须由对方处理", code="other_party_must_answer")
        if agree:
            reason = f"双方协商取消：{order.cancel_request_reason}"
            asked_by = order.cancel_requested_by
            await _cancel(tx, order, who, reason, publish=True)
            if asked_by == "supplier":
                await _credit(tx, order, "supplier_cancelled")
        else:
            record_event(tx.session, order, who, "cancel_refused", "不同意取消")
            order.cancel_requested_by = None
            order.cancel_request_reason = ""
    return order


@retried
async def void(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    """Only the regulator can void an order whose contract has been filed."""
    reason = _reason(reason)
    states = (S.CONFIRMED, S.SIGNED, S.CONTRACTED, S.SHIPPED, S.RECEIVED, S.ACCEPTED)
    async with changing(db, who, order_id, "regulator", *states) as (tx, order):
        was = order.status
        await _cancel(tx, order, who, f"财政监管部门作废合同：{reason}", publish=True)
        audit.record(
            tx,
            who,
            "order_voided",
            target_kind="order",
            target=order.order_no,
            detail=reason,
            before={"status": was},
            after={"status": order.status, "reason": reason},
        )
    return order


async def _cancel(tx: Tx, order: Order, who: Principal | None, reason: str, *, publish: bool) -> None:
    was = order.status
    order.status = S.CANCELLED
    order.cancelled_at = clock.now()
    order.cancel_reason = reason  # a fixed prefix and a reason of at most REASON_MAX: the column holds both
    if order.reserved_amount > 0:
        await budgets.release(tx.session, order.budget_line_id, order.reserved_amount, order.id)
        order.reserved_amount = Decimal(0)
    if was in (S.PLACED, S.CONFIRMED, S.SIGNED, S.CONTRACTED):
        await _return_stock(tx.session, order)  # goods that left the supplier do not come back on sale
    if was != S.PLACED:
        await _count_sale(tx.session, order, -1)  # the deal is undone
    record_event(tx.session, order, who, "cancelled", reason)
    if order.signed_at is not None:
        # Its 合同公告 was published (or is about to be): a 合同终止公告 corrects it.
        notices.stage_termination_notice(
            tx,
            order_id=order.id,
            region_code=order.region_code,
            at=order.cancelled_at,
            body={
                "contract_no": order.contract_no,
                "order_no": order.order_no,
                "mode": order.mode,
                "buyer": {"name": order.buyer.name, "credit_code": order.buyer.credit_code},
                "supplier": supplier_of_record(order.supplier),
                "total_amount": money_str(order.total_amount),
                "terminated_date": clock.local_date(order.cancelled_at).isoformat(),
                "result": "财政监管部门作废合同"
                if who is not None and who.role == "regulator"
                else "双方协商解除合同",
            },
        )
    if publish and was != S.PLACED and order.disclosure_id:
        # The deal was published (or is about to be): a cancellation record amends it, never a deletion.
        disclosure.stage(tx, deal_payload(order, kind="cancellation", amends=order.disclosure_id))


@retried
async def file_contract(db: Database, who: Principal, order_id: uuid.UUID) -> Order:
    """合同备案: the buyer files the contract both parties signed (mall.contracts.service signs it)."""
    async with changing(db, who, order_id, "buyer") as (tx, order):
        if order.status == S.CONFIRMED:
            raise Conflict("合同须由甲乙双方签署后才能备案", code="contract_not_signed")
        expect(order, S.SIGNED)
        if order.cancel_requested_by:
            raise Conflict("有待处理的取消申请，请先处理", code="cancel_request_pending")
        order.status = S.CONTRACTED
        order.contract_filed_at = clock.now()
        record_event(tx.session, order, who, "contract_filed", f"备案电子合同 {order.contract_no}")
    return order


# Shipping, receiving and acceptance are in `fulfilment`; invoices and payments in `payments`.


async def cancel_overdue(db: Database, limit: int = 200) -> int:
    """Cancel placed orders whose confirmation deadline passed, releasing their budget."""
    cancelled = 0
    async with db.read() as s:
        ids = list(
            (
                await s.execute(
                    select(Order.id)
                    .where(Order.status == S.PLACED, Order.confirm_due_at <= clock.now())
                    .limit(limit)
                )
            ).scalars()
        )
    for order_id in ids:
        async with db.write() as tx:
            order = (
                (
                    await tx.session.execute(
                        select(Order).where(Order.id == order_id).with_for_update(of=Order, key_share=True)
                    )
                )
                .scalars()
                .first()
            )
            if order is None or order.status != S.PLACED or order.confirm_due_at > clock.now():
                continue
            days = (order.confirm_due_at - order.placed_at).days
            await _cancel(tx, order, None, f"供应商超过{days}天未确认，系统自动取消", publish=False)
            await _credit(tx, order, "confirm_lapsed")
            cancelled += 1
    return cancelled


async def _credit(tx: Tx, order: Order, kind: str) -> None:
    """A credit event against the order's supplier (mall.credit), in this transaction."""
    await credit.record(
        tx.session,
        order.supplier_org_id,
        kind,
        source_kind="order",
        source_id=order.id,
        ref=order.order_no,
        at=order.cancelled_at or clock.now(),
    )


def _reason(reason: str) -> str:
    reason = text(reason, "原因", fields.REASON_MAX, multiline=True, field="reason")
    if len(reason) < 2:
        raise InvalidInput(
            f"请填写原因（2至{fields.REASON_MAX}个字符）", code="reason_required", field="reason"
        )
    return reason


async def _count_sale(s: AsyncSession, order: Order, delta: int) -> None:
    t = _LISTINGS
    for line in sorted(order.lines, key=lambda x: x.listing_id or uuid.UUID(int=0)):
        if line.listing_id:
            await s.execute(
                update(t).where(t.c.id == line.listing_id).values(sales_count=t.c.sales_count + delta)
            )


async def _return_stock(s: AsyncSession, order: Order) -> None:
    t = _LISTINGS
    for line in sorted(order.lines, key=lambda x: x.listing_id or uuid.UUID(int=0)):
        if line.listing_id:
            milli = literal(int(line.quantity * 1000), BigInteger())
            await s.execute(update(t).where(t.c.id == line.listing_id).values(stock=t.c.stock + milli))


# What a correction may change on a line, with its label and length limit: what describes the goods.
# Amounts, quantities and the parties are never corrected: a wrong deal is cancelled (and made again).
CORRECTABLE = {
    "item_name": ("品名", fields.NAME_MAX),
    "brand": ("品牌", fields.SHORT_MAX),
    "spec_model": ("规格型号", fields.MODEL_MAX),
    "unit": ("计量单位", fields.UNIT_MAX),
}
CORRECTABLE_STATES = (S.CONFIRMED, S.SIGNED, S.CONTRACTED, S.SHIPPED, S.RECEIVED, S.ACCEPTED, S.PAID)


@retried
async def correct(
    db: Database, who: Principal, order_id: uuid.UUID, changes: list[dict[str, Any]], reason: str
) -> Order:
    """更正: the buyer of a published deal, the procurement center or the regulator corrects what describes its goods —
    name, brand, 规格型号, unit. The order's lines change, and a correction record that amends the
    deal is published with the whole record as corrected and each change (from, to); the reason stays
    on the order's history (a person wrote it: it is not published)."""
    why = _reason(reason)
    side = who.role if who.role in ("center", "regulator") else "buyer"
    async with changing(db, who, order_id, side, *CORRECTABLE_STATES) as (tx, order):
        if not order.disclosure_id:
            raise Conflict("该订单没有公开的成交记录，无需更正", code="nothing_published")
        by_no = {line.line_no: line for line in order.lines}
        made: list[dict[str, Any]] = []
        for change in changes:
            line = by_no.get(int(change.get("line_no") or 0))
            if line is None:
                raise InvalidInput("更正的明细行号不存在", code="correction_invalid", field="line_no")
            for name, (label, limit) in CORRECTABLE.items():
                if name not in change or change[name] is None:
                    continue
                new = text(change[name], label, limit, min_length=0 if name == "brand" else 1, field=name)
                old = getattr(line, name)
                if new != old:
                    made.append({"line_no": line.line_no, "field": name, "from": old, "to": new})
                    setattr(line, name, new)
        if not made:
            raise InvalidInput("没有需要更正的内容：请填写与原记录不同的值", code="correction_empty")
        shown = "；".join(
            f"第{m['line_no']}项{CORRECTABLE[m['field']][0]}：{m['from']} → {m['to']}" for m in made
        )
        record_event(tx.session, order, who, "corrected", f"更正成交记录（{shown}）：{why}")
        payload = deal_payload(order, kind="correction", amends=order.disclosure_id)
        payload["corrections"] = made
        disclosure.stage(tx, payload)
        if who.role in ("center", "regulator"):  # not a party: the audit log names who changed it
            audit.record(
                tx,
                who,
                "order_corrected",
                target_kind="order",
                target=order.order_no,
                detail=f"{shown}；{why}",
            )
    return order
