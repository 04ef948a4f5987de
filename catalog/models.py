"""Catalogue tables: the 品目 classification, the suppliers' listings, framework agreements (协议供货)
and designated services (定点服务)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.core import audit
from mall.core.db import Base, IdMixin, Money, Quantity, UTCDateTime
from mall.core.labels import Labeled
from mall.core.models import JobStatus, Organization


class Category(Base):
    """One entry of the 政府采购品目分类目录, per catalogue version (codes were renumbered in 2022)."""

    __tablename__ = "categories"

    version: Mapped[str] = mapped_column(String(8), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(12))  # goods | engineering | service


class ListingStatus(Labeled):
    """draft → submitted → live | rejected; live ⇄ delisted, live ⇄ frozen; rejected/draft → submitted."""

    DRAFT = "draft", "草稿"
    SUBMITTED = "submitted", "待审核"
    LIVE = "live", "在售"
    REJECTED = "rejected", "未通过审核"
    DELISTED = "delisted", "已下架"
    FROZEN = "frozen", "已冻结"


LISTING_STATUS_LABELS: dict[str, str] = ListingStatus.labels()


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
    # 规格参数: [name, value] pairs, as the supplier lists them (catalog.shopping.parse_params)
    params: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default=ListingStatus.SUBMITTED)
    # Why the listing is rejected, delisted or frozen, and by which role (supplier | center | regulator):
    # only that side (or a higher one) may undo it.
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    status_by: Mapped[str] = mapped_column(String(12), default="")
    frozen_from: Mapped[str] = mapped_column(String(12), default="")  # the status a frozen listing returns to
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column()  # a user id, as in the audit log
    sales_count: Mapped[int] = mapped_column(Integer, default=0)
    # The supplier's declared price of the same product in an open e-commerce shop (电商比价), the page
    # it was read from and the day it was captured: price monitoring compares against it and flags it
    # stale after mall.pricewatch's STALE_DAYS.
    ecommerce_price: Mapped[Decimal | None] = mapped_column(Money)
    ecommerce_url: Mapped[str] = mapped_column(String(500), default="", server_default="")
    ecommerce_captured_on: Mapped[date | None] = mapped_column(Date)
    # Policy attributes (catalog.policy): the 节能产品 and 环境标志产品 certificates with their expiry
    # (财库〔2019〕9号), and the origin, 本国产品 or 进口产品 with the approval of its import.
    energy_cert_no: Mapped[str] = mapped_column(String(60), default="", server_default="")
    energy_cert_until: Mapped[date | None] = mapped_column(Date)
    eco_cert_no: Mapped[str] = mapped_column(String(60), default="", server_default="")
    eco_cert_until: Mapped[date | None] = mapped_column(Date)
    origin: Mapped[str] = mapped_column(String(10), default="domestic", server_default="domestic")
    import_approval_ref: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    supplier: Mapped[Organization] = relationship(lazy="joined")


class PriceChange(IdMixin, Base):
    """The price history of a listing: its first price and every change, with who made it."""

    __tablename__ = "listing_price_changes"

    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    price: Mapped[Decimal] = mapped_column(Money)
    reference_price: Mapped[Decimal] = mapped_column(Money)
    previous_price: Mapped[Decimal | None] = mapped_column(Money)
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(200), default="")


class PriceRequestStatus(Labeled):
    """pending → approved | rejected | withdrawn (by the supplier) | superseded (by a newer request)."""

    PENDING = "pending", "待审核"
    APPROVED = "approved", "已通过"
    REJECTED = "rejected", "未通过"
    WITHDRAWN = "withdrawn", "已撤回"
    SUPERSEDED = "superseded", "已被新的调价取代"


PRICE_REQUEST_STATUS_LABELS: dict[str, str] = PriceRequestStatus.labels()


class PriceRequest(IdMixin, Base):
    """A price change of a reviewed listing that waits for the center: a new reference price, or a
    price above the reviewed reference × (1 + margin). The listing keeps selling at its reviewed
    price meanwhile; at most one request per listing is pending (kept so under the listing's row lock)."""

    __tablename__ = "listing_price_requests"
    __table_args__ = (Index("ix_listing_price_requests_status_requested_at", "status", "requested_at"),)

    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"), index=True)
    price: Mapped[Decimal] = mapped_column(Money)
    reference_price: Mapped[Decimal] = mapped_column(Money)
    reference_source: Mapped[str] = mapped_column(String(300), default="")
    note: Mapped[str] = mapped_column(String(200), default="")
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=PriceRequestStatus.PENDING)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(300), default="")  # why the center rejected it

    listing: Mapped[Listing] = relationship(lazy="joined")


class ListingImport(IdMixin, Base):
    """A supplier's spreadsheet upload, processed by a job; its progress and per-row report."""

    __tablename__ = "listing_imports"

    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(200))
    # The upload in the file store (mall.files) until the job has processed it; "" afterwards.
    file_key: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(10), default=JobStatus.QUEUED)
    strict: Mapped[bool] = mapped_column(Boolean, default=False)  # any bad row: import nothing
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    report: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[line, "通过"|"未通过", reason], ...]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- framework agreements (协议供货)


