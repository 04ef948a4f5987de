"""Delivery and acceptance (履约): partial shipments (发货单) and receipts by quantity per order line,
and the acceptance report (验收单) that passes the order or refuses lines back to the supplier.

What is left to ship on a line is always computed from the record, never stored:

    remaining = ordered − in transit (shipped, not yet received) − kept

where `kept` is what the buyer received minus what acceptance refused. A receipt short of the
shipment puts the shortfall back into `remaining`; so does a refused line. The order's status
follows: nothing kept or in transit → contracted; everything kept → received; otherwise shipped.

Every write locks the order first (`lifecycle.changing`), then reads and writes its children.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall import notices
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx, retried
from mall.core.errors import Conflict, InvalidInput, NotFound, RuleViolation
from mall.core.money import MoneyError, money_str, quantity, quantity_str
from mall.core.settings import Settings
from mall.core.steps import end_of_day
from mall.orders import payments
from mall.orders.events import record_event, supplier_of_record
from mall.orders.lifecycle import changing
from mall.orders.models import (
    AcceptanceLine,
    AcceptanceReport,
    AcceptanceResult,
    Delivery,
    DeliveryLine,
    DeliveryStatus,
    Order,
    OrderStatus,
)
from mall.orders.queries import can_see, not_found

S = OrderStatus
ZERO = Decimal(0)
# The states in which the supplier may ship: the contract is filed and acceptance has not passed.
SHIPPABLE = (S.CONTRACTED, S.SHIPPED)

# ------------------------------------------------------------------ pure rules

CARRIER_MAX = 50
TRACKING_MIN, TRACKING_MAX = 6, 40
# A waybill number as couriers print them: letters, digits and hyphens (SF1234567890, 773012345678,
# JDVA01234567890-1-1); stored in capitals.
_TRACKING = re.compile(rf"[A-Z0-9](?:[A-Z0-9-]{{{TRACKING_MIN - 2},{TRACKING_MAX - 2}}})[A-Z0-9]")
INSPECTORS_MAX = 10
INSPECTOR_MIN, INSPECTOR_MAX = 2, 50


def carrier_name(raw: str | None) -> str:
    return fields.text(raw, "物流公司", CARRIER_MAX, field="carrier")


def tracking_number(raw: str | None) -> str:
    """A waybill number: 6–40 letters, digits or hyphens, starting and ending with a letter or digit;
    empty when the supplier delivers itself (or performs a service). Stored in capitals."""
    value = fields.text(raw, "运单号", TRACKING_MAX, field="tracking_no").upper()
    if value and not _TRACKING.fullmatch(value):
        raise InvalidInput(
            f"运单号应为 {TRACKING_MIN} 至 {TRACKING_MAX} 位字母、数字或连字符（-），以字母或数字开头和结尾",
            code="invalid_tracking_no",
            field="tracking_no",
        )
    return value


def inspector_names(raw: Sequence[str] | str) -> list[str]:
    """One to ten inspectors' names, each 2–50 characters on one line; a text is split at line
    ends and the enumeration commas (、，,；;)."""
    items = re.split(r"[\r\n、，,；;]", raw) if isinstance(raw, str) else list(raw)
    names = [fields.text(x, "验收人员姓名", INSPECTOR_MAX, field="inspectors") for x in items]
    names = [n for n in names if n]
    if not names:
        raise InvalidInput("请填写验收人员姓名（至少一人）", code="inspectors_required", field="inspectors")
    if len(names) > INSPECTORS_MAX:
        raise InvalidInput(
            f"验收人员至多 {INSPECTORS_MAX} 人", code="too_many_inspectors", field="inspectors"
        )
    for n in names:
        if len(n) < INSPECTOR_MIN:
            raise InvalidInput(
                f"验收人员姓名应为 {INSPECTOR_MIN} 至 {INSPECTOR_MAX} 个字符",
                code="invalid_inspector",
                field="inspectors",
            )
    if len(set(names)) != len(names):
        raise InvalidInput("验收人员姓名重复", code="duplicate_inspector", field="inspectors")
    return names


def quantity_of(raw: str | int | Decimal, field_name: str = "quantity") -> Decimal:
    """A positive quantity with at most three decimals (service lines may be in hours)."""
    try:
        return quantity(raw)
    except MoneyError:
        raise InvalidInput(
            "数量应为大于 0、最多三位小数的数", code="invalid_quantity", field=field_name
        ) from None


def whole_goods(order: Order, quantities: Mapping[uuid.UUID, Decimal | None] | None) -> None:
    """Goods move in whole units (台, 把, 箱); only a service line (品目 C…) may be in fractions."""
    by_id = {line.id: line for line in order.lines}
    for lid, q in (quantities or {}).items():
        line = by_id.get(lid)
        if line is None or q is None or line.category_code.startswith("C"):
            continue
        if q != q.to_integral_value():
            raise InvalidInput(
                f"「{line.item_name}」是货物，数量应为整数", code="invalid_quantity", field="lines"
            )


@dataclass
class LineState:
    """One order line's quantities: ordered, in transit, kept (received, not refused)."""

    line_no: int
    ordered: Decimal
    in_transit: Decimal = ZERO
    kept: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.ordered - self.in_transit - self.kept


