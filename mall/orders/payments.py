"""Invoices and payments: the supplier records its invoices against the contract, the buyer confirms
or rejects each, and records payments (a prepayment, instalments, the balance) with their 国库集中支付
vouchers.

Rules, all checked here:
- an invoice is a 20-digit 全电发票 (数电票) number, whose first two digits are its year, or an
  older invoice's 10- or 12-digit 发票代码 with its 8-digit 发票号码; issued neither in the future nor
  before the contract; a positive amount; the invoices not rejected never total more than the
  contract; one invoice number is recorded once in the whole mall (unless it was rejected);
- a payment needs confirmed invoices: the payments never total more than the confirmed invoices,
  nor more than the contract; payments start once the contract is filed;
- each payment turns that part of the order's budget reservation into spending; the payment that
  completes the contract also releases what is left of the reservation (a lower final price);
- the order is `paid` when it is accepted and fully paid; the 30-day rule for small and medium
  suppliers is judged on that final payment, counted from the acceptance.

Every write locks the order first (`lifecycle.changing`), then its children, then the budget line.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mall import budgets
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx, retried
from mall.core.errors import Conflict, InvalidInput, NotFound, RuleViolation
from mall.core.money import MoneyError, money, typed_negative
from mall.core.settings import Settings
from mall.orders.events import record_event
from mall.orders.lifecycle import changing
from mall.orders.models import Invoice, InvoiceStatus, Order, OrderStatus, Payment
from mall.sme.rules import is_sme

S = OrderStatus
ZERO = Decimal(0)
# From the filed contract to acceptance: invoices are recorded and payments made (prepayments too).
OPEN_STATES = (S.CONTRACTED, S.SHIPPED, S.RECEIVED, S.ACCEPTED)

# ------------------------------------------------------------------ pure rules

DIGITAL_INVOICE = re.compile(r"[0-9]{20}")  # 全电发票 (数电票) 号码
INVOICE_CODE = re.compile(r"[0-9]{10}|[0-9]{12}")  # 发票代码: 10 (专用发票) or 12 (普通发票) digits
INVOICE_NO = re.compile(r"[0-9]{8}")  # 发票号码 of an older invoice
# A 国库集中支付 voucher number as payment systems print it: 4–30 digits, capital letters and
# hyphens, beginning and ending with a digit or a letter, with at least one digit.
VOUCHER = re.compile(r"[0-9A-Z][0-9A-Z-]{2,28}[0-9A-Z]")
VOUCHER_MIN, VOUCHER_MAX = 4, 30


def invoice_number(code: str | None, number: str | None, issued_on: date) -> tuple[str, str]:
    """(发票代码, 发票号码): ("", 20 digits) for a 全电发票 — its first two digits are the year it was
    issued — or (10 or 12 digits, 8 digits) for an older invoice."""
    code = fields.text(code, "发票代码", 20, field="invoice_code").replace(" ", "")
    number = fields.text(number, "发票号码", 30, field="invoice_no").replace(" ", "")
    if not code:
        if not DIGITAL_INVOICE.fullmatch(number):
            raise InvalidInput(
                "全电发票号码应为 20 位数字；旧版发票请同时填写 10 或 12 位发票代码和 8 位发票号码",
                code="invalid_invoice_no",
                field="invoice_no",
            )
        if number[:2] != f"{issued_on.year % 100:02d}":
            raise InvalidInput(
                f"全电发票号码的前两位应为开票年份（{issued_on.year % 100:02d}）",
                code="invalid_invoice_no",
                field="invoice_no",
            )
        return "", number
    if not INVOICE_CODE.fullmatch(code):
        raise InvalidInput("发票代码应为 10 或 12 位数字", code="invalid_invoice_code", field="invoice_code")
    if not INVOICE_NO.fullmatch(number):
        raise InvalidInput("发票号码应为 8 位数字", code="invalid_invoice_no", field="invoice_no")
    return code, number


def voucher_number(raw: str | None) -> str:
    """A payment voucher's number, in capitals: see VOUCHER."""
    value = fields.text(raw, "支付凭证号", fields.SHORT_MAX, field="voucher_no").upper()
    if not VOUCHER.fullmatch(value) or not any(c.isdigit() for c in value):
        raise InvalidInput(
            f"支付凭证号应为 {VOUCHER_MIN} 至 {VOUCHER_MAX} 位数字、大写字母或连字符（-），含数字，以字母或数字开头和结尾",
            code="invalid_voucher_no",
            field="voucher_no",
        )
    return value


def amount_of(raw: str | Decimal, field: str = "amount") -> Decimal:
    """A positive amount in yuan with at most two decimals."""
    text = str(raw).strip()
    try:
        value = money(text)
    except MoneyError:
        message = "金额必须大于 0" if typed_negative(text) else "金额应为最多两位小数的数，如 4599.00"
        raise InvalidInput(message, code="invalid_amount", field=field) from None
    if value <= 0:
        raise InvalidInput("金额必须大于 0", code="invalid_amount", field=field)
    return value


