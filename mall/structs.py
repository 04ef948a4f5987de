"""Request and response shapes of the JSON API (msgspec Structs). Money travels as decimal strings."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec

from mall.budgets.models import BudgetAdjustment, BudgetLine
from mall.contracts.signing import Verification
from mall.core import fields
from mall.core.clock import rfc3339
from mall.core.fields import (
    Address,
    Amount,
    AmountText,
    BudgetScope,
    FiscalYear,
    IdempotencyKeyText,
    Name,
    Note,
    ProjectCode,
    Reason,
    Score,
    ShippingNote,
    ShortText,
)
from mall.core.models import User
from mall.core.money import money_str, quantity_str
from mall.notices.models import NOTICE_KIND_LABELS, Notice
from mall.orders.models import AcceptanceReport, Delivery, Invoice, Order, OrderClaim, OrderEvent, Payment
from mall.sme.rules import is_sme


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: fields.Username
    password: fields.Password
    name: fields.ShortText = ""
    # Required for an account with a second factor: the code its authenticator app shows now.
    totp_code: fields.TotpCode = ""


class TotpCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    """A second factor's code: confirming an enrolment, or the second step of a page login."""

    code: fields.TotpCode


class TokenOut(msgspec.Struct):
    token: str
    token_type: str
    expires_at: str
    role: str


class TokenInfo(msgspec.Struct):
    """A live token as its owner sees it: never the token itself."""

    id: uuid.UUID
    name: str
    created_at: str
    expires_at: str
    last_used_at: str | None
    current: bool  # the token this request came with


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: fields.Password
    new_password: fields.Password


class PasswordForm(PasswordChange, forbid_unknown_fields=True):
    """The account page's form: the new password typed twice."""

    new_password2: fields.Password


class LoginThrottleOut(msgspec.Struct):
    id: uuid.UUID
    kind: str  # account: one account from one address; address: one address across accounts
    username: str
    ip: str
    failures: int
    last_failure_at: str
    blocked_until: str | None
    retry_after: int  # seconds until the next attempt is allowed (0: the next failure waits)


class Me(msgspec.Struct):
    username: str
    display_name: str
    role: str
    org_name: str
    org_credit_code: str


class BudgetLineOut(msgspec.Struct):
    id: uuid.UUID
    fiscal_year: int
    project_code: str
    project_name: str
    amount: str
    reserved: str
    consumed: str
    available: str
    # the 品目 codes it may buy, separated by spaces; "" for every 品目 (added 2026-12-07)
    scope: str = ""

    @classmethod
    def of(cls, b: BudgetLine) -> BudgetLineOut:
        return cls(
            b.id,
            b.fiscal_year,
            b.project_code,
            b.project_name,
            money_str(b.amount),
            money_str(b.reserved),
            money_str(b.consumed),
            money_str(b.available),
            b.scope,
        )


class CartAdd(msgspec.Struct, forbid_unknown_fields=True):
    listing_id: uuid.UUID
    quantity: fields.QuantityOrInt = "1"
    # The price the client showed the buyer: if the listing costs more now, the item is not added.
    unit_price: Amount | None = None


class CartQuantity(msgspec.Struct, forbid_unknown_fields=True):
    quantity: fields.QuantityOrInt


class CartPriceIn(msgspec.Struct, forbid_unknown_fields=True):
    """The buyer accepts the listing's current price (refused if it is no longer that price)."""

    unit_price: Amount


class CartQuantityForm(CartQuantity, forbid_unknown_fields=True):
    """The cart page's form for one line (the API names the listing in the path)."""

    listing_id: uuid.UUID


class CartPriceForm(CartPriceIn, forbid_unknown_fields=True):
    """The cart page's form for one line (the API names the listing in the path)."""

    listing_id: uuid.UUID


