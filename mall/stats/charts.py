"""The statistics as charts: each a title, its columns (with Chinese headers) and its rows of plain
values, the same for the JSON API, the pages' tables and the CSV downloads; and what a chart draws.

Values travel as the API writes them: money as a decimal string ("1234.00"), counts as integers,
percentages and durations as decimal strings, None when there is nothing to divide or measure.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from mall.core.money import money_str
from mall.core.regions import region_name
from mall.stats import queries as q
from mall.stats.period import Filter

Value = str | int | None

# The charts anyone may see (aggregates of published deals), then those of the regulator and the center.
PUBLIC_CHARTS = (
    "spend_by_month",
    "spend_by_mode",
    "spend_by_category",
    "spend_by_subcategory",
    "spend_by_region",
    "sme_share",
    "green_share",
    "origin_share",
    "savings",
)
PRIVATE_CHARTS = (
    *PUBLIC_CHARTS,
    "cases_by_rule",
    "cases_by_status",
    "alerts_by_month",
    "time_to_confirm",
    "time_to_pay",
)
SUBCATEGORY_ROWS = 20  # the 2nd-level 品目 chart shows the largest ones


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | money | int | number (a decimal string) | percent
    shown: bool = True  # a code the table leaves out (the name beside it says it); the API and CSV keep it


@dataclass
class Chart:
    key: str
    title: str
    draw: str  # bar | line | pie | stack (stacked bars)
    columns: list[Column]
    rows: list[dict[str, Value]]
    x: str  # the column naming each bar, point or slice
    y: list[str]  # the columns drawn
    empty: str  # the empty state's text
    note: str = ""
    unit: str = ""

    @property
    def is_empty(self) -> bool:
        """Nothing to draw: no row, or every drawn value nothing."""
        return not any(r.get(k) not in (None, 0, "0.00", "0") for r in self.rows for k in self.y)

    def shown_columns(self) -> list[Column]:
        return [c for c in self.columns if c.shown]

    def api(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": [{"key": c.key, "header": c.header} for c in self.columns],
            "rows": self.rows,
        }

    def drawing(self) -> dict[str, Any]:
        """What the page's script draws: the categories (x) and one series per drawn column."""
        headers = {c.key: c.header for c in self.columns}
        return {
            "type": self.draw,
            "unit": self.unit,
            "categories": [str(r[self.x]) for r in self.rows],
            "series": [{"name": headers[k], "data": [_number(r.get(k)) for r in self.rows]} for k in self.y],
        }


def _number(v: Value) -> float | int | None:
    if v is None or isinstance(v, int):
        return v
    return float(Decimal(v))


def _pct(v: Decimal | None) -> str | None:
    return None if v is None else f"{v:f}"


MONEY = "成交金额（元）"
DEALS = "成交笔数"


def _spend(
    key: str,
    title: str,
    draw: str,
    rows: list[q.SpendRow],
    key_col: Column,
    name_col: Column | None,
    empty: str,
    note: str = "",
) -> Chart:
    cols = [
        key_col,
        *([name_col] if name_col else []),
        Column("amount", MONEY, "money"),
        Column("deals", DEALS, "int"),
    ]
    data: list[dict[str, Value]] = []
    for r in rows:
        row: dict[str, Value] = {key_col.key: r.key}
        if name_col:
            row[name_col.key] = r.name
        row.update(amount=money_str(r.amount), deals=r.deals)
        data.append(row)
    x = name_col.key if name_col else key_col.key
    return Chart(key, title, draw, cols, data, x, ["amount"], empty, note, "元")


@dataclass
class Statistics:
    """Every chart asked for, for one filter, and the headline figures."""

    filter: Filter
    charts: dict[str, Chart] = field(default_factory=dict)
    summary: dict[str, Value] = field(default_factory=dict)

    def api(self) -> dict[str, Any]:
        f = self.filter
        return {
            "from": f.period.start.isoformat(),
            "to": f.period.end.isoformat(),
            "region": f.scope,
            "region_name": region_name(f.scope) if f.scope else "",
            "summary": self.summary,
            "charts": {k: c.api() for k, c in self.charts.items()},
        }


NO_DEALS = "所选期间和地区内没有成交记录"