def day_of(raw: str | date | None, label: str, field: str) -> date:
    """A date as typed (YYYY-MM-DD), or today (China time) when left out; never in the future."""
    today = clock.local_date(clock.now())
    if raw is None or raw == "":
        return today
    if isinstance(raw, date):
        day = raw
    else:
        try:
            day = date.fromisoformat(fields.text(raw, label, fields.DATE_MAX, field=field))
        except ValueError:
            raise InvalidInput(f"{label}应为 YYYY-MM-DD", code=f"invalid_{field}", field=field) from None
    if day > today:
        raise InvalidInput(f"{label}不能晚于今天", code=f"invalid_{field}", field=field)
    return day


def contract_day(order: Order) -> date | None:
    """The contract's date: the day the deal was made and the e-contract numbered."""
    return clock.local_date(order.confirmed_at) if order.confirmed_at else None


def totals(invoices: Sequence[Invoice], paid: Sequence[Payment]) -> tuple[Decimal, Decimal, Decimal]:
    """(invoiced but not rejected, confirmed, paid)."""
    live = sum((i.amount for i in invoices if i.status != InvoiceStatus.REJECTED), ZERO)
    confirmed = sum((i.amount for i in invoices if i.status == InvoiceStatus.CONFIRMED), ZERO)
    return live, confirmed, sum((p.amount for p in paid), ZERO)


def payment_room(contract: Decimal, confirmed: Decimal, paid: Decimal) -> Decimal:
    """Pure: the most the next payment may be: within the confirmed invoices and the contract."""
    return max(ZERO, min(confirmed, contract) - paid)


# ------------------------------------------------------------------ reading


async def invoices_of(s: AsyncSession, order_id: uuid.UUID) -> list[Invoice]:
    rows = await s.execute(
        select(Invoice).where(Invoice.order_id == order_id).order_by(Invoice.recorded_at, Invoice.id)
    )
    return list(rows.scalars())


async def payments_of(s: AsyncSession, order_id: uuid.UUID) -> list[Payment]:
    rows = await s.execute(
        select(Payment).where(Payment.order_id == order_id).order_by(Payment.recorded_at, Payment.id)
    )
    return list(rows.scalars())


async def paid_total(s: AsyncSession, order_id: uuid.UUID) -> Decimal:
    return sum((p.amount for p in await payments_of(s, order_id)), ZERO)


# ------------------------------------------------------------------ invoices


@retried
async def record_invoice(
    db: Database,
    who: Principal,
    order_id: uuid.UUID,
    *,
    invoice_no: str,
    amount: str | Decimal,
    issued_on: str | date | None,
    invoice_code: str = "",
) -> Invoice:
    """The supplier records an invoice it issued for the contract; the buyer confirms it."""
    day = day_of(issued_on, "开票日期", "issued_on")
    code, number = invoice_number(invoice_code, invoice_no, day)
    value = amount_of(amount)
    async with changing(db, who, order_id, "supplier", *OPEN_STATES) as (tx, order):
        start = contract_day(order)
        if start is not None and day < start:
            raise InvalidInput(
                f"开票日期不能早于合同日期（{start.isoformat()}）",
                code="invalid_issued_on",
                field="issued_on",
            )
        invoices = await invoices_of(tx.session, order.id)
        live, _, _ = totals(invoices, [])
        if live + value > order.total_amount:
            raise RuleViolation(
                f"发票金额合计 {live + value:,.2f} 元将超过合同金额 {order.total_amount:,.2f} 元",
                code="invoices_exceed_contract",
                field="amount",
            )
        taken = await tx.session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(
                Invoice.invoice_no == number,
                Invoice.invoice_code == code,
                Invoice.status != InvoiceStatus.REJECTED,
            )
        )
        if taken:
            raise Conflict("该发票已登记过", code="invoice_duplicate")
        invoice = Invoice(
            id=uuid.uuid4(),
            order_id=order.id,
            invoice_code=code,
            invoice_no=number,
            issued_on=day,
            amount=value,
            status=InvoiceStatus.RECORDED,
            recorded_at=clock.now(),
            recorded_by=who.user_id,
        )
        tx.session.add(invoice)
        try:
            await tx.session.flush()
        except IntegrityError:  # recorded meanwhile by another request, on this order or another
            raise Conflict("该发票已登记过", code="invoice_duplicate") from None
        shown = f"发票代码 {code} 号码 {number}" if code else f"全电发票 {number}"
        record_event(
            tx.session, order, who, "invoice_recorded", f"登记{shown}，金额 {value:,.2f} 元，开票日期 {day}"
        )
    return invoice


async def _invoice(s: AsyncSession, order: Order, invoice_id: uuid.UUID) -> Invoice:
    invoice = await s.get(Invoice, invoice_id)
    if invoice is None or invoice.order_id != order.id:
        raise NotFound("发票不存在", code="invoice_not_found")
    if invoice.status != InvoiceStatus.RECORDED:
        raise Conflict(
            f"发票当前状态为「{InvoiceStatus(invoice.status).label}」，不能再确认或退回",
            code="invoice_decided",
            current_status=invoice.status,
        )
    return invoice