class CartLineOut(msgspec.Struct):
    listing_id: uuid.UUID
    name: str
    supplier_name: str
    quantity: str
    unit_price: str  # the listing's price now
    amount: str  # quantity × the price now
    agreed_unit_price: str = ""  # the price the buyer saw or accepted; checkout charges at most this
    price_risen: bool = False  # the price now is higher: accept it before checkout


class CheckoutItem(msgspec.Struct, forbid_unknown_fields=True):
    listing_id: uuid.UUID
    quantity: fields.QuantityOrInt
    # The unit price the client agreed to. A higher price at checkout is refused (409 price_changed);
    # a lower one is charged. Without it, the price kept in the cart for this listing, if any, else
    # the price at checkout.
    unit_price: Amount | None = None


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    budget_line_id: uuid.UUID
    items: Annotated[list[CheckoutItem], msgspec.Meta(max_length=fields.ORDER_ITEMS_MAX)] = []
    delivery_address: Address = ""
    note: Note = ""


class CheckoutForm(CheckoutIn, forbid_unknown_fields=True):
    """The cart page's form: the API's fields (the cart's goods), with the key the page was drawn with."""

    checkout_key: IdempotencyKeyText = ""


class OrderLineOut(msgspec.Struct):
    id: uuid.UUID
    item_name: str
    brand: str
    spec_model: str
    category_code: str
    unit: str
    quantity: str
    listed_unit_price: str
    unit_price: str
    amount: str


class OrderOut(msgspec.Struct):
    id: uuid.UUID
    order_no: str
    mode: str
    status: str
    buyer_name: str
    supplier_name: str
    total_amount: str
    placed_at: str
    confirm_due_at: str
    contract_no: str | None
    lines: list[OrderLineOut]
    disclosure_id: uuid.UUID | None
    cancel_requested_by: str | None
    payment_overdue: bool
    # the e-contract: when each party signed it, and the SHA-256 of the PDF as it stands
    supplier_signed_at: str | None = None
    buyer_signed_at: str | None = None
    signed_at: str | None = None
    contract_sha256: str | None = None
    # the supplier's size by its 中小企业声明函 when the order was made (mall.sme): micro, small,
    # medium, sme (unsized, migrated), large, or "" (no declaration in force)
    supplier_scale: str = ""

    @classmethod
    def of(cls, o: Order) -> OrderOut:
        return cls(
            o.id,
            o.order_no,
            o.mode,
            o.status,
            o.buyer.name,
            o.supplier.name,
            money_str(o.total_amount),
            rfc3339(o.placed_at),
            rfc3339(o.confirm_due_at),
            o.contract_no,
            [
                OrderLineOut(
                    x.id,
                    x.item_name,
                    x.brand,
                    x.spec_model,
                    x.category_code,
                    x.unit,
                    quantity_str(x.quantity),
                    money_str(x.listed_unit_price),
                    money_str(x.unit_price),
                    money_str(x.amount),
                )
                for x in o.lines
            ],
            o.disclosure_id,
            o.cancel_requested_by,
            o.payment_overdue,
            rfc3339(o.supplier_signed_at) if o.supplier_signed_at else None,
            rfc3339(o.buyer_signed_at) if o.buyer_signed_at else None,
            rfc3339(o.signed_at) if o.signed_at else None,
            o.contract_sha256,
            o.supplier_scale,
        )


class SignatureOut(msgspec.Struct):
    field_name: str
    org_name: str
    credit_code: str
    signed_at: str | None
    intact: bool
    trusted: bool
    unchanged_after: bool
    valid: bool