@dataclass
class Progress:
    lines: dict[uuid.UUID, LineState] = field(default_factory=dict)

    @property
    def all_kept(self) -> bool:
        return all(x.kept == x.ordered for x in self.lines.values())

    @property
    def anything(self) -> bool:
        return any(x.kept > 0 or x.in_transit > 0 for x in self.lines.values())

    def status(self) -> OrderStatus:
        """The order's status before acceptance, from its quantities."""
        if self.all_kept:
            return S.RECEIVED
        return S.SHIPPED if self.anything else S.CONTRACTED


def progress_of(
    order: Order, deliveries: Sequence[Delivery], reports: Sequence[AcceptanceReport]
) -> Progress:
    """Pure: each line's quantities from the order's deliveries and refused acceptance reports."""
    p = Progress({x.id: LineState(x.line_no, x.quantity) for x in order.lines})
    for d in deliveries:
        for dl in d.lines:
            state = p.lines[dl.order_line_id]
            if d.status == DeliveryStatus.SHIPPED:
                state.in_transit += dl.quantity
            else:
                state.kept += dl.received_quantity or ZERO
    for r in reports:
        for rl in r.lines:
            p.lines[rl.order_line_id].kept -= rl.refused_quantity
    return p


def shipment_plan(p: Progress, wanted: Mapping[uuid.UUID, Decimal] | None) -> dict[uuid.UUID, Decimal]:
    """Pure: what one shipment carries by line. None: everything that remains; otherwise each
    quantity at most what remains on its line (ordered − in transit − kept)."""
    if wanted is None:
        plan = {lid: s.remaining for lid, s in p.lines.items() if s.remaining > 0}
    else:
        unknown = set(wanted) - set(p.lines)
        if unknown:
            raise InvalidInput("发货明细中含有不属于本订单的商品", code="unknown_line", field="lines")
        plan = {}
        for lid, q in wanted.items():
            s = p.lines[lid]
            if q > s.remaining:
                raise RuleViolation(
                    f"第 {s.line_no} 项发货数量 {quantity_str(q)} 超过待发数量 {quantity_str(s.remaining)}",
                    code="over_shipment",
                    field="lines",
                    line_no=s.line_no,
                )
            if q > 0:
                plan[lid] = q
    if not plan:
        raise RuleViolation("没有可发货的数量", code="nothing_to_ship")
    return plan