@retried
async def confirm_invoice(
    db: Database, who: Principal, order_id: uuid.UUID, invoice_id: uuid.UUID
) -> Invoice:
    async with changing(db, who, order_id, "buyer", *OPEN_STATES) as (tx, order):
        invoice = await _invoice(tx.session, order, invoice_id)
        invoice.status = InvoiceStatus.CONFIRMED
        invoice.decided_at = clock.now()
        invoice.decided_by = who.user_id
        record_event(
            tx.session,
            order,
            who,
            "invoice_confirmed",
            f"确认发票 {invoice.invoice_no}，金额 {invoice.amount:,.2f} 元",
        )
    return invoice


@retried
async def reject_invoice(
    db: Database, who: Principal, order_id: uuid.UUID, invoice_id: uuid.UUID, reason: str
) -> Invoice:
    why = fields.text(reason, "退回原因", fields.REASON_MAX, multiline=True, field="reason")
    if len(why) < 2:
        raise InvalidInput(
            f"请填写退回原因（2至{fields.REASON_MAX}个字符）", code="reason_required", field="reason"
        )
    async with changing(db, who, order_id, "buyer", *OPEN_STATES) as (tx, order):
        invoice = await _invoice(tx.session, order, invoice_id)
        invoice.status = InvoiceStatus.REJECTED
        invoice.decided_at = clock.now()
        invoice.decided_by = who.user_id
        invoice.reject_reason = why
        record_event(tx.session, order, who, "invoice_rejected", f"退回发票 {invoice.invoice_no}：{why}")
    return invoice


# ------------------------------------------------------------------ payments


@retried
async def pay(
    db: Database,
    settings: Settings,
    who: Principal,
    order_id: uuid.UUID,
    *,
    voucher_no: str,
    amount: str | Decimal,
    paid_on: str | date | None = None,
) -> Payment:
    """The buyer records one payment. Within the confirmed invoices and the contract; it spends that
    part of the reservation. Accepted and fully paid: the order is paid."""
    voucher = voucher_number(voucher_no)
    value = amount_of(amount)
    day = day_of(paid_on, "付款日期", "paid_on")
    async with changing(db, who, order_id, "buyer", *OPEN_STATES) as (tx, order):
        start = contract_day(order)
        if start is not None and day < start:
            raise InvalidInput(
                f"付款日期不能早于合同日期（{start.isoformat()}）", code="invalid_paid_on", field="paid_on"
            )
        invoices = await invoices_of(tx.session, order.id)
        made = await payments_of(tx.session, order.id)
        _, confirmed, paid = totals(invoices, made)
        if any(p.voucher_no == voucher for p in made):
            raise Conflict("该支付凭证已登记过", code="voucher_duplicate")
        if paid + value > order.total_amount:
            raise RuleViolation(
                f"付款合计 {paid + value:,.2f} 元将超过合同金额 {order.total_amount:,.2f} 元",
                code="payment_exceeds_contract",
                field="amount",
            )
        if paid + value > confirmed:
            raise RuleViolation(
                f"付款须有已确认的发票：已确认发票 {confirmed:,.2f} 元，已付 {paid:,.2f} 元，"
                f"本次最多可付 {payment_room(order.total_amount, confirmed, paid):,.2f} 元",
                code="invoice_required",
                field="amount",
            )
        final = paid + value == order.total_amount
        # The last payment also releases what is left of the reservation (a lower price than reserved).
        reserved = order.reserved_amount if final else value
        await budgets.consume(tx.session, order.budget_line_id, reserved, value, order.id)
        order.reserved_amount -= reserved
        payment = Payment(
            id=uuid.uuid4(),
            order_id=order.id,
            voucher_no=voucher,
            amount=value,
            paid_on=day,
            recorded_at=clock.now(),
            recorded_by=who.user_id,
        )
        tx.session.add(payment)
        kind = "尾款" if final else ("预付款" if not made and order.status != S.ACCEPTED else "分期付款")
        if final and not made:
            kind = "全额付款"
        detail = (
            f"付款 {value:,.2f} 元（{kind}），凭证 {voucher}，付款日期 {day}；"
            f"累计已付 {paid + value:,.2f} 元 / 合同金额 {order.total_amount:,.2f} 元"
        )
        record_event(tx.session, order, who, "paid", detail)
        order.payment_ref = voucher
        if final and order.status == S.ACCEPTED:
            _settle(order, settings)
    return payment


def _settle(order: Order, settings: Settings | None) -> None:
    """The order is accepted and fully paid. The 30-day rule protects small and medium suppliers
    (保障中小企业款项支付条例), judged on the payment that completes the contract after acceptance."""
    at = clock.now()
    assert order.accepted_at is not None
    order.status = S.PAID
    order.paid_at = at
    order.payment_days = max(0, (at - order.accepted_at).days)
    order.payment_overdue = bool(
        settings is not None
        and is_sme(order.supplier_scale)
        and order.payment_days > settings.payment_due_days
    )


async def settle_if_complete(tx: Tx, order: Order) -> None:
    """At acceptance: a contract paid in full beforehand is paid now (on time: nothing was due)."""
    if order.total_amount > 0 and await paid_total(tx.session, order.id) == order.total_amount:
        _settle(order, None)
