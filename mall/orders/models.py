"""The order tables: orders, their lines and events, and checkouts (the idempotency record)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.budgets.models import BudgetLine
from mall.core.db import Base, IdMixin, Money, Quantity, UTCDateTime
from mall.core.encryption import EncryptedText
from mall.core.labels import Labeled
from mall.core.models import Organization


class OrderStatus(Labeled):
    PLACED = "placed", "待供应商确认"
    CONFIRMED = "confirmed", "已确认，待签订合同"
    SIGNED = "signed", "合同已签订，待备案"
    CONTRACTED = "contracted", "合同已备案，待发货"
    SHIPPED = "shipped", "已发货"
    RECEIVED = "received", "已收货，待验收"
    ACCEPTED = "accepted", "已验收，待付款"
    PAID = "paid", "已付款"
    CANCELLED = "cancelled", "已取消"


ORDER_STATUS_LABELS: dict[str, str] = OrderStatus.labels()


class Order(IdMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("checkout_id", "supplier_org_id"),
        Index("ix_orders_status_due", "status", "confirm_due_at"),
    )

    order_no: Mapped[str] = mapped_column(String(32), unique=True)
    mode: Mapped[str] = mapped_column(String(20), default="supermarket")
    status: Mapped[str] = mapped_column(String(20), index=True)
    buyer_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    buyer_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    budget_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budget_lines.id"), index=True)
    checkout_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("checkouts.id"), index=True)
    # what it was ordered under: the framework agreement (agreement) or designation (designated)
    source_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    total_amount: Mapped[Decimal] = mapped_column(Money)
    reserved_amount: Mapped[Decimal] = mapped_column(Money)
    # What people write on an order (where to deliver and to whom, notes, reasons, the evaluation)
    # may name and reach a person: encrypted at rest (docs/privacy.md), never published.
    delivery_address: Mapped[str] = mapped_column(EncryptedText, default="")
    note: Mapped[str] = mapped_column(EncryptedText, default="")
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirm_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contract_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    # The e-contract PDF in the file store as it stands (unsigned, signed by one party, by both), its
    # SHA-256, and when each party signed it (mall.contracts).
    contract_file_key: Mapped[str | None] = mapped_column(String(200))
    contract_sha256: Mapped[str | None] = mapped_column(String(64))
    # What the contract says, frozen when the first party signs (mall.contracts.pdf.ContractDoc): a
    # later correction of the published deal does not change a signed contract.
    contract_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    supplier_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    buyer_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contract_filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipping_note: Mapped[str] = mapped_column(EncryptedText, default="")
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluation_score: Mapped[int | None] = mapped_column(Integer)
    evaluation_comment: Mapped[str] = mapped_column(EncryptedText, default="")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_ref: Mapped[str] = mapped_column(String(100), default="")
    payment_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_days: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(EncryptedText, default="")
    cancel_requested_by: Mapped[str | None] = mapped_column(String(20))  # buyer | supplier
    cancel_request_reason: Mapped[str] = mapped_column(EncryptedText, default="")
    disclosure_id: Mapped[uuid.UUID | None] = mapped_column()
    # The supplier's size by its 中小企业声明函 in force when the order was made (mall.sme): micro,
    # small, medium, sme (declared before sizes were kept), large, or "" (no declaration in force).
    supplier_scale: Mapped[str] = mapped_column(String(8), default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", lazy="selectin", cascade="all, delete-orphan"
    )
    buyer: Mapped[Organization] = relationship(foreign_keys=[buyer_org_id], lazy="joined")
    supplier: Mapped[Organization] = relationship(foreign_keys=[supplier_org_id], lazy="joined")
    budget_line: Mapped[BudgetLine] = relationship(lazy="joined")


class OrderLine(IdMixin, Base):
    __tablename__ = "order_lines"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    listing_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("listings.id"))
    item_name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(100))
    # A listing's model (200), or a whole procedure requirement's specification (fields.SPEC_MAX).
    spec_model: Mapped[str] = mapped_column(String(1000))
    category_code: Mapped[str] = mapped_column(String(16))
    category_version: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    listed_unit_price: Mapped[Decimal] = mapped_column(Money)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)
    # What the listing declared when ordered (catalog.policy): certificates in force ("energy",
    # "eco", both comma-joined, or ""), and its origin ("domestic", "imported"; "" when not a listing).
    green: Mapped[str] = mapped_column(String(12), default="", server_default="")
    origin: Mapped[str] = mapped_column(String(10), default="", server_default="")

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderEvent(IdMixin, Base):
    """The order's audit trail: who did what, when."""

    __tablename__ = "order_events"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # "organization·person" and what was written (a shipping note, a reason): encrypted at rest.
    actor_label: Mapped[str] = mapped_column(EncryptedText)
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(EncryptedText, default="")


class Checkout(IdMixin, Base):
    """One checkout request; (buyer user, idempotency key) is unique, so a replay returns the same orders."""

    __tablename__ = "checkouts"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClaimKind(Labeled):
    RETURN = "return", "退货"
    EXCHANGE = "exchange", "换货"
    REPAIR = "repair", "维修"


class ClaimStatus(Labeled):
    """open → answered → closed; open → closed when the supplier let the answer's deadline pass."""

    OPEN = "open", "待供应商答复"
    ANSWERED = "answered", "供应商已答复，待采购人确认结果"
    CLOSED = "closed", "已结束"