def receipt_plan(delivery: Delivery, wanted: Mapping[uuid.UUID, Decimal] | None) -> dict[uuid.UUID, Decimal]:
    """Pure: what the buyer received of one delivery, by order line. None: all of it; a line left
    out: nothing of it; each at most what was shipped on it."""
    shipped = {dl.order_line_id: dl for dl in delivery.lines}
    if wanted is None:
        return {lid: dl.quantity for lid, dl in shipped.items()}
    unknown = set(wanted) - set(shipped)
    if unknown:
        raise InvalidInput("收货明细中含有本批未发的商品", code="unknown_line", field="lines")
    for lid, q in wanted.items():
        if q > shipped[lid].quantity:
            raise RuleViolation(
                f"第 {shipped[lid].line_no} 项收货数量 {quantity_str(q)} 超过本批发货数量 {quantity_str(shipped[lid].quantity)}",
                code="over_receipt",
                field="lines",
                line_no=shipped[lid].line_no,
            )
    return {lid: wanted.get(lid, ZERO) for lid in shipped}


@dataclass(frozen=True)
class LineVerdict:
    """One line's result as the buyer gives it: passed, or failed with the refused quantity (None:
    all of the line) and a note (required when it fails)."""

    passed: bool
    note: str = ""
    refused: Decimal | None = None


def verdicts_for(p: Progress, given: Mapping[uuid.UUID, LineVerdict] | None) -> dict[uuid.UUID, LineVerdict]:
    """Pure: every line's verdict (None or a line left out: passed); a failing line needs a reason
    and refuses between 0 and all of what was received."""
    given = dict(given or {})
    unknown = set(given) - set(p.lines)
    if unknown:
        raise InvalidInput("验收明细中含有不属于本订单的商品", code="unknown_line", field="lines")
    out = {}
    for lid, s in p.lines.items():
        v = given.get(lid, LineVerdict(True))
        if not v.passed:
            if len(v.note) < 2:
                raise InvalidInput(
                    f"第 {s.line_no} 项验收不合格，请填写不合格原因",
                    code="refusal_reason_required",
                    field="lines",
                )
            refused = s.kept if v.refused is None else v.refused
            if refused <= 0 or refused > s.kept:
                raise RuleViolation(
                    f"第 {s.line_no} 项不合格数量应大于 0 且不超过已收货数量 {quantity_str(s.kept)}",
                    code="invalid_refused_quantity",
                    field="lines",
                    line_no=s.line_no,
                )
            v = LineVerdict(False, v.note, refused)
        out[lid] = v
    return out


def is_service(order: Order) -> bool:
    """A service order (服务类品目 start with C in the 2022 catalogue) gets a 履约验收公告."""
    return any(x.category_code.upper().startswith("C") for x in order.lines)


# ------------------------------------------------------------------ reading


async def deliveries_of(s: AsyncSession, order_id: uuid.UUID) -> list[Delivery]:
    rows = await s.execute(select(Delivery).where(Delivery.order_id == order_id).order_by(Delivery.seq))
    return list(rows.scalars())


async def reports_of(s: AsyncSession, order_id: uuid.UUID) -> list[AcceptanceReport]:
    rows = await s.execute(
        select(AcceptanceReport).where(AcceptanceReport.order_id == order_id).order_by(AcceptanceReport.seq)
    )
    return list(rows.scalars())


async def progress(s: AsyncSession, order: Order) -> Progress:
    return progress_of(order, await deliveries_of(s, order.id), await reports_of(s, order.id))


async def report_of(s: AsyncSession, who: Principal, order: Order, report_id: uuid.UUID) -> AcceptanceReport:
    if not can_see(who, order):
        raise not_found()
    report = await s.get(AcceptanceReport, report_id)
    if report is None or report.order_id != order.id:
        raise NotFound("验收单不存在", code="report_not_found")
    return report


async def _next_seq(
    s: AsyncSession, model: type[Delivery] | type[AcceptanceReport], order_id: uuid.UUID
) -> int:
    found = await s.scalar(select(func.max(model.seq)).where(model.order_id == order_id))
    return int(found or 0) + 1