class ContractVerificationOut(msgspec.Struct):
    """The contract PDF's signatures as checked now. `signed_by_both`: one valid signature by the
    buyer's certificate and one by the supplier's, and every signature valid."""

    order_id: uuid.UUID
    contract_no: str | None
    sha256: str | None
    signed_by_both: bool
    summary: str
    signatures: list[SignatureOut]

    @classmethod
    def of(cls, o: Order, v: Verification | None) -> ContractVerificationOut:
        sigs = [
            SignatureOut(
                x.field_name,
                x.org_name,
                x.credit_code,
                rfc3339(x.signed_at) if x.signed_at else None,
                x.intact,
                x.trusted,
                x.unchanged_after,
                x.valid,
            )
            for x in (v.signatures if v else [])
        ]
        return cls(
            o.id,
            o.contract_no,
            o.contract_sha256,
            bool(v and v.signed_by_both),
            v.summary() if v else "合同尚未签署",
            sigs,
        )


class NoticeOut(msgspec.Struct):
    """One public notice (公告). `body` holds what the notice says: for a 合同公告 the key terms, the
    signed PDF's SHA-256 and the public text of the contract (no personal data)."""

    seq: int
    kind: str
    kind_label: str
    title: str
    region_code: str
    order_id: uuid.UUID | None
    event_at: str
    due_at: str
    published_at: str
    late: bool
    corrects_seq: int | None
    body: dict[str, Any]
    pdf_url: str | None

    @classmethod
    def of(cls, n: Notice) -> NoticeOut:
        return cls(
            n.seq,
            n.kind,
            NOTICE_KIND_LABELS.get(n.kind, n.kind),
            n.title,
            n.region_code,
            n.order_id,
            rfc3339(n.event_at),
            rfc3339(n.due_at),
            rfc3339(n.published_at),
            n.late,
            n.corrects_seq,
            n.body,
            f"/notices/{n.seq}/contract.pdf" if n.kind == "contract" else None,
        )


class NoticePage(msgspec.Struct):
    total: int
    items: list[NoticeOut]
    next_before: int | None


class OrderPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[OrderOut]


class WatchedOrderOut(msgspec.Struct):
    """An order on the regulator's watch list; `days` counts from the step it waits after."""

    id: uuid.UUID
    order_no: str
    buyer: str
    supplier: str
    supplier_is_sme: bool
    total_amount: str
    accepted_at: str | None
    confirmed_at: str | None
    paid_at: str | None
    days: int | None
    payment_overdue: bool

    @classmethod
    def of(cls, o: Order, days: int | None = None) -> WatchedOrderOut:
        return cls(
            o.id,
            o.order_no,
            o.buyer.name,
            o.supplier.name,
            is_sme(o.supplier_scale),
            money_str(o.total_amount),
            rfc3339(o.accepted_at) if o.accepted_at else None,
            rfc3339(o.confirmed_at) if o.confirmed_at else None,
            rfc3339(o.paid_at) if o.paid_at else None,
            days,
            bool(o.payment_overdue),
        )


class WatchedOrderPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[WatchedOrderOut]


class CheckoutOut(msgspec.Struct):
    replayed: bool
    orders: list[OrderOut]
    warnings: list[str] = []


class ConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    # line id -> new (lower) unit price
    prices: Annotated[
        dict[uuid.UUID, AmountText], fields.AMOUNT_VALUES, msgspec.Meta(max_length=fields.ORDER_ITEMS_MAX)
    ] = {}


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class LineCorrectionIn(msgspec.Struct, forbid_unknown_fields=True):
    """One order line's corrected description; a field left out (or null) stays as it is."""

    line_no: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    item_name: Name | None = None
    brand: ShortText | None = None
    spec_model: fields.Model | None = None
    unit: fields.Unit | None = None


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True):
    """更正: what describes the goods, line by line; the reason stays on the order (not published)."""

    reason: Reason
    lines: Annotated[list[LineCorrectionIn], msgspec.Meta(min_length=1, max_length=100)]


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    agree: bool


def _line_text(max_length: int, description: str) -> msgspec.Meta:
    """One line of at most `max_length` characters; its form is the service's to check."""
    return msgspec.Meta(
        max_length=max_length,
        pattern=fields.SINGLE_LINE_PATTERN,
        description=f"{description}（单行，至多 {max_length} 个字符）",
    )