class ClaimOutcome(Labeled):
    RESOLVED = "resolved", "已解决"
    UNRESOLVED = "unresolved", "未解决"


class OrderClaim(IdMixin, Base):
    """An after-sales claim (售后) on an accepted order: a return, an exchange or a repair."""

    __tablename__ = "order_claims"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    # The order's supplier, kept on the claim: its after-sales record is counted by supplier.
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    line_no: Mapped[int | None] = mapped_column(Integer)  # the order line it concerns; None: the whole order
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # What people write here may name and reach a person: encrypted at rest, never published.
    reason: Mapped[str] = mapped_column(EncryptedText)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    answer_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answer: Mapped[str] = mapped_column(EncryptedText, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_late: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_note: Mapped[str] = mapped_column(EncryptedText, default="")


# ------------------------------------------------------------------ deliveries and acceptance


class DeliveryStatus(Labeled):
    SHIPPED = "shipped", "已发货，待收货"
    RECEIVED = "received", "已收货"


class Delivery(IdMixin, Base):
    """A 发货单: what the supplier sent at once, by order line, and what of it the buyer received.
    Part of the order's legal record (a kept table)."""

    __tablename__ = "order_deliveries"
    __table_args__ = (UniqueConstraint("order_id", "seq"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 第 n 批, from 1 within the order
    status: Mapped[str] = mapped_column(String(20))
    carrier: Mapped[str] = mapped_column(String(50), default="")
    tracking_no: Mapped[str] = mapped_column(String(40), default="")
    # What people write on a delivery may name a person (who delivers, who signed): encrypted at rest.
    note: Mapped[str] = mapped_column(EncryptedText, default="")
    shipped_at: Mapped[datetime] = mapped_column(UTCDateTime)
    shipped_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    receipt_note: Mapped[str] = mapped_column(EncryptedText, default="")

    lines: Mapped[list[DeliveryLine]] = relationship(
        order_by="DeliveryLine.line_no", lazy="selectin", cascade="all, delete-orphan"
    )


class DeliveryLine(IdMixin, Base):
    __tablename__ = "order_delivery_lines"

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_deliveries.id"), index=True)
    order_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_lines.id"))
    line_no: Mapped[int] = mapped_column(Integer)  # the order line's number, for display
    quantity: Mapped[Decimal] = mapped_column(Quantity)  # shipped
    received_quantity: Mapped[Decimal | None] = mapped_column(Quantity)  # None until received


class AcceptanceResult(Labeled):
    PASSED = "passed", "验收合格"
    REFUSED = "refused", "验收不合格"


class AcceptanceReport(IdMixin, Base):
    """A 验收单: who inspected, each line's result, the evaluation and the date. A refused report
    stays on record beside the one that finally passes."""

    __tablename__ = "acceptance_reports"
    __table_args__ = (UniqueConstraint("order_id", "seq"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(20))
    # The inspectors' names, one a line: people's names, encrypted at rest.
    inspectors: Mapped[str] = mapped_column(EncryptedText)
    inspected_on: Mapped[date] = mapped_column(Date)
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(EncryptedText, default="")
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
    made_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))

    lines: Mapped[list[AcceptanceLine]] = relationship(
        order_by="AcceptanceLine.line_no", lazy="selectin", cascade="all, delete-orphan"
    )


class AcceptanceLine(IdMixin, Base):
    __tablename__ = "acceptance_report_lines"

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("acceptance_reports.id"), index=True)
    order_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_lines.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[Decimal] = mapped_column(Quantity)  # inspected
    passed: Mapped[bool] = mapped_column(Boolean)
    refused_quantity: Mapped[Decimal] = mapped_column(Quantity)  # back to be delivered again
    note: Mapped[str] = mapped_column(EncryptedText, default="")


# ------------------------------------------------------------------ invoices and payments


class InvoiceStatus(Labeled):
    RECORDED = "recorded", "待采购人确认"
    CONFIRMED = "confirmed", "已确认"
    REJECTED = "rejected", "已退回"


class Invoice(IdMixin, Base):
    """An invoice the supplier recorded against the contract: a 20-digit 全电发票 number (code empty),
    or an older invoice's 10- or 12-digit 发票代码 and 8-digit 发票号码."""

    __tablename__ = "order_invoices"
    # One invoice is recorded once in the whole mall unless it was rejected (the check in
    # record_invoice says so in words; this index holds under concurrent requests too).
    __table_args__ = (
        Index(
            "uq_order_invoices_live",
            "invoice_code",
            "invoice_no",
            unique=True,
            postgresql_where=text("status <> 'rejected'"),
            sqlite_where=text("status <> 'rejected'"),
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    invoice_code: Mapped[str] = mapped_column(String(12), default="")
    invoice_no: Mapped[str] = mapped_column(String(20), index=True)
    issued_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    reject_reason: Mapped[str] = mapped_column(EncryptedText, default="")


class Payment(IdMixin, Base):
    """One payment of the contract (a prepayment, an instalment, the balance), with its voucher."""

    __tablename__ = "order_payments"
    __table_args__ = (UniqueConstraint("order_id", "voucher_no"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    voucher_no: Mapped[str] = mapped_column(String(30))
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
