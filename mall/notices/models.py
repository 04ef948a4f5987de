"""The public notices (公告): one append-only, ordered list. Never edited; a correction is a new
notice naming the one it corrects."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, UTCDateTime


class NoticeKind:
    CONTRACT = "contract"
    TERMINATION = "termination"  # a contract notice's contract was cancelled or voided: it corrects it
    ACCEPTANCE = "acceptance"


NOTICE_KIND_LABELS = {
    NoticeKind.CONTRACT: "合同公告",
    NoticeKind.TERMINATION: "合同终止公告",
    NoticeKind.ACCEPTANCE: "履约验收公告",
}


class Notice(Base):
    __tablename__ = "notices"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[uuid.UUID] = mapped_column(unique=True)  # the outbox row it was published from
    kind: Mapped[str] = mapped_column(String(30), index=True)
    # What it is about, once per kind: "contract:<order id>", "acceptance:<report id>".
    source_key: Mapped[str] = mapped_column(String(120), unique=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    title: Mapped[str] = mapped_column(String(300))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    # The event it follows (both parties signed, acceptance), the deadline the rules set, the time
    # it was published, and whether that was after the deadline.
    event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    corrects_seq: Mapped[int | None] = mapped_column(BigInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class NoticeHead(Base):
    """One row: the last notice number given. Publication locks it, so numbers follow commit order."""

    __tablename__ = "notice_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
