"""Oversight cases and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, UTCDateTime
from mall.core.encryption import EncryptedText
from mall.core.labels import Labeled


class CaseStatus(Labeled):
    OPEN = "open", "待说明"
    EXPLAINED = "explained", "已说明，待认定"
    JUSTIFIED = "justified", "已关闭：理由成立"
    VIOLATION = "violation", "已关闭：认定违规"
    ESCALATED = "escalated", "已移送处理"


CASE_STATUS_LABELS: dict[str, str] = CaseStatus.labels()
CLOSED_STATUSES = (CaseStatus.JUSTIFIED, CaseStatus.VIOLATION, CaseStatus.ESCALATED)


class OversightCase(IdMixin, Base):
    """One hit of one rule on one subject (an order, a procedure, a buyer's year...): `subject_key`
    names it, so running the rule again never opens a second case for the same thing."""

    __tablename__ = "oversight_cases"
    __table_args__ = (
        UniqueConstraint("rule", "subject_key"),
        Index("ix_oversight_cases_status_region", "status", "region_code"),
    )

    case_no: Mapped[str] = mapped_column(String(24), unique=True)
    rule: Mapped[str] = mapped_column(String(40), index=True)
    subject_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default=CaseStatus.OPEN)
    region_code: Mapped[str] = mapped_column(String(6))  # the buyer's (or the supplier's) region
    buyer_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    # The party that must explain (the buyer or the supplier).
    party_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    summary: Mapped[str] = mapped_column(String(300))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hits: Mapped[int] = mapped_column(Integer, default=1)
    still_hit: Mapped[bool] = mapped_column(Boolean, default=True)  # the last run still found it
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_hit_at: Mapped[datetime] = mapped_column(UTCDateTime)
    explain_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    explanation: Mapped[str] = mapped_column(EncryptedText, default="")
    explained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    explained_by: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[uuid.UUID | None] = mapped_column()
    decision_note: Mapped[str] = mapped_column(EncryptedText, default="")


class CaseEvent(IdMixin, Base):
    """A case's history, one line per thing done to it (kept: never deleted; like an order's history it is
    rewritten only when the data key is rotated, its people's names being encrypted)."""

    __tablename__ = "oversight_case_events"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("oversight_cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(EncryptedText)  # "系统" or "组织·姓名"
    action: Mapped[str] = mapped_column(String(20))  # opened | hit | explained | justified | ...
    detail: Mapped[str] = mapped_column(EncryptedText, default="")