def _listed(order: Order, plan: Mapping[uuid.UUID, Decimal]) -> str:
    by_id = {x.id: x for x in order.lines}
    return "，".join(
        f"{by_id[lid].item_name} {quantity_str(q)}{by_id[lid].unit}" for lid, q in plan.items() if q > 0
    )


# ------------------------------------------------------------------ shipping and receiving


@retried
async def ship(
    db: Database,
    who: Principal,
    order_id: uuid.UUID,
    note: str = "",
    *,
    carrier: str = "",
    tracking_no: str = "",
    lines: Mapping[uuid.UUID, str | Decimal] | None = None,
) -> Delivery:
    """The supplier ships part or all of what remains (`lines` None: all of it), with a logistics
    note and, when a courier carries it, the carrier and its waybill number."""
    note = fields.text(note, "物流说明", fields.SHIPPING_NOTE_MAX, field="note")
    carrier = carrier_name(carrier)
    tracking = tracking_number(tracking_no)
    if tracking and not carrier:
        raise InvalidInput("填写运单号时请同时填写物流公司", code="carrier_required", field="carrier")
    wanted = None if lines is None else {lid: quantity_of(q, "lines") for lid, q in lines.items()}
    async with changing(db, who, order_id, "supplier", *SHIPPABLE) as (tx, order):
        whole_goods(order, wanted)
        p = await progress(tx.session, order)
        plan = shipment_plan(p, wanted)
        now = clock.now()
        delivery = Delivery(
            id=uuid.uuid4(),
            order_id=order.id,
            seq=await _next_seq(tx.session, Delivery, order.id),
            status=DeliveryStatus.SHIPPED,
            carrier=carrier,
            tracking_no=tracking,
            note=note,
            shipped_at=now,
            shipped_by=who.user_id,
            lines=[
                DeliveryLine(
                    order_line_id=lid, line_no=p.lines[lid].line_no, quantity=q, received_quantity=None
                )
                for lid, q in plan.items()
            ],
        )
        tx.session.add(delivery)
        order.status = S.SHIPPED
        order.shipped_at = order.shipped_at or now
        order.shipping_note = " ".join(x for x in (carrier, tracking, note) if x)
        logistics = " ".join(x for x in (carrier, tracking) if x)
        detail = f"第 {delivery.seq} 批发货：{_listed(order, plan)}"
        if logistics:
            detail += f"；物流 {logistics}"
        if note:
            detail += f"；{note}"
        record_event(tx.session, order, who, "shipped", detail)
    return delivery


@retried
async def receive(
    db: Database,
    who: Principal,
    order_id: uuid.UUID,
    *,
    delivery_id: uuid.UUID | None = None,
    lines: Mapping[uuid.UUID, str | Decimal] | None = None,
    note: str = "",
) -> Order:
    """The buyer receives a delivery (`delivery_id` None: every delivery in transit, in full), perhaps
    short of what was shipped; the shortfall goes back to what remains to ship."""
    note = fields.text(note, "收货说明", fields.SHIPPING_NOTE_MAX, field="note")
    wanted = None if lines is None else {lid: _received_quantity(q) for lid, q in lines.items()}
    async with changing(db, who, order_id, "buyer", S.SHIPPED) as (tx, order):
        whole_goods(order, wanted)
        deliveries = await deliveries_of(tx.session, order.id)
        pending = [d for d in deliveries if d.status == DeliveryStatus.SHIPPED]
        if delivery_id is not None:
            pending = [d for d in pending if d.id == delivery_id]
            if not pending:
                if any(d.id == delivery_id for d in deliveries):
                    raise Conflict("该批货物已确认收货", code="delivery_already_received")
                raise NotFound("发货单不存在", code="delivery_not_found")
        elif wanted is not None:
            raise InvalidInput("按数量收货时请指明发货单", code="delivery_required", field="delivery_id")
        if not pending:
            raise Conflict("没有待收货的发货单", code="nothing_to_receive")
        now = clock.now()
        for d in pending:
            plan = receipt_plan(d, wanted)
            for dl in d.lines:
                dl.received_quantity = plan[dl.order_line_id]
            d.status = DeliveryStatus.RECEIVED
            d.received_at = now
            d.received_by = who.user_id
            d.receipt_note = note
            short = {
                dl.order_line_id: dl.quantity - (dl.received_quantity or ZERO)
                for dl in d.lines
                if (dl.received_quantity or ZERO) < dl.quantity
            }
            detail = f"第 {d.seq} 批收货：{_listed(order, plan) or '无'}"
            if short:
                detail += f"；短收 {_listed(order, short)}，由供应商补发"
            if note:
                detail += f"；{note}"
            record_event(tx.session, order, who, "received", detail)
        await tx.session.flush()
        p = progress_of(order, deliveries, await reports_of(tx.session, order.id))
        order.status = p.status()
        if order.status == S.RECEIVED:
            order.received_at = now
    return order


