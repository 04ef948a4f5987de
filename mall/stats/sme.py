"""中小企业 statistics: the share of the mall's spend going to small and medium enterprises per buyer,
per region and per year, by the size each supplier declared when the deal was made (mall.sme), and the
figures of the annual report on procurement from SMEs (财库〔2020〕46号 第二十一条).

A deal counts from its confirmation (orders in a deal status), at its total; `sme` is every declared
small, medium or micro enterprise (and the unsized declarations migrated from the former flag),
`small_micro` the small and micro ones; a supplier without a declaration in force counts as neither."""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, case, func, literal_column, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import xlsx
from mall.core.fields import spreadsheet_safe
from mall.core.models import Organization
from mall.core.money import from_cents, money_str
from mall.core.regions import region_name
from mall.orders.models import Order
from mall.sme.rules import SMALL_OR_MICRO, SME_SIZES
from mall.stats.period import Filter, Period
from mall.stats.queries import deal_clause, percent

BY = ("buyer", "region", "year")
ZERO = Decimal(0)


@dataclass(frozen=True)
class SmeShareRow:
    key: str
    name: str
    credit_code: str  # a buyer's; "" for a region or a year
    deals: int
    total: Decimal
    sme: Decimal
    small_micro: Decimal

    @property
    def sme_share(self) -> Decimal | None:
        return percent(self.sme, self.total)

    @property
    def small_micro_share(self) -> Decimal | None:
        return percent(self.small_micro, self.total)

    def api(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "credit_code": self.credit_code,
            "deals": self.deals,
            "total": money_str(self.total),
            "sme": money_str(self.sme),
            "sme_share": None if self.sme_share is None else f"{self.sme_share:.2f}",
            "small_micro": money_str(self.small_micro),
            "small_micro_share": None if self.small_micro_share is None else f"{self.small_micro_share:.2f}",
        }


def _cents(condition: Any) -> Any:
    amount = type_coerce(Order.total_amount, BigInteger)
    return func.sum(case((condition, amount), else_=0))


async def shares(s: AsyncSession, f: Filter, by: str) -> list[SmeShareRow]:
    """The SME shares of the period and scope, grouped `by` buyer, region or year; the largest first
    (years in order)."""
    if by not in BY:
        raise ValueError(by)
    if by == "year":  # one query per calendar year (China's), within the period
        out = []
        for y in range(f.period.start.year, f.period.end.year + 1):
            part = Period(max(f.period.start, date(y, 1, 1)), min(f.period.end, date(y, 12, 31)))
            for r in await _grouped(s, Filter(part, f.scope), None):
                if r[1]:
                    out.append(SmeShareRow(str(y), f"{y}年", "", *r[1:]))
        return out
    key = Order.buyer_org_id if by == "buyer" else Order.region_code
    raw = await _grouped(s, f, key)
    names: dict[Any, tuple[str, str]] = {}
    if by == "buyer" and raw:
        ids = [r[0] for r in raw]
        names = {
            o.id: (o.name, o.credit_code)
            for o in (await s.execute(select(Organization).where(Organization.id.in_(ids)))).scalars()
        }
    rows = []
    for k, n, total, sme, small in raw:
        name, code = names.get(k, ("", "")) if by == "buyer" else (region_name(str(k)) or str(k), "")
        rows.append(SmeShareRow(str(k), name, code, n, total, sme, small))
    return sorted(rows, key=lambda r: (-r.total, r.key))


async def _grouped(s: AsyncSession, f: Filter, key: Any) -> list[tuple[Any, int, Decimal, Decimal, Decimal]]:
    """Deals, total, SME and small-or-micro amounts, per `key` (None: one row for everything)."""
    figures = (
        func.count(),
        func.sum(type_coerce(Order.total_amount, BigInteger)),
        _cents(Order.supplier_scale.in_(SME_SIZES)),
        _cents(Order.supplier_scale.in_(SMALL_OR_MICRO)),
    )
    if key is None:
        stmt = select(literal_column("NULL"), *figures).where(deal_clause(f))
    else:
        stmt = select(key, *figures).where(deal_clause(f)).group_by(key)
    return [
        (k, int(n), from_cents(int(total or 0)), from_cents(int(sme or 0)), from_cents(int(small or 0)))
        for k, n, total, sme, small in (await s.execute(stmt)).all()
    ]


REPORT_COLUMNS = (
    "采购单位",
    "统一社会信用代码",
    "成交笔数",
    "采购总额（元）",
    "其中：中小企业（元）",
    "中小企业占比（%）",
    "其中：小微企业（元）",
    "小微企业占比（%）",
)


def _report_row(r: SmeShareRow) -> list[Any]:
    return [
        r.name,
        r.credit_code,
        r.deals,
        r.total,
        r.sme,
        "" if r.sme_share is None else f"{r.sme_share:.2f}",
        r.small_micro,
        "" if r.small_micro_share is None else f"{r.small_micro_share:.2f}",
    ]


def _total(rows: list[SmeShareRow]) -> SmeShareRow:
    return SmeShareRow(
        "total",
        "合计",
        "",
        sum(r.deals for r in rows),
        sum((r.total for r in rows), ZERO),
        sum((r.sme for r in rows), ZERO),
        sum((r.small_micro for r in rows), ZERO),
    )


def report_csv(rows: list[SmeShareRow]) -> bytes:
    """The annual report's figures per buyer, with a total line; UTF-8 with a BOM (Excel opens it)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(REPORT_COLUMNS)
    for r in [*rows, _total(rows)]:
        w.writerow(
            [
                money_str(v) if isinstance(v, Decimal) else spreadsheet_safe(v) if isinstance(v, str) else v
                for v in _report_row(r)
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def report_xlsx(rows: list[SmeShareRow], title: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.xlsx"
        book = xlsx.Workbook(path, amount_columns=(3, 4, 6))
        book.add_sheet(title[:31])
        book.append(list(REPORT_COLUMNS))
        for r in [*rows, _total(rows)]:
            book.append(_report_row(r))
        book.close()
        return path.read_bytes()
