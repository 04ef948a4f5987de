"""The mall's tables: organizations and users, budgets, carts, orders, the outbox and the ledger."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.core.db import Base, IdMixin, Money, Quantity, UTCDateTime, new_id


class OrgKind(enum.StrEnum):
    BUDGET_UNIT = "budget_unit"
    SUPPLIER = "supplier"
    CENTER = "center"
    REGULATOR = "regulator"
    PLATFORM = "platform"


ORG_KIND_LABELS = {
    OrgKind.BUDGET_UNIT: "预算单位",
    OrgKind.SUPPLIER: "供应商",
    OrgKind.CENTER: "集中采购机构",
    OrgKind.REGULATOR: "财政监管部门",
    OrgKind.PLATFORM: "平台运营方",
}


class OrgStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class PushStatus(enum.StrEnum):
    """active ⇄ paused (by its owner, or after failures); deleted is final."""

    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


class JobStatus(enum.StrEnum):
    """An export or an import: queued → running → done | failed; a done export's file expires."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


class Organization(IdMixin, Base):
    __tablename__ = "organizations"

    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    region_code: Mapped[str] = mapped_column(String(6))
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    is_sme: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20), default=OrgStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(IdMixin, Base):
    __tablename__ = "users"

    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on password change or forced logout: invalidates every session cookie at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    org: Mapped[Organization | None] = relationship(lazy="joined")


class ApiToken(IdMixin, Base):
    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written at most every few minutes per token (see auth.LAST_USE_EVERY), not on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(IdMixin, Base):
    """Failed logins still remembered: per (account, client address) with kind "account", or per
    client address across all accounts with kind "address" (username empty)."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("kind", "username", "ip"),)

    kind: Mapped[str] = mapped_column(String(10))  # account | address
    username: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # For an address: when its counting window began.
    first_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BudgetLine(IdMixin, Base):
    """An approved budget of a budget unit. available = amount - reserved - consumed, never below 0."""

    __tablename__ = "budget_lines"
    __table_args__ = (
        UniqueConstraint("org_id", "fiscal_year", "project_code"),
        CheckConstraint("reserved >= 0 AND consumed >= 0 AND reserved + consumed <= amount", name="within"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    fiscal_year: Mapped[int] = mapped_column(Integer)
    project_code: Mapped[str] = mapped_column(String(40))
    project_name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money)
    reserved: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    consumed: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def available(self) -> Decimal:
        return self.amount - self.reserved - self.consumed


class BudgetMovement(IdMixin, Base):
    """The audit trail of a budget line: every reserve, release and consume."""

    __tablename__ = "budget_movements"

    budget_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budget_lines.id"), index=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # an inquiry's or auction's reservation (bidding.models.Procedure), before any order exists
    procedure_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(10))  # reserve | release | consume
    amount: Mapped[Decimal] = mapped_column(Money)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class CartItem(IdMixin, Base):
    __tablename__ = "cart_items"
    __table_args__ = (UniqueConstraint("user_id", "listing_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    # The unit price the buyer saw when it put the item in the cart (or accepted since): a higher
    # price at checkout needs the buyer's consent.
    unit_price: Mapped[Decimal] = mapped_column(Money)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    CONFIRMED = "confirmed"
    CONTRACTED = "contracted"
    SHIPPED = "shipped"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    PAID = "paid"
    CANCELLED = "cancelled"


ORDER_STATUS_LABELS = {
    OrderStatus.PLACED: "待供应商确认",
    OrderStatus.CONFIRMED: "已确认，待签订合同",
    OrderStatus.CONTRACTED: "合同已备案，待发货",
    OrderStatus.SHIPPED: "已发货",
    OrderStatus.RECEIVED: "已收货，待验收",
    OrderStatus.ACCEPTED: "已验收，待付款",
    OrderStatus.PAID: "已付款",
    OrderStatus.CANCELLED: "已取消",
}


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
    delivery_address: Mapped[str] = mapped_column(String(300), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirm_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contract_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    contract_filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipping_note: Mapped[str] = mapped_column(String(300), default="")
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluation_score: Mapped[int | None] = mapped_column(Integer)
    evaluation_comment: Mapped[str] = mapped_column(String(500), default="")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_ref: Mapped[str] = mapped_column(String(100), default="")
    payment_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_days: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    cancel_requested_by: Mapped[str | None] = mapped_column(String(20))  # buyer | supplier
    cancel_request_reason: Mapped[str] = mapped_column(String(500), default="")
    disclosure_id: Mapped[uuid.UUID | None] = mapped_column()
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

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderEvent(IdMixin, Base):
    """The order's audit trail: who did what, when."""

    __tablename__ = "order_events"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")


