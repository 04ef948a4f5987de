"""Price monitoring tables: the alerts, the market statistics per brand and model, the per-品目
summary the public page shows, and one row per sweep."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, Money, UTCDateTime
from mall.core.encryption import EncryptedText
from mall.core.labels import Labeled


class AlertKind(Labeled):
    ABOVE_MARKET = "above_market", "高于市场中位价"
    ABOVE_ECOMMERCE = "above_ecommerce", "高于自报电商价"
    STALE_ECOMMERCE = "stale_ecommerce", "电商比价已过期"
    ABOVE_AGREEMENT = "above_agreement", "高于协议价"
    REPEATED_RAISE = "repeated_raise", "90日内多次涨价"
    ABNORMALLY_LOW = "abnormally_low", "异常低价"


class AlertStatus(Labeled):
    OPEN = "open", "待处理"
    ASKED = "asked", "待供应商说明"
    ANSWERED = "answered", "供应商已说明"
    FROZEN = "frozen", "已冻结商品"
    CLOSED = "closed", "已关闭"


ALERT_KIND_LABELS: dict[str, str] = AlertKind.labels()
ALERT_STATUS_LABELS: dict[str, str] = AlertStatus.labels()
LIVE_ALERT = "status <> 'closed'"


class PriceAlert(IdMixin, Base):
    """One finding about one listing. At most one alert of a kind is live (not closed) per listing;
    a sweep that finds it again updates `price`, `reference`, `detail` and `last_seen_at`."""

    __tablename__ = "price_alerts"
    __table_args__ = (
        Index(
            "uq_price_alerts_live",
            "listing_id",
            "kind",
            unique=True,
            sqlite_where=text(LIVE_ALERT),
            postgresql_where=text(LIVE_ALERT),
        ),
        Index("ix_price_alerts_status_opened", "status", "opened_at"),
    )

    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    category_code: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(6), index=True)  # the supplier's
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default=AlertStatus.OPEN)
    price: Mapped[Decimal] = mapped_column(Money)  # the listing's price when last found
    reference: Mapped[Decimal | None] = mapped_column(Money)  # what it was compared with
    # The evidence: quartiles and sample count, the e-commerce URL and capture day, the raises...
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    asked_by: Mapped[uuid.UUID | None] = mapped_column()  # a user id, as in the audit log
    answer_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[str] = mapped_column(EncryptedText, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[uuid.UUID | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[uuid.UUID | None] = mapped_column()
    close_note: Mapped[str] = mapped_column(String(300), default="")


class PriceStat(Base):
    """The mall's own deal prices for one brand and model across suppliers, over the window."""

    __tablename__ = "price_stats"

    brand_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer)
    p25: Mapped[Decimal] = mapped_column(Money)
    median: Mapped[Decimal] = mapped_column(Money)
    p75: Mapped[Decimal] = mapped_column(Money)
    window_days: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PriceWatchSummary(Base):
    """Per 品目 class (the first 7 characters of the code): live listings monitored and flagged by
    the last sweep. What the public 价格监测 page shows."""

    __tablename__ = "price_watch_summary"

    category_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    monitored: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SweepStatus(Labeled):
    RUNNING = "running", "进行中"
    DONE = "done", "已完成"
    FAILED = "failed", "失败"


class PriceSweep(IdMixin, Base):
    """One run of the daily sweep: when, how many listings it read, alerts it opened and refreshed."""

    __tablename__ = "price_sweeps"

    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10))  # running | done | failed
    listings: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    refreshed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