class AgreementStatus(Labeled):
    DRAFT = "draft", "草稿"
    ACTIVE = "active", "执行中"
    EXPIRED = "expired", "已到期"
    TERMINATED = "terminated", "已终止"


AGREEMENT_STATUS_LABELS: dict[str, str] = AgreementStatus.labels()


class Agreement(IdMixin, Base):
    __tablename__ = "agreements"

    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    center_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # goods | services
    category_code: Mapped[str] = mapped_column(String(16))  # products must lie under this 品目
    region_code: Mapped[str] = mapped_column(String(6))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)  # the last day of the term
    # A call-off at or above this amount goes to a second-stage competition (二次竞价).
    direct_limit: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(12), index=True)
    end_reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AgreementSupplier(IdMixin, Base):
    """A supplier that won entry (入围); `supplementary` when it entered after activation."""

    __tablename__ = "agreement_suppliers"
    __table_args__ = (UniqueConstraint("agreement_id", "supplier_org_id", name="uq_agreement_supplier"),)

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    supplementary: Mapped[bool] = mapped_column(Boolean, default=False)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementProduct(IdMixin, Base):
    """A product an entered supplier supplies under the agreement, at most at `price` (协议价).
    With a discount rate, `price` is the list price times the rate, rounded to the 分."""

    __tablename__ = "agreement_products"

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(100))
    spec_model: Mapped[str] = mapped_column(String(200))
    # brand and model folded like the catalogue's duplicate rule, to find the same goods listed there
    brand_key: Mapped[str] = mapped_column(String(100))
    model_key: Mapped[str] = mapped_column(String(200))
    category_code: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(20))
    list_price: Mapped[Decimal | None] = mapped_column(Money)
    discount_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 4))
    price: Mapped[Decimal] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- designated services (定点服务)


class DesignationStatus(Labeled):
    APPLIED = "applied", "待审核"
    APPROVED = "approved", "定点中"
    REJECTED = "rejected", "未通过"
    REVOKED = "revoked", "已撤销"


DESIGNATION_STATUS_LABELS: dict[str, str] = DesignationStatus.labels()


class Designation(IdMixin, Base):
    __tablename__ = "designations"
    __table_args__ = (Index("ix_designations_find", "status", "region_code", "category_code"),)

    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    category_code: Mapped[str] = mapped_column(String(16))  # a service 品目 (C…)
    region_code: Mapped[str] = mapped_column(String(6))  # where the service is provided
    status: Mapped[str] = mapped_column(String(10))
    by_application: Mapped[bool] = mapped_column(Boolean, default=False)
    service_address: Mapped[str] = mapped_column(String(300), default="")
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewer_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    review_note: Mapped[str] = mapped_column(String(300), default="")


_DESIGNATION_ACTIONS = {
    DesignationStatus.APPROVED: "designation_approved",
    DesignationStatus.REJECTED: "designation_rejected",
    DesignationStatus.REVOKED: "designation_revoked",
}


def _designation_change(
    d: Designation, is_new: bool, old_and_new: Callable[[str], tuple[Any, Any]]
) -> dict[str, Any] | None:
    """The audit entry of a designation made, decided or revoked — written at the flush, whichever
    code path made the change (the API and the pages alike), by whoever makes the request."""
    where = {
        "supplier_org_id": d.supplier_org_id,
        "category_code": d.category_code,
        "region_code": d.region_code,
    }
    if is_new:
        return {
            "action": "designation_applied" if d.by_application else "designation_designated",
            "target_kind": "designation",
            "target": str(d.id),
            "after": {**where, "status": d.status},
        }
    old, new = old_and_new("status")
    if old == new or new not in _DESIGNATION_ACTIONS:
        return None
    return {
        "action": _DESIGNATION_ACTIONS[DesignationStatus(new)],
        "target_kind": "designation",
        "target": str(d.id),
        "detail": d.review_note,
        "before": {**where, "status": old},
        "after": {**where, "status": new, "note": d.review_note},
    }


audit.watch(Designation, _designation_change)


class ServicePriceItem(IdMixin, Base):
    """One line of a designated supplier's service price list (服务价格清单)."""

    __tablename__ = "service_price_items"

    designation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("designations.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # the order of the price list
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(20))  # 小时 | 次 | 项 | 人·天 …
    price: Mapped[Decimal] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ListingImage(IdMixin, Base):
    """A product photo: kept re-encoded without its metadata (no camera, no GPS) in the file store,
    in three sizes (the file keys); the first by position is the product's main image."""

    __tablename__ = "listing_images"

    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    original_key: Mapped[str] = mapped_column(String(200))  # at most 2000 px on its longer side
    display_key: Mapped[str] = mapped_column(String(200))  # 800 px
    thumb_key: Mapped[str] = mapped_column(String(200))  # 240 px
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Favourite(IdMixin, Base):
    """A buyer's 收藏 / 常购清单: a listing kept to find and buy again."""

    __tablename__ = "favourites"
    __table_args__ = (UniqueConstraint("user_id", "listing_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ComparisonSheet(IdMixin, Base):
    """A 比价单 as it stood when made: the compared products, their prices, reference prices and
    sources, frozen in `body`, for the purchase file. Printed and downloaded as PDF from the snapshot."""

    __tablename__ = "comparison_sheets"

    number: Mapped[str] = mapped_column(String(32), unique=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
