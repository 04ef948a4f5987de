"""The sanction rules, pure: how long each kind lasts, when it binds, what the decision must carry."""

from __future__ import annotations

import calendar
from datetime import datetime

from mall.core.errors import InvalidInput
from mall.sanctions.models import BARRING_KINDS, SanctionKind, SanctionStatus

MIN_MONTHS = 1
MAX_MONTHS = 24  # suspensions of 1–24 months


def months_of(kind: str, raw: object) -> int:
    """The months a decision of `kind` runs: 1–24 for a suspension or a warning's record; none for
    an emergency suspension (until confirmed or lifted) or a ban (no end)."""
    if kind in (SanctionKind.EMERGENCY, SanctionKind.BAN):
        return 0
    try:
        months = int(str(raw).strip())
    except ValueError:
        raise InvalidInput("期限应为整数月", code="invalid_months", field="months") from None
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise InvalidInput(
            f"期限应为 {MIN_MONTHS}–{MAX_MONTHS} 个月", code="months_out_of_range", field="months"
        )
    return months


def add_months(at: datetime, months: int) -> datetime:
    """The same moment `months` later (the last day of a shorter month when the day does not exist)."""
    month0 = at.month - 1 + months
    year, month = at.year + month0 // 12, month0 % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def ends_at(kind: str, starts: datetime, months: int) -> datetime | None:
    if kind in (SanctionKind.EMERGENCY, SanctionKind.BAN):
        return None
    return add_months(starts, months)


def in_force(status: str, starts: datetime, ends: datetime | None, at: datetime) -> bool:
    """Whether a sanction binds at `at`: in force, begun, not yet ended. Its end binds at once,
    whether or not the periodic tick has marked it expired."""
    return status == SanctionStatus.IN_FORCE and starts <= at and (ends is None or at < ends)


def bars(kind: str, status: str, starts: datetime, ends: datetime | None, at: datetime) -> bool:
    """Whether it bars the supplier from new business at `at` (a warning never does)."""
    return kind in BARRING_KINDS and in_force(status, starts, ends, at)
