"""The ledger tables: the disclosure records and their head, push subscriptions and deliveries, exports."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, Money, UTCDateTime
from mall.core.models import JobStatus


class PushStatus(enum.StrEnum):
    """active ⇄ paused (by its owner, or after failures); deleted is final."""

    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


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