def _received_quantity(raw: str | Decimal) -> Decimal:
    """A received quantity may be 0 (nothing of that line arrived)."""
    if str(raw).strip() in ("0", "0.0", "0.00", "0.000"):
        return ZERO
    return quantity_of(raw, "lines")


# ------------------------------------------------------------------ acceptance


@retried
async def accept(
    db: Database,
    settings: Settings,
    who: Principal,
    order_id: uuid.UUID,
    *,
    inspectors: Sequence[str] | str,
    score: int | None,
    comment: str = "",
    inspected_on: str | date | None = None,
    lines: Mapping[uuid.UUID, LineVerdict] | None = None,
) -> AcceptanceReport:
    """The buyer's acceptance report on everything received. Every line passed: the order is
    accepted (and paid, if the payments already cover the contract). A line failed: the report is
    kept as refused, the refused quantities go back to the supplier to deliver again."""
    names = inspector_names(inspectors)
    comment = fields.text(comment, "验收评价", fields.NOTE_MAX, multiline=True, field="comment")
    given = {
        lid: LineVerdict(
            v.passed,
            fields.text(v.note, "验收意见", fields.REASON_MAX, multiline=True, field="lines"),
            v.refused,
        )
        for lid, v in (lines or {}).items()
    }
    day = _inspection_day(inspected_on)
    async with changing(db, who, order_id, "buyer", S.RECEIVED) as (tx, order):
        whole_goods(order, {lid: v.refused for lid, v in given.items()})
        deliveries = await deliveries_of(tx.session, order.id)
        earlier = await reports_of(tx.session, order.id)
        p = progress_of(order, deliveries, earlier)
        verdicts = verdicts_for(p, given)
        passed = all(v.passed for v in verdicts.values())
        if passed and (score is None or not fields.SCORE_MIN <= score <= fields.SCORE_MAX):
            raise InvalidInput("验收合格时请评价供应商（1至5分）", code="invalid_score", field="score")
        if score is not None and not fields.SCORE_MIN <= score <= fields.SCORE_MAX:
            raise InvalidInput("评价分数应为1至5分", code="invalid_score", field="score")
        if order.confirmed_at is not None and day < clock.local_date(order.confirmed_at):
            raise InvalidInput(
                "验收日期不能早于合同日期", code="invalid_inspection_date", field="inspected_on"
            )
        now = clock.now()
        report = AcceptanceReport(
            id=uuid.uuid4(),
            order_id=order.id,
            seq=max((r.seq for r in earlier), default=0) + 1,
            result=AcceptanceResult.PASSED if passed else AcceptanceResult.REFUSED,
            inspectors="\n".join(names),
            inspected_on=day,
            score=score,
            comment=comment,
            made_at=now,
            made_by=who.user_id,
            lines=[
                AcceptanceLine(
                    order_line_id=lid,
                    line_no=p.lines[lid].line_no,
                    quantity=p.lines[lid].kept,
                    passed=v.passed,
                    refused_quantity=ZERO if v.passed else (v.refused or ZERO),
                    note=v.note,
                )
                for lid, v in verdicts.items()
            ],
        )
        tx.session.add(report)
        who_inspected = "、".join(names)
        if passed:
            assert score is not None
            order.status = S.ACCEPTED
            order.accepted_at = now
            order.evaluation_score = score
            order.evaluation_comment = comment
            detail = f"验收合格（验收单第 {report.seq} 号，验收人员 {who_inspected}），评价 {score} 分"
            record_event(tx.session, order, who, "accepted", detail + (f"：{comment}" if comment else ""))
            if is_service(order):
                await tx.session.flush()
                await _stage_notice(tx, settings, order, report)
            await payments.settle_if_complete(tx, order)
        else:
            refused = {lid: v.refused or ZERO for lid, v in verdicts.items() if not v.passed}
            await tx.session.flush()
            order.status = progress_of(order, deliveries, [*earlier, report]).status()
            order.received_at = None
            reasons = "；".join(
                f"第 {p.lines[lid].line_no} 项：{v.note}" for lid, v in verdicts.items() if not v.passed
            )
            detail = (
                f"验收不合格（验收单第 {report.seq} 号，验收人员 {who_inspected}），退回 {_listed(order, refused)}"
                f"，由供应商重新交付。{reasons}"
            )
            record_event(tx.session, order, who, "acceptance_refused", detail)
    return report


