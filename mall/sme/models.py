"""中小企业声明函: a supplier's dated declaration of its size (kept, never changed: a new year's is a
new declaration)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, UTCDateTime


class SmeDeclaration(IdMixin, Base):
    """One 中小企业声明函: the industry, the figures of the last year, the size they classify as
    (mall.sme.rules), and the days it covers. The one in force on a day is the newest declared on or
    before it whose `valid_until` has not passed."""

    __tablename__ = "sme_declarations"
    __table_args__ = (Index("ix_sme_declarations_org_declared", "org_id", "declared_on"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    industry: Mapped[str] = mapped_column(
        String(20)
    )  # a key of mall/data/sme-thresholds.csv, or "" (migrated)
    employees: Mapped[int | None] = mapped_column(Integer)
    revenue: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))  # 万元
    assets: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))  # 万元
    size: Mapped[str] = mapped_column(String(8))  # medium | small | micro | large | sme (migrated)
    declared_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(10))  # declared | migrated
    statement: Mapped[str] = mapped_column(String(2000))  # the 声明函's text as filed
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)
    declared_by: Mapped[uuid.UUID | None] = mapped_column()
