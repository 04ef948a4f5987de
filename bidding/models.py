"""Tables of online inquiries (在线询价) and reverse auctions (反向竞价).

A procedure goes draft → published (budget reserved; suppliers may see it) → open (quotes or bids
accepted until `ends_at`) → closed → awarded | failed; an award is then confirmed (an order is made)
or passed on to the next in rank. Every quote and every bid attempt — accepted or refused, with its
reason and server time — is a row of `offers`, the audit log the result is computed from.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, Money, Quantity, UTCDateTime
from mall.core.labels import Labeled


class OfferStatus(enum.StrEnum):
    """An offer as logged: accepted (counts until superseded), refused by the rules, or a withdrawal."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class ProcedureKind(Labeled):
    INQUIRY = "inquiry", "在线询价"
    AUCTION = "auction", "反向竞价"


class ProcedureStatus(Labeled):
    DRAFT = "draft", "草稿"
    PUBLISHED = "published", "已发布"  # visible, not yet open
    OPEN = "open", "进行中"  # quotes / bids accepted until ends_at
    CLOSED = "closed", "已截止"  # the deadline passed; the result is being computed
    AWARDED = "awarded", "待成交确认"  # a winner was named and must confirm
    FAILED = "failed", "失败"  # too few valid offers (流标 / 废标), or every ranked supplier declined
    CONFIRMED = "confirmed", "已成交"  # the winner confirmed; an order exists
    CANCELLED = "cancelled", "已撤销"  # withdrawn by the buyer before opening


PROCEDURE_STATUS_LABELS: dict[str, str] = ProcedureStatus.labels()
KIND_LABELS: dict[str, str] = ProcedureKind.labels()


class Procedure(IdMixin, Base):
    __tablename__ = "procedures"
    __table_args__ = (Index("ix_procedures_status_end", "status", "ends_at"),)

    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), index=True)
    title: Mapped[str] = mapped_column(String(200))
    buyer_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    buyer_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    budget_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budget_lines.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    ceiling: Mapped[Decimal] = mapped_column(Money)  # 最高限价, the whole procedure
    reserved_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    # the rules (bidding.rules.AuctionRules / InquiryRules), one column each
    decrement: Mapped[str] = mapped_column(
        String(16), default="0"
    )  # yuan, or percent when decrement_is_percent
    decrement_is_percent: Mapped[bool] = mapped_column(Boolean, default=False)
    beat_lowest: Mapped[bool] = mapped_column(Boolean, default=False)
    # The 小微企业 price deduction the buyer enabled (财库〔2020〕46号 第九条, 10%–20% by 财库〔2022〕19号):
    # the rate taken from MALL_SME_PRICE_DEDUCTION when published; None: not enabled. Small and micro
    # suppliers' offers are ranked at their price less this share; the deal is at the offered price.
    sme_deduction: Mapped[Decimal | None] = mapped_column(Numeric(4, 3))
    snipe_window_seconds: Mapped[int] = mapped_column(Integer, default=300)
    extension_seconds: Mapped[int] = mapped_column(Integer, default=300)
    max_extensions: Mapped[int] = mapped_column(Integer, default=12)
    min_participants: Mapped[int] = mapped_column(Integer, default=3)
    confirm_hours: Mapped[int] = mapped_column(Integer, default=72)
    eligibility: Mapped[str] = mapped_column(String(10), default="category")  # category | invited | agreement
    agreement_id: Mapped[uuid.UUID | None] = mapped_column(index=True)  # 二次竞价 under a framework agreement
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)  # moves with anti-sniping extensions
    extensions: Mapped[int] = mapped_column(Integer, default=0)
    # The database is the final arbiter of the auction room: every accepted bid takes the next
    # `offer_seq` with a conditional UPDATE (… WHERE offer_seq = :seen), so two bids can never both
    # be accepted against the same state, whatever the Redis lock did.
    offer_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    fence: Mapped[int] = mapped_column(BigInteger, default=0)  # the last room-lock token that committed
    lowest_amount: Mapped[Decimal | None] = mapped_column(Money)
    result_note: Mapped[str] = mapped_column(String(300), default="")  # the failure reason
    # the award: the supplier in rank that must confirm by confirm_due_at; declined ones are skipped
    awarded_supplier_id: Mapped[uuid.UUID | None] = mapped_column()
    awarded_amount: Mapped[Decimal | None] = mapped_column(Money)
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirm_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    passed_over: Mapped[list[str]] = mapped_column(JSON, default=list)  # supplier ids that declined or lapsed
    order_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcedureItem(IdMixin, Base):
    __tablename__ = "procedure_items"
    __table_args__ = (UniqueConstraint("procedure_id", "line_no"),)

    procedure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("procedures.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    category_code: Mapped[str] = mapped_column(String(16))
    item_name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str] = mapped_column(String(1000), default="")
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit: Mapped[str] = mapped_column(String(20))


class ProcedureInvite(IdMixin, Base):
    __tablename__ = "procedure_invites"
    __table_args__ = (UniqueConstraint("procedure_id", "supplier_org_id"),)

    procedure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("procedures.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))


class Participant(IdMixin, Base):
    """A supplier taking part: its anonymous label number (供应商 #n) is fixed when it first offers."""

    __tablename__ = "procedure_participants"
    __table_args__ = (
        UniqueConstraint("procedure_id", "supplier_org_id", name="uq_procedure_participants_supplier"),
        UniqueConstraint("procedure_id", "label_no", name="uq_procedure_participants_label"),
    )

    procedure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("procedures.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    label_no: Mapped[int] = mapped_column(Integer)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Offer(IdMixin, Base):
    """A quote (inquiry) or a bid attempt (auction). Refused attempts are kept with their reason."""

    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_procedure_seq", "procedure_id", "seq"),
        Index("ix_offers_procedure_supplier", "procedure_id", "supplier_org_id"),
    )

    procedure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("procedures.id"))
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    seq: Mapped[int | None] = mapped_column(BigInteger)  # acceptance order; None when refused
    amount: Mapped[Decimal | None] = mapped_column(Money)  # None when the typed amount was not money
    typed: Mapped[str] = mapped_column(String(40), default="")  # what was sent, for the audit log
    status: Mapped[str] = mapped_column(String(12))  # OfferStatus
    refuse_code: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(String(300), default="")  # refusal, or the buyer's rejection
    rejected: Mapped[bool] = mapped_column(Boolean, default=False)  # non-compliant (buyer, after opening)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