class LineQuantityIn(msgspec.Struct, forbid_unknown_fields=True):
    """A quantity of one order line (its id from the order's `lines`)."""

    line_id: uuid.UUID
    quantity: fields.QuantityText


class ShipIn(msgspec.Struct, forbid_unknown_fields=True):
    """One shipment (发货单). `lines` left out: everything that remains to ship. `carrier` and
    `tracking_no` (6–40 letters, digits or hyphens) when a courier carries it."""

    note: ShippingNote = ""
    carrier: Annotated[str, _line_text(50, "物流公司")] = ""
    tracking_no: Annotated[str, _line_text(40, "运单号：6至40位字母、数字或连字符")] = ""
    lines: Annotated[list[LineQuantityIn], msgspec.Meta(max_length=fields.ORDER_ITEMS_MAX)] | None = None


class ReceiveIn(msgspec.Struct, forbid_unknown_fields=True):
    """A receipt. `delivery_id` left out: every delivery in transit, in full; with it, `lines` the
    quantities received of that delivery (a line left out: none of it; the shortfall is shipped again)."""

    delivery_id: uuid.UUID | None = None
    lines: Annotated[list[LineQuantityIn], msgspec.Meta(max_length=fields.ORDER_ITEMS_MAX)] | None = None
    note: ShippingNote = ""


class LineResultIn(msgspec.Struct, forbid_unknown_fields=True):
    """One line's acceptance result: `passed` true (合格) or false (不合格, with a `note` and the
    `refused_quantity`, all of the line when left out)."""

    line_id: uuid.UUID
    passed: bool
    note: Reason = ""
    refused_quantity: fields.QuantityText = ""


class AcceptIn(msgspec.Struct, forbid_unknown_fields=True):
    """An acceptance report (验收单): the inspectors, each line's result (a line left out passes),
    the evaluation (required when every line passes) and the inspection date (today when left out)."""

    inspectors: Annotated[
        list[fields.ShortText],
        msgspec.Meta(
            min_length=1,
            max_length=10,
            # the items' limit, which the OpenAPI generator drops from a list (fields.py)
            extra_json_schema={
                "extra": {
                    "items": {"type": "string", "maxLength": fields.SHORT_MAX, "description": "验收人员姓名"}
                }
            },
        ),
    ]
    score: Score | None = None
    comment: Note = ""
    inspected_on: fields.DateText = ""
    lines: Annotated[list[LineResultIn], msgspec.Meta(max_length=fields.ORDER_ITEMS_MAX)] | None = None


class InvoiceIn(msgspec.Struct, forbid_unknown_fields=True):
    """An invoice: `invoice_no` a 20-digit 全电发票 number (no code), or an older invoice's 8-digit
    number with its 10- or 12-digit `invoice_code`; `issued_on` YYYY-MM-DD; `amount` in yuan."""

    invoice_no: Annotated[str, _line_text(20, "发票号码")]
    amount: AmountText
    issued_on: fields.DateText
    invoice_code: Annotated[str, _line_text(12, "发票代码（旧版发票）")] = ""


class InvoiceDecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    """The buyer confirms an invoice, or rejects it with a `reason`."""

    invoice_id: uuid.UUID
    reason: Reason = ""


class PayIn(msgspec.Struct, forbid_unknown_fields=True):
    """One payment: the 国库集中支付 voucher number (4–30 digits, capital letters or hyphens), the
    amount and the date paid (today when left out)."""

    voucher_no: Annotated[str, _line_text(30, "支付凭证号：4至30位数字、大写字母或连字符")]
    amount: AmountText
    paid_on: fields.DateText = ""


class DeliveryLineOut(msgspec.Struct):
    line_id: uuid.UUID
    line_no: int
    quantity: str
    received_quantity: str | None


