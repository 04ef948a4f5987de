"""Catalogue tables: the 品目 classification and the suppliers' listings."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base, IdMixin, Money, Quantity, UTCDateTime
from mall.models import Organization


class Category(Base):
    """One entry of the 政府采购品目分类目录, per catalogue version (codes were renumbered in 2022)."""

    __tablename__ = "categories"

    version: Mapped[str] = mapped_column(String(8), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(12))  # goods | engineering | service


class ListingStatus:
    LIVE = "live"
    DELISTED = "delisted"
    FROZEN = "frozen"


LISTING_STATUS_LABELS = {"live": "在售", "delisted": "已下架", "frozen": "已冻结"}


class Listing(IdMixin, Base):
    __tablename__ = "listings"
    __table_args__ = (
        UniqueConstraint("supplier_org_id", "brand_key", "model_key"),
        Index("ix_listings_status_category", "status", "category_code"),
    )

    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(100))
    spec_model: Mapped[str] = mapped_column(String(200))
    # Normalized brand and model for the duplicate rule (case and spaces do not make a new product).
    brand_key: Mapped[str] = mapped_column(String(100))
    model_key: Mapped[str] = mapped_column(String(200))
    category_code: Mapped[str] = mapped_column(String(16), index=True)
    category_version: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str] = mapped_column(String(20))
    price: Mapped[Decimal] = mapped_column(Money)
    reference_price: Mapped[Decimal] = mapped_column(Money)
    reference_source: Mapped[str] = mapped_column(String(300), default="")
    stock: Mapped[Decimal] = mapped_column(Quantity)
    description: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[str] = mapped_column(String(12), default=ListingStatus.LIVE)
    sales_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    supplier: Mapped[Organization] = relationship(lazy="joined")
