"""Credit events (kept: never deleted nor changed) and each supplier's current score."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, UTCDateTime
from mall.credit.rules import GRADE_LABELS


class CreditEvent(IdMixin, Base):
    """One objective event against a supplier: an order declined, a confirmation lapsed, a late
    delivery... Recorded once per fact (supplier, `kind`, `source_id`), in the transaction that made the
    fact (a late delivery: by the periodic scan that finds it)."""

    __tablename__ = "credit_events"
    __table_args__ = (
        UniqueConstraint("supplier_org_id", "kind", "source_id"),
        Index("ix_credit_events_supplier_at", "supplier_org_id", "at"),
        Index("ix_credit_events_kind_source", "kind", "source_id"),
    )

    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_kind: Mapped[str] = mapped_column(String(12))  # order | procedure | claim | case
    source_id: Mapped[uuid.UUID] = mapped_column()
    ref: Mapped[str] = mapped_column(String(40))  # the order, project, claim or case number shown


class SupplierCredit(Base):
    """A supplier's score as last computed (listings and rankings read it; the supplier's own page
    computes it afresh with every event behind it)."""

    __tablename__ = "supplier_credit"

    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(2))
    version: Mapped[str] = mapped_column(String(16))
    evaluations: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    parts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def label(self) -> str:
        """ "85（良好）"."""
        return f"{self.score}（{GRADE_LABELS.get(self.grade, self.grade)}）"


class BlacklistImport(IdMixin, Base):
    """One CSV of a blacklist source (信用中国's lists, a province's own), as the administrator
    imported it: the newest import of a source replaces its entries (the older ones stay, superseded)."""

    __tablename__ = "credit_blacklist_imports"

    source: Mapped[str] = mapped_column(String(100))
    data_date: Mapped[date] = mapped_column(Date)  # the date the source published the list
    file_name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))


class BlacklistEntry(IdMixin, Base):
    """One organization on a blacklist, from one import. In force from `listed_on` until `until`
    (None: no end), unless a newer import of its source superseded it."""

    __tablename__ = "credit_blacklist"
    __table_args__ = (Index("ix_credit_blacklist_code_superseded", "credit_code", "superseded_at"),)

    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_blacklist_imports.id"), index=True)
    source: Mapped[str] = mapped_column(String(100))
    credit_code: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(300))
    listed_on: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CreditCheck(IdMixin, Base):
    """The evidence of one credit check (kept, never changed): whom, why (registration, an order, a
    blacklist import that named a registered supplier), by which checker, the outcome and what it saw."""

    __tablename__ = "credit_checks"
    __table_args__ = (
        Index("ix_credit_checks_org_at", "org_id", "checked_at"),
        # each order reads the organization's latest national-service answer: one index seek, however
        # many order checks the organization has
        Index("ix_credit_checks_org_checker_at", "org_id", "checker", "checked_at"),
    )

    org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id")
    )  # None: refused registration
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(12))  # registration | order | import
    ref: Mapped[str] = mapped_column(String(40), default="")  # the order number, or the import's source
    checker: Mapped[str] = mapped_column(String(20))  # blacklist | http
    result: Mapped[str] = mapped_column(String(8))  # clear | listed
    # {"records": [{"source", "reason", "listed_on", "until", "entry_id"}], "external": {...}}
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_by: Mapped[uuid.UUID | None] = mapped_column()
