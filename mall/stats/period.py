"""The filters every statistic takes: a period of local (Asia/Shanghai) dates and a region scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from mall.core import clock
from mall.core.errors import Forbidden, InvalidInput
from mall.core.regions import region_name, within

MAX_YEARS = 5
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class Period:
    """Local dates, both included."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        """The first instant of the period (UTC-aware)."""
        return datetime.combine(self.start, time(), clock.SHANGHAI)

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + timedelta(days=1), time(), clock.SHANGHAI)

    def months(self) -> list[str]:
        """Every month of the period, "YYYY-MM", in order."""
        out = []
        y, m = self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


@dataclass(frozen=True)
class Filter:
    period: Period
    scope: str | None  # a region code: what lies under it; None: no restriction


def month_of(at: datetime) -> str:
    """The local month of an instant, "YYYY-MM"."""
    return clock.local_date(at).strftime("%Y-%m")


def default_period(today: date) -> Period:
    """The last twelve months: from the first day of the month eleven months back to today."""
    y, m = today.year, today.month - 11
    if m < 1:
        y, m = y - 1, m + 12
    return Period(date(y, m, 1), today)


def _date(value: str, label: str) -> date:
    try:
        d = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{label}格式不正确，应为 YYYY-MM-DD，例如 2026-01-31", code="invalid_date"
        ) from None
    if len(value.strip()) != 10 or d < EARLIEST:
        raise InvalidInput(f"{label}格式不正确，应为 YYYY-MM-DD，不早于 2000-01-01", code="invalid_date")
    return d


def parse_period(date_from: str | None, date_to: str | None, today: date) -> Period:
    """The period asked for; a missing end is today, a missing start twelve months before the end."""
    end = _date(date_to, "结束日期") if date_to else today
    start = _date(date_from, "开始日期") if date_from else default_period(end).start
    if start > end:
        raise InvalidInput("开始日期不能晚于结束日期", code="invalid_period")
    try:
        limit = start.replace(year=start.year + MAX_YEARS)
    except ValueError:  # 29 February
        limit = start.replace(year=start.year + MAX_YEARS, day=28)
    if end >= limit:
        raise InvalidInput(f"统计期间最长 {MAX_YEARS} 年，请缩短期间", code="period_too_long")
    return Period(start, end)


def parse_region(value: str | None, own: str | None) -> str | None:
    """The region scope asked for, which must lie within `own` (the caller's region; None: anywhere).
    No value: `own` itself."""
    value = (value or "").strip()
    if not value:
        return own
    if len(value) != 6 or not value.isdigit() or not region_name(value):
        raise InvalidInput("地区应为 6 位行政区划代码，例如 410100", code="invalid_region")
    if own is not None and not within(value, own):
        raise Forbidden("只能查看本单位所辖地区的统计", code="region_out_of_scope")
    return value
