"""Credit events (kept: never deleted nor changed) and each supplier's current score."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
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