class DeliveryOut(msgspec.Struct):
    id: uuid.UUID
    seq: int
    status: str
    carrier: str
    tracking_no: str
    note: str
    shipped_at: str
    received_at: str | None
    lines: list[DeliveryLineOut]

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            d.id,
            d.seq,
            d.status,
            d.carrier,
            d.tracking_no,
            d.note,
            rfc3339(d.shipped_at),
            rfc3339(d.received_at) if d.received_at else None,
            [
                DeliveryLineOut(
                    x.order_line_id,
                    x.line_no,
                    quantity_str(x.quantity),
                    quantity_str(x.received_quantity) if x.received_quantity is not None else None,
                )
                for x in d.lines
            ],
        )


class ReportLineOut(msgspec.Struct):
    line_id: uuid.UUID
    line_no: int
    quantity: str
    passed: bool
    refused_quantity: str
    note: str


class AcceptanceReportOut(msgspec.Struct):
    id: uuid.UUID
    seq: int
    result: str
    inspectors: list[str]
    inspected_on: str
    score: int | None
    comment: str
    made_at: str
    pdf_url: str
    lines: list[ReportLineOut]

    @classmethod
    def of(cls, r: AcceptanceReport) -> AcceptanceReportOut:
        return cls(
            r.id,
            r.seq,
            r.result,
            r.inspectors.split("\n"),
            r.inspected_on.isoformat(),
            r.score,
            r.comment,
            rfc3339(r.made_at),
            f"/api/orders/{r.order_id}/acceptance-reports/{r.id}/pdf",
            [
                ReportLineOut(
                    x.order_line_id,
                    x.line_no,
                    quantity_str(x.quantity),
                    x.passed,
                    quantity_str(x.refused_quantity),
                    x.note,
                )
                for x in r.lines
            ],
        )


class InvoiceOut(msgspec.Struct):
    id: uuid.UUID
    invoice_code: str
    invoice_no: str
    issued_on: str
    amount: str
    status: str
    recorded_at: str
    decided_at: str | None
    reject_reason: str

    @classmethod
    def of(cls, i: Invoice) -> InvoiceOut:
        return cls(
            i.id,
            i.invoice_code,
            i.invoice_no,
            i.issued_on.isoformat(),
            money_str(i.amount),
            i.status,
            rfc3339(i.recorded_at),
            rfc3339(i.decided_at) if i.decided_at else None,
            i.reject_reason,
        )


class PaymentOut(msgspec.Struct):
    id: uuid.UUID
    voucher_no: str
    amount: str
    paid_on: str
    recorded_at: str

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(p.id, p.voucher_no, money_str(p.amount), p.paid_on.isoformat(), rfc3339(p.recorded_at))


class LineProgressOut(msgspec.Struct):
    """One order line's quantities: ordered, in transit, kept (received and not refused), remaining."""

    line_id: uuid.UUID
    line_no: int
    ordered: str
    in_transit: str
    kept: str
    remaining: str


class FulfilmentOut(msgspec.Struct):
    """An order's deliveries, acceptance reports, invoices and payments, and the sums that bind them."""

    order_id: uuid.UUID
    status: str
    contract_amount: str
    invoiced_amount: str
    confirmed_invoice_amount: str
    paid_amount: str
    lines: list[LineProgressOut]
    deliveries: list[DeliveryOut]
    acceptance_reports: list[AcceptanceReportOut]
    invoices: list[InvoiceOut]
    payments: list[PaymentOut]


class ClaimIn(msgspec.Struct, forbid_unknown_fields=True):
    """An after-sales claim: `kind` return (退货) | exchange (换货) | repair (维修); `line_no` the order
    line it concerns (left out: the whole order)."""

    kind: fields.Choice
    reason: Reason
    line_no: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None


class ClaimAnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    answer: Reason


class ClaimCloseIn(msgspec.Struct, forbid_unknown_fields=True):
    """`outcome` resolved (已解决) | unresolved (未解决)."""

    outcome: fields.Choice
    note: Reason