def _inspection_day(raw: str | date | None) -> date:
    today = clock.local_date(clock.now())
    if raw is None or raw == "":
        return today
    if isinstance(raw, date):
        day = raw
    else:
        try:
            day = date.fromisoformat(fields.text(raw, "验收日期", fields.DATE_MAX, field="inspected_on"))
        except ValueError:
            raise InvalidInput(
                "验收日期应为 YYYY-MM-DD", code="invalid_inspection_date", field="inspected_on"
            ) from None
    if day > today:
        raise InvalidInput("验收日期不能晚于今天", code="invalid_inspection_date", field="inspected_on")
    return day


# The 履约验收公告 is due within this many working days of the acceptance (the same term as the
# 合同公告 after signing).
NOTICE_WORKING_DAYS = 2


async def _stage_notice(tx: Tx, settings: Settings, order: Order, report: AcceptanceReport) -> None:
    """The 履约验收公告 of a service order goes to the public list of notices, in this transaction:
    the parties as organizations, the services and the result; no inspector's name, no comment."""
    now = report.made_at
    due = end_of_day(settings.work_calendar.add_working_days(clock.local_date(now), NOTICE_WORKING_DAYS))
    body = {
        "order_no": order.order_no,
        "contract_no": order.contract_no,
        "mode": order.mode,
        "buyer": {"name": order.buyer.name, "credit_code": order.buyer.credit_code},
        "supplier": supplier_of_record(order.supplier),
        "total_amount": money_str(order.total_amount),
        "result": AcceptanceResult(report.result).label,
        "inspected_on": report.inspected_on.isoformat(),
        "score": report.score,
        "lines": [
            {
                "line_no": x.line_no,
                "item_name": x.item_name,
                "category_code": x.category_code,
                "quantity": quantity_str(x.quantity),
                "unit": x.unit,
                "amount": money_str(x.amount),
            }
            for x in order.lines
        ],
    }
    notices.stage_acceptance_notice(
        tx,
        source_key=f"acceptance:{report.id}",
        title=f"{order.buyer.name}{order.lines[0].item_name}等履约验收公告",
        region_code=order.region_code,
        order_id=order.id,
        accepted_at=now,
        due_at=due,
        body=body,
    )