async def collect(s: AsyncSession, f: Filter, keys: tuple[str, ...]) -> Statistics:
    """The charts named by `keys` (PUBLIC_CHARTS or PRIVATE_CHARTS), in that order."""
    out = Statistics(f)
    months = f.period.months()
    deals = await q.deal_rows(s, f)
    charts: dict[str, Chart] = {}
    month_col = Column("month", "月份")
    charts["spend_by_month"] = _spend(
        "spend_by_month", "按月成交金额", "bar", q.spend_by_month(deals, months), month_col, None, NO_DEALS
    )
    charts["spend_by_month"].y = ["amount", "deals"]
    charts["spend_by_month"].draw = "bar_line"
    charts["spend_by_mode"] = _spend(
        "spend_by_mode",
        "按采购方式成交金额",
        "pie",
        q.spend_by_mode(deals),
        Column("mode", "方式代码", shown=False),
        Column("name", "采购方式"),
        NO_DEALS,
    )
    charts["spend_by_category"] = _spend(
        "spend_by_category",
        "按品目（一级）成交金额",
        "bar",
        await q.spend_by_category(s, f, 1),
        Column("code", "品目编码"),
        Column("name", "品目"),
        NO_DEALS,
    )
    sub = await q.spend_by_category(s, f, 2)
    charts["spend_by_subcategory"] = _spend(
        "spend_by_subcategory",
        "按品目（二级）成交金额",
        "bar",
        sub[:SUBCATEGORY_ROWS],
        Column("code", "品目编码"),
        Column("name", "品目"),
        NO_DEALS,
        f"金额最大的 {SUBCATEGORY_ROWS} 个二级品目" if len(sub) > SUBCATEGORY_ROWS else "",
    )
    charts["spend_by_region"] = _spend(
        "spend_by_region",
        "按地区成交金额",
        "bar",
        q.spend_by_region(deals, f.scope),
        Column("code", "地区代码"),
        Column("name", "地区"),
        NO_DEALS,
    )
    sme = q.sme_share(deals)
    charts["sme_share"] = Chart(
        "sme_share",
        "中小企业成交占比",
        "pie",
        [
            Column("key", "类型代码", shown=False),
            Column("name", "供应商类型"),
            Column("amount", MONEY, "money"),
            Column("deals", DEALS, "int"),
            Column("share", "金额占比（%）", "percent"),
        ],
        [
            {
                "key": r.key,
                "name": r.name,
                "amount": money_str(r.amount),
                "deals": r.deals,
                "share": _pct(r.share),
            }
            for r in sme
        ],
        "name",
        ["amount"],
        NO_DEALS,
        unit="元",
    )
    green, origin = await q.policy_shares(s, f)
    for key, title, head, shares in (
        ("green_share", "节能环保产品成交占比", "产品类型", green),
        ("origin_share", "本国产品与进口产品成交占比", "产地", origin),
    ):
        charts[key] = Chart(
            key,
            title,
            "pie",
            [
                Column("key", "类型代码", shown=False),
                Column("name", head),
                Column("amount", MONEY, "money"),
                Column("lines", "商品行数", "int"),
                Column("share", "金额占比（%）", "percent"),
            ],
            [
                {
                    "key": r.key,
                    "name": r.name,
                    "amount": money_str(r.amount),
                    "lines": r.lines,
                    "share": _pct(r.share),
                }
                for r in shares
            ],
            "name",
            ["amount"],
            "所选期间和地区内没有网上超市商品成交",
            "网上超市商品按下单时商品申报的认证与产地统计（2026年12月7日起下单的订单）",
            "元",
        )
    saved = await q.savings(s, f)
    charts["savings"] = Chart(
        "savings",
        "询价与竞价节约情况",
        "bar",
        [
            Column("kind", "方式代码", shown=False),
            Column("name", "方式"),
            Column("procedures", "成交项目数", "int"),
            Column("ceiling", "最高限价合计（元）", "money"),
            Column("awarded", "成交金额合计（元）", "money"),
            Column("saved", "节约金额（元）", "money"),
            Column("rate", "节约率（%）", "percent"),
        ],
        [
            {
                "kind": r.kind,
                "name": r.name,
                "procedures": r.procedures,
                "ceiling": money_str(r.ceiling),
                "awarded": money_str(r.awarded),
                "saved": money_str(r.saved),
                "rate": _pct(r.rate),
            }
            for r in saved
        ],
        "name",
        ["ceiling", "awarded"],
        "所选期间和地区内没有成交的询价或竞价项目",
        "节约金额 = 最高限价 − 成交金额；节约率按最高限价计算",
        "元",
    )
    if "cases_by_rule" in keys:
        for by, title, head in (
            ("rule", "按规则统计监管案件", "规则"),
            ("status", "按状态统计监管案件", "状态"),
        ):
            rows = await q.cases_by(s, f, by)
            charts[f"cases_by_{by}"] = Chart(
                f"cases_by_{by}",
                title,
                "bar" if by == "rule" else "pie",
                [
                    Column(by, f"{head}代码", shown=by == "rule"),
                    Column("name", head),
                    Column("count", "案件数", "int"),
                ],
                [{by: r.key, "name": r.name, "count": r.count} for r in rows],
                "name",
                ["count"],
                "所选期间和地区内没有新立的监管案件",
                "按立案日期统计",
                "件",
            )
    if "alerts_by_month" in keys:
        alerts = await q.alerts_by_month(s, f)
        kinds = q.alert_kinds(alerts)
        charts["alerts_by_month"] = Chart(
            "alerts_by_month",
            "价格预警（按月、按类型）",
            "stack",
            [month_col, *(Column(k, name, "int") for k, name in kinds), Column("total", "合计", "int")],
            [{"month": r.month, **r.counts, "total": r.total} for r in alerts],
            "month",
            [k for k, _ in kinds],
            "所选期间和地区内没有价格预警",
            "按预警产生日期统计",
            "条",
        )
    for key, title, unit, note, fetch in (
        (
            "time_to_confirm",
            "供应商确认用时",
            "小时",
            "从下单到供应商确认；按确认月份统计（网上超市、协议供货、定点服务）",
            q.time_to_confirm,
        ),
        ("time_to_pay", "验收后付款用时", "天", "从验收到付款；按付款月份统计", q.time_to_pay),
    ):
        if key not in keys:
            continue
        durations = await fetch(s, f)
        charts[key] = Chart(
            key,
            title,
            "line",
            [
                month_col,
                Column("orders", "订单数", "int"),
                Column("median", f"中位数（{unit}）", "number"),
                Column("p90", f"90 分位（{unit}）", "number"),
            ],
            [
                {"month": r.month, "orders": r.orders, "median": _pct(r.median), "p90": _pct(r.p90)}
                for r in durations
            ],
            "month",
            ["median", "p90"],
            "所选期间和地区内没有可统计的订单",
            note,
            unit,
        )
    out.charts = {k: charts[k] for k in keys}
    total = sum((Decimal(str(r["amount"])) for r in charts["spend_by_mode"].rows), Decimal("0.00"))
    ceiling = sum((r.ceiling for r in saved), Decimal("0.00"))
    saved_total = sum((r.saved for r in saved), Decimal("0.00"))
    out.summary = {
        "amount": money_str(total),
        "deals": len(deals),
        "sme_share": _pct(sme[0].share),
        "saved": money_str(saved_total),
        "saving_rate": _pct(q.percent(saved_total, ceiling)),
    }
    return out