class Checkout(IdMixin, Base):
    """One checkout request; (buyer user, idempotency key) is unique, so a replay returns the same orders."""

    __tablename__ = "checkouts"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Outbox(Base):
    """Work that must happen after a commit; written in the same transaction as the business rows."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    topic: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")


class LedgerHead(Base):
    """One row: the last published sequence number and hash. Locked by the publisher."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class DisclosureRecord(Base):
    """The append-only disclosure ledger. `body` is the canonical JSON, hash included, as served."""

    __tablename__ = "disclosure_records"
    __table_args__ = (
        Index("ix_disclosure_buyer", "buyer_credit_code", "seq"),
        Index("ix_disclosure_supplier", "supplier_credit_code", "seq"),
        Index("ix_disclosure_mode", "mode", "seq"),
        Index("ix_disclosure_date", "deal_date", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[uuid.UUID] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    amends: Mapped[uuid.UUID | None] = mapped_column()
    mode: Mapped[str] = mapped_column(String(12))
    order_no: Mapped[str] = mapped_column(String(40), index=True)
    deal_date: Mapped[str] = mapped_column(String(10))
    buyer_name: Mapped[str] = mapped_column(String(200))
    buyer_credit_code: Mapped[str] = mapped_column(String(18))
    supplier_name: Mapped[str | None] = mapped_column(String(200))
    supplier_credit_code: Mapped[str | None] = mapped_column(String(18))
    total_amount: Mapped[Decimal | None] = mapped_column(Money)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_id: Mapped[uuid.UUID] = mapped_column(unique=True)  # the outbox row it came from
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)


class AuditEntry(IdMixin, Base):
    """Security-relevant actions: logins, failed logins, token issue, listing and account changes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_target", "action", "target", "at"),)

    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")


class PushSubscription(IdMixin, Base):
    """A receiver (a procurement center, the national platform) that gets every new ledger record POSTed
    to it, in ledger order. `cursor` is the last seq it acknowledged with a 2xx (or skipped by its filter)."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (Index("ix_push_subscriptions_status_next", "status", "next_attempt_at"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by: Mapped[uuid.UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    # Kept in clear: the deliverer must sign with it. Only shown in full when created or rotated.
    secret: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str | None] = mapped_column(String(12))  # None: every record
    status: Mapped[str] = mapped_column(String(10), default=PushStatus.ACTIVE)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the last attempt failed: one of mall.ledger.push.ERROR_KINDS and the HTTP status, never the
    # receiver's answer. Empty after a success.
    last_error_kind: Mapped[str] = mapped_column(String(20), default="")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushDelivery(IdMixin, Base):
    """One POST attempt of one record to one subscription (the delivery log)."""

    __tablename__ = "push_deliveries"
    __table_args__ = (Index("ix_push_deliveries_subscription", "subscription_id", "started_at"),)

    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("push_subscriptions.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[uuid.UUID] = mapped_column()
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    error_kind: Mapped[str] = mapped_column(
        String(20), default=""
    )  # "" or one of mall.ledger.push.ERROR_KINDS
    duration_ms: Mapped[int] = mapped_column(Integer)


class ExportJob(IdMixin, Base):
    """A ledger export run by a job (large XLSX files): its filters, progress and the file it wrote."""

    __tablename__ = "export_jobs"
    __table_args__ = (Index("ix_export_jobs_org_created", "org_id", "created_at"),)

    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    format: Mapped[str] = mapped_column(String(8))  # csv | xlsx | ocds
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the query parameters, as given
    status: Mapped[str] = mapped_column(String(10), default=JobStatus.QUEUED)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)  # ledger records written
    rows_total: Mapped[int] = mapped_column(Integer, default=0)  # ledger records matching (estimate)
    file_key: Mapped[str] = mapped_column(String(300), default="")  # in the file store (mall.files)
    error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StoredFile(Base):
    """A file of the database file store (mall.files): visible once `complete`, its content in chunks."""

    __tablename__ = "stored_files"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # e.g. exports/<uuid>.csv
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    complete: Mapped[bool] = mapped_column(Boolean, default=False)  # False while being written
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredFileChunk(Base):
    """One piece (at most mall.core.files.CHUNK_BYTES) of a stored file, numbered from 0."""

    __tablename__ = "stored_file_chunks"

    file_key: Mapped[str] = mapped_column(ForeignKey("stored_files.key"), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
