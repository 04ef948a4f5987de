"""Violation reports and sanctions (both kept: the record of a decision against a supplier is never
deleted; like an oversight case, rewritten only when the data key is rotated)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, UTCDateTime
from mall.core.encryption import EncryptedText
from mall.core.labels import Labeled


class SanctionKind(Labeled):
    WARNING = "warning", "警告"
    SUSPENSION = "suspension", "暂停交易资格"
    EMERGENCY = "emergency", "紧急暂停交易资格"
    BAN = "ban", "永久禁止交易"


# The kinds that bar the supplier from selling while in force (a warning is a public record only).
BARRING_KINDS = (SanctionKind.SUSPENSION, SanctionKind.EMERGENCY, SanctionKind.BAN)


class SanctionStatus(Labeled):
    IN_FORCE = "in_force", "执行中"
    EXPIRED = "expired", "已期满"
    LIFTED = "lifted", "已撤销"  # an emergency suspension rebutted, or a sanction overturned on appeal
    CONVERTED = "converted", "已转为正式处理"  # an emergency suspension the center confirmed


class AppealStatus(Labeled):
    NONE = "none", "未申诉"
    FILED = "filed", "申诉审理中"
    UPHELD = "upheld", "申诉驳回，维持处理"
    OVERTURNED = "overturned", "申诉成立，撤销处理"


class ReportStatus(Labeled):
    SUBMITTED = "submitted", "待处理"
    UPHELD = "upheld", "查证属实"
    DISMISSED = "dismissed", "不予支持"


class ReportReason(Labeled):
    NOT_DELIVERED = "not_delivered", "低价成交后不履约或拒不供货"
    WITHDREW = "withdrew", "成交后放弃成交或拒绝签约"
    QUALITY = "quality", "以次充好、货不对板"
    FALSE_INFO = "false_info", "提供虚假材料或信息"
    COLLUSION = "collusion", "串通报价"
    OTHER = "other", "其他违规行为"


class ViolationReport(IdMixin, Base):
    """A buyer's report against a supplier, with evidence files, decided by the center by a deadline
    counted in working days."""

    __tablename__ = "violation_reports"
    __table_args__ = (Index("ix_violation_reports_status_due", "status", "decide_due_at"),)

    report_no: Mapped[str] = mapped_column(String(24), unique=True)
    reporter_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    reporter_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    reason: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(EncryptedText)
    # [{"name": file name, "key": file store key, "size": bytes, "sha256": hex, "type": MIME}]
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default=ReportStatus.SUBMITTED)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    decide_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str] = mapped_column(EncryptedText, default="")
    sanction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sanctions.id"))


class Sanction(IdMixin, Base):
    """One sanction against one supplier. In force from `starts_at` until `ends_at` (None: a ban, or
    an emergency suspension not yet confirmed or lifted), unless lifted or converted."""

    __tablename__ = "sanctions"
    __table_args__ = (Index("ix_sanctions_supplier_status", "supplier_org_id", "status"),)

    sanction_no: Mapped[str] = mapped_column(String(24), unique=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    kind: Mapped[str] = mapped_column(String(12))
    months: Mapped[int] = mapped_column(Integer, default=0)  # suspensions and warnings
    status: Mapped[str] = mapped_column(String(12), default=SanctionStatus.IN_FORCE)
    reason: Mapped[str] = mapped_column(String(2000))  # public: it is the 不良行为记录
    basis: Mapped[str] = mapped_column(String(300), default="")  # the rule it applies
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("oversight_cases.id"))
    report_id: Mapped[uuid.UUID | None] = mapped_column()  # the violation report it decided
    decided_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    decided_by_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str] = mapped_column(String(600), default="")
    # An emergency suspension: the supplier's rebuttal within one working day.
    rebut_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rebuttal: Mapped[str] = mapped_column(EncryptedText, default="")
    rebutted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The appeal: filed by the supplier within the window, decided by the regulator.
    appeal_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    appeal_status: Mapped[str] = mapped_column(String(12), default=AppealStatus.NONE)
    appeal_text: Mapped[str] = mapped_column(EncryptedText, default="")
    appeal_filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    appeal_reason: Mapped[str] = mapped_column(EncryptedText, default="")