class ClaimOut(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    kind: str
    status: str
    line_no: int | None
    reason: str
    opened_at: str
    answer_due_at: str
    answer: str
    answered_at: str | None
    answered_late: bool
    closed_at: str | None
    outcome: str | None
    outcome_note: str

    @classmethod
    def of(cls, c: OrderClaim) -> ClaimOut:
        return cls(
            c.id,
            c.order_id,
            c.kind,
            c.status,
            c.line_no,
            c.reason,
            rfc3339(c.opened_at),
            rfc3339(c.answer_due_at),
            c.answer,
            rfc3339(c.answered_at) if c.answered_at else None,
            c.answered_late,
            rfc3339(c.closed_at) if c.closed_at else None,
            c.outcome,
            c.outcome_note,
        )


class EventOut(msgspec.Struct):
    at: str
    actor: str
    action: str
    detail: str

    @classmethod
    def of(cls, e: OrderEvent) -> EventOut:
        return cls(rfc3339(e.at), e.actor_label, e.action, e.detail)


class OrganizationOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    name: str
    credit_code: str
    region_code: str
    address: str
    status: str
    is_sole_proprietor: bool = False  # 个体工商户


class OrganizationPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[OrganizationOut]


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: fields.Username
    display_name: fields.RequiredShortText
    password: fields.Password


class UserOut(msgspec.Struct):
    id: uuid.UUID
    username: str
    display_name: str
    org_id: uuid.UUID | None


class AdminUserOut(msgspec.Struct):
    """A platform user as the security administrator sees it: its role and second factor."""

    id: uuid.UUID
    username: str
    display_name: str
    admin_role: str | None
    totp_enabled: bool
    is_active: bool
    last_login_at: str | None


class RoleChange(msgspec.Struct, forbid_unknown_fields=True):
    """sysadmin | secadmin | auditor, or null to take the role away."""

    role: fields.Choice | None


class AnyTokenOut(msgspec.Struct):
    """A live API token as the security administrator sees it: whose, never the token itself."""

    id: uuid.UUID
    username: str
    name: str
    created_at: str
    expires_at: str
    last_used_at: str | None


class AuditActor(msgspec.Struct):
    user_id: uuid.UUID | None
    username: str
    role: str


class AuditEntryOut(msgspec.Struct):
    """One entry of the audit log, with the chain fields to check it by."""

    seq: int
    at: str
    actor: AuditActor
    ip: str
    action: str
    action_label: str
    succeeded: bool
    target_kind: str
    target: str
    detail: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


class AuditPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    online_days: int  # entries stay online at least this many days (MALL_AUDIT_ONLINE_DAYS)
    items: list[AuditEntryOut]


class AuditVerifyOut(msgspec.Struct):
    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str


class BudgetLineCreate(msgspec.Struct, forbid_unknown_fields=True):
    fiscal_year: FiscalYear
    project_code: ProjectCode
    project_name: Name
    amount: AmountText
    # 品目 codes of the catalogue, separated by spaces or commas; "" (the default) for every 品目
    scope: BudgetScope = ""


class UserStateOut(msgspec.Struct):
    id: uuid.UUID
    username: str
    is_active: bool

    @classmethod
    def of(cls, u: User) -> UserStateOut:
        return cls(u.id, u.username, u.is_active)


class PasswordResetOut(msgspec.Struct):
    username: str
    temporary_password: str  # shown this once; the user must change it at the next login


class BudgetAdjustIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: fields.Choice  # increase (追加) | decrease (调减)
    amount: AmountText
    reason: Reason


class BudgetAdjustmentOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    amount: str
    amount_before: str
    amount_after: str
    reason: str
    at: str

    @classmethod
    def of(cls, a: BudgetAdjustment) -> BudgetAdjustmentOut:
        return cls(
            a.id,
            a.kind,
            money_str(a.amount),
            money_str(a.amount_before),
            money_str(a.amount_after),
            a.reason,
            rfc3339(a.at),
        )