# ---------------------------------------------------------------- CSV


def _cell(v: Value) -> str:
    # Every value is a code, a name of ours (品目, region, mode) or a number: none starts a formula,
    # except a negative number, which a spreadsheet reads as the number it is.
    return "" if v is None else str(v)


def csv_bytes(chart: Chart) -> bytes:
    """The chart's rows as CSV: UTF-8 with a BOM (so Excel reads the Chinese right), Chinese headers."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([c.header for c in chart.columns])
    for r in chart.rows:
        w.writerow([_cell(r.get(c.key)) for c in chart.columns])
    return buf.getvalue().encode("utf-8")


def csv_name(chart: Chart, f: Filter) -> str:
    return f"{chart.title}_{f.period.start.isoformat()}_{f.period.end.isoformat()}.csv"


def content_disposition(chart: Chart, f: Filter) -> str:
    """RFC 6266 / 5987: an ASCII fallback, and the real (Chinese) name in UTF-8."""
    ascii_name = f"statistics-{chart.key}-{f.period.start.isoformat()}-{f.period.end.isoformat()}.csv"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(csv_name(chart, f))}"


def display(column: Column, v: Value) -> str:
    """A value as a table cell shows it: money with thousands separators, a percentage with its sign,
    "—" for nothing."""
    if v is None:
        return "—"
    if column.kind == "money":
        return f"{Decimal(str(v)):,.2f}"
    if column.kind == "percent":
        return f"{v}%"
    return str(v)
