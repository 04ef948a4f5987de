"""The budget tables: approved budget lines of budget units and their movements."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, Money, UTCDateTime


class BudgetLine(IdMixin, Base):
    """An approved budget of a budget unit. available = amount - reserved - consumed, never below 0."""

    __tablename__ = "budget_lines"
    __table_args__ = (
        UniqueConstraint("org_id", "fiscal_year", "project_code"),
        CheckConstraint("reserved >= 0 AND consumed >= 0 AND reserved + consumed <= amount", name="within"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    fiscal_year: Mapped[int] = mapped_column(Integer)
    project_code: Mapped[str] = mapped_column(String(40))
    project_name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money)
    # the 品目 it may buy: catalogue codes separated by spaces, '' for every 品目 (mall.budgets.scope)
    scope: Mapped[str] = mapped_column(String(300), default="")
    reserved: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    consumed: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def available(self) -> Decimal:
        return self.amount - self.reserved - self.consumed


class BudgetMovement(IdMixin, Base):
    """The audit trail of a budget line: every reserve, release and consume."""

    __tablename__ = "budget_movements"

    budget_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budget_lines.id"), index=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # an inquiry's or auction's reservation (bidding.models.Procedure), before any order exists
    procedure_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(10))  # reserve | release | consume
    amount: Mapped[Decimal] = mapped_column(Money)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class BudgetAdjustment(IdMixin, Base):
    """A change of a budget line's approved amount: 追加 (increase) or 调减 (decrease), with why and
    by whom. A decrease never takes the amount below what is reserved and spent."""

    __tablename__ = "budget_adjustments"

    budget_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budget_lines.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # increase | decrease
    amount: Mapped[Decimal] = mapped_column(Money)  # always positive
    amount_before: Mapped[Decimal] = mapped_column(Money)
    amount_after: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(300))
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
