"""The one clock. Services ask it for the time, so demo history and tests can move it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    def freeze(self, at: datetime) -> None:
        self._frozen = at

    def unfreeze(self) -> None:
        self._frozen = None


clock = Clock()


def now() -> datetime:
    return clock.now()


def local_date(at: datetime) -> date:
    """The calendar date in China for an instant (deal dates are Chinese dates)."""
    return at.astimezone(SHANGHAI).date()


def local_display(at: datetime | None) -> str:
    if at is None:
        return ""
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
