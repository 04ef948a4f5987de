"""After the deadline: the awarded supplier confirms (an order is made and the deal published) or
declines, or lets the confirmation window lapse, and the award passes to the next in rank; the buyer
may find a quote non-compliant before the award is confirmed."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

import msgspec
from sqlalchemy import select

from bidding import rules
from bidding.close import award_to, close, fail, outcome, ranked_quotes, rejected_quotes, settle
from bidding.models import (
    KIND_LABELS,
    Offer,
    OfferStatus,
    Procedure,
    ProcedureItem,
    ProcedureKind,
    ProcedureStatus,
)
from bidding.service import lock
from bidding.views import inquiry_labels, items_of
from catalog.categories import CATALOG_VERSION
from mall import budgets, orders
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import Conflict, InvalidInput, NotFound
from mall.core.money import MoneyError, money, round_money
from mall.credit import record as credit
from mall.ledger import disclosure
from mall.orders.models import Order
from mall.sanctions import standing

LineNo = Annotated[str, msgspec.Meta(max_length=3, description="明细序号")]


class ConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    # line_no -> unit price, for procedures with several items
    unit_prices: Annotated[dict[LineNo, fields.Amount], fields.AMOUNT_VALUES] = {}


def _unit_prices(terms: ConfirmIn | None) -> dict[int, str]:
    if terms is None:
        return {}
    try:
        return {int(k): v for k, v in terms.unit_prices.items()}
    except ValueError:
        raise InvalidInput("unit_prices 的键应为明细序号", code="invalid_parameter") from None


@retried
async def confirm_award(
    db: Database, who: Principal, procedure_id: uuid.UUID, terms: ConfirmIn | None = None
) -> Order:
    """The awarded supplier confirms: the deal is made. An order (mode inquiry / auction) is created
    already confirmed — it then runs the supermarket's fulfilment flow — the reservation shrinks from
    the ceiling to the price, and the deal record is published with every valid quote.
    For several items the supplier splits its total into unit prices (分项报价) that add up exactly."""
    unit_prices = _unit_prices(terms)
    async with db.write() as tx:
        s = tx.session
        p = await lock(tx, procedure_id, who)
        if p.status != ProcedureStatus.AWARDED or p.awarded_supplier_id != who.org_id:
            raise Conflict("贵单位没有待确认的成交", code="no_award")
        now = clock.now()
        assert p.confirm_due_at is not None and p.awarded_amount is not None
        if now >= p.confirm_due_at:
            raise Conflict("已超过成交确认期限，成交资格已顺延", code="award_lapsed")
        assert who.org_id is not None
        await standing.require_good_standing(s, [who.org_id], "确认成交", own=True)
        items = await items_of(s, p.id)
        total = p.awarded_amount
        prices = _split(items, total, unit_prices)
        assert who.org_id is not None
        order = await orders.open_confirmed_order(
            s,
            mode=p.kind,
            number_prefix=ORDER_PREFIX.get(p.kind, p.kind),
            buyer_org_id=p.buyer_org_id,
            buyer_user_id=p.buyer_user_id,
            supplier_id=who.org_id,
            budget_line_id=p.budget_line_id,
            idempotency_key=f"procedure:{p.number}",
            region_code=p.region_code,
            total=total,
            note=f"{KIND_LABELS[p.kind]} {p.number}",
            drafts=[
                orders.LineDraft(
                    item_name=item.item_name,
                    brand="",
                    spec_model=item.spec,  # the whole specification (order_lines.spec_model holds SPEC_MAX)
                    category_code=item.category_code,
                    category_version=CATALOG_VERSION,
                    unit=item.unit,
                    quantity=item.quantity,
                    listed_unit_price=price,
                    unit_price=price,
                    line_no=item.line_no,
                )
                for item, price in zip(items, prices, strict=True)
            ],
            at=now,
            source_id=p.agreement_id,  # a second-stage competition's deal counts under its agreement
        )
        # the reservation moves from the procedure to the order: what is above the price is released
        if p.reserved_amount > total:
            await budgets.release(s, p.budget_line_id, p.reserved_amount - total, None, procedure_id=p.id)
        p.reserved_amount = Decimal(0)
        p.status, p.order_id = ProcedureStatus.CONFIRMED, order.id
        await s.flush()
        loaded = (
            await s.execute(
                select(Order).where(Order.id == order.id).execution_options(populate_existing=True)
            )
        ).scalar_one()
        payload = orders.deal_payload(loaded)
        payload["quotes"] = await ranked_quotes(tx, p)
        if p.kind == ProcedureKind.INQUIRY:
            payload["rejected_quotes"] = await rejected_quotes(tx, p)
        loaded.disclosure_id = disclosure.stage(tx, payload)
        orders.record_event(
            s,
            loaded,
            who,
            "confirmed",
            f"{KIND_LABELS[p.kind]} {p.number} 成交确认，成交金额 {total:,.2f} 元，生成电子合同 {order.contract_no}",
        )
    return loaded


@retried
async def reject_quote(
    db: Database, who: Principal, procedure_id: uuid.UUID, label_no: int, reason: str
) -> Procedure:
    """After opening, the buyer rejects a non-compliant quote with a written reason (kept, and
    disclosed with the result). While the award is not yet confirmed the ranking is recomputed
    without it: the award may pass to the next, or the inquiry fail for too few valid quotes."""
    reason = fields.text(reason, "原因", fields.REASON_MAX, multiline=True, field="reason")
    if len(reason) < 4:
        raise InvalidInput(
            f"请写明不符合要求的原因（4至{fields.REASON_MAX}个字符）", code="reason_required", field="reason"
        )
    async with db.write() as tx:
        s = tx.session
        p = await lock(tx, procedure_id)
        if p.buyer_org_id != who.org_id:
            raise NotFound("采购项目不存在", code="procedure_not_found")
        if p.kind != ProcedureKind.INQUIRY or p.status != ProcedureStatus.AWARDED:
            raise Conflict("只能在询价开启后、成交确认前认定报价无效", code="cannot_reject_now")
        offers = list((await s.execute(select(Offer).where(Offer.procedure_id == p.id))).scalars())
        supplier = next((k for k, n in inquiry_labels(offers).items() if n == label_no), None)
        if supplier is None:
            raise NotFound("没有这个报价供应商", code="quote_not_found")
        latest = await s.scalar(
            select(Offer)
            .where(Offer.procedure_id == p.id, Offer.supplier_org_id == supplier, Offer.seq.is_not(None))
            .order_by(Offer.seq.desc())
            .limit(1)
        )
        if latest is None or latest.status != OfferStatus.ACCEPTED or latest.rejected:
            raise Conflict("该供应商没有有效报价", code="quote_not_valid")
        latest.rejected, latest.reason = True, reason
        await s.flush()
        await settle(tx, p, clock.now())
    return p


# the numbers of the orders awards make
ORDER_PREFIX: dict[str, str] = {ProcedureKind.INQUIRY: "XJD", ProcedureKind.AUCTION: "JJD"}


def _split(items: list[ProcedureItem], total: Decimal, unit_prices: dict[int, str]) -> list[Decimal]:
    """Unit prices per item whose line amounts add up to the total exactly."""
    if len(items) == 1 and not unit_prices:
        item = items[0]
        price = round_money(total / item.quantity)
        if round_money(price * item.quantity) != total:
            raise InvalidInput(
                f"成交总价 {total:,.2f} 元不能被数量 {item.quantity:g} 整除到分，请填写单价使金额合计等于成交总价",
                code="split_required",
            )
        return [price]
    prices = []
    for item in items:
        raw = unit_prices.get(item.line_no)
        if raw is None:
            raise InvalidInput(f"请填写第{item.line_no}项「{item.item_name}」的单价", code="split_required")
        try:
            prices.append(money(raw))
        except MoneyError:
            raise InvalidInput(f"第{item.line_no}项单价格式不正确", code="split_invalid") from None
    amount = sum((round_money(pr * i.quantity) for pr, i in zip(prices, items, strict=True)), Decimal(0))
    if amount != total:
        raise InvalidInput(
            f"分项金额合计 {amount:,.2f} 元应等于成交总价 {total:,.2f} 元", code="split_mismatch"
        )
    return prices


@retried
async def decline_award(
    db: Database, who: Principal | None, procedure_id: uuid.UUID, *, lapsed: bool = False
) -> Procedure:
    """The awarded supplier declines (or its confirmation window lapsed): the award passes to the next
    in rank; with nobody left the procedure fails (budget released, failure notice published)."""
    async with db.write() as tx:
        p = await lock(tx, procedure_id, who)
        if p.status != ProcedureStatus.AWARDED:
            if lapsed:
                return p  # already confirmed, passed on or failed: the lapse job has nothing to do
            raise Conflict("该项目没有待确认的成交", code="no_award")
        now = clock.now()
        assert p.confirm_due_at is not None
        if lapsed:
            if now < p.confirm_due_at:
                return p
        elif who is None or p.awarded_supplier_id != who.org_id:
            raise Conflict("贵单位没有待确认的成交", code="no_award")
        assert p.awarded_supplier_id is not None
        await credit.record(
            tx.session,
            p.awarded_supplier_id,
            "award_lapsed" if lapsed else "award_declined",
            source_kind="procedure",
            source_id=p.id,
            ref=p.number,
            at=now,
        )
        p.passed_over = [*p.passed_over, str(p.awarded_supplier_id)]
        result = await outcome(tx, p)
        nxt = rules.pass_on(result.ranked, set(p.passed_over))
        if nxt is None:
            await fail(tx, p, "排名在前的供应商均放弃或未在期限内确认成交，项目失败")
        else:
            award_to(tx, p, uuid.UUID(nxt.supplier), nxt.amount, now)
    return p


async def close_due(db: Database, limit: int = 50, *, pause: float = 0.0) -> list[uuid.UUID]:
    """The safety net of both deadlines (a lost or failed job): close every procedure whose end has
    passed, and pass on every award whose confirmation window lapsed."""
    now = clock.now()
    async with db.read() as s:
        due = list(
            (
                await s.execute(
                    select(Procedure.id)
                    .where(
                        Procedure.status.in_((ProcedureStatus.PUBLISHED, ProcedureStatus.OPEN)),
                        Procedure.ends_at <= now,
                    )
                    .order_by(Procedure.ends_at)
                    .limit(limit)
                )
            ).scalars()
        )
    for procedure_id in due:
        await close(db, procedure_id, pause=pause)
    async with db.read() as s:
        lapsed = list(
            (
                await s.execute(
                    select(Procedure.id)
                    .where(Procedure.status == ProcedureStatus.AWARDED, Procedure.confirm_due_at <= now)
                    .limit(limit)
                )
            ).scalars()
        )
    for procedure_id in lapsed:
        await decline_award(db, None, procedure_id, lapsed=True)
    return due + lapsed
