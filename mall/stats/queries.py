"""The statistics as plain rows, each for a period and a region scope (mall.stats.period.Filter).

A deal is an order confirmed or later and not cancelled (a voided contract is a cancelled order), dated
by its confirmation. Months are local (Asia/Shanghai) months computed here from a streamed projection
of (instant, value): the same on SQLite and PostgreSQL, with no dialect's date functions. Sums are
added up in the database as integer 分 (orders' amounts are stored so), exactly.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

import mall.supervision.models as supervision
from bidding.models import KIND_LABELS, Procedure, ProcedureStatus
from catalog.categories import name_of
from mall.core.money import from_cents
from mall.core.regions import in_scope, region_name, scope_prefix
from mall.ledger.disclosure import MODE_LABELS
from mall.orders.models import Order, OrderLine, OrderStatus
from mall.pricewatch.models import ALERT_KIND_LABELS, PriceAlert
from mall.sme.rules import SME_SIZES
from mall.stats.period import Filter, month_of

S = OrderStatus
DEAL_STATUSES = (S.CONFIRMED, S.SIGNED, S.CONTRACTED, S.SHIPPED, S.RECEIVED, S.ACCEPTED, S.PAID)
# The modes where the supplier confirms a placed order (inquiries and auctions are confirmed at award).
CONFIRMING_MODES = ("supermarket", "agreement", "designated")
CATEGORY_LEVELS = {1: 3, 2: 5}  # 品目 level → length of its code's prefix (A02 设备, A0201 信息化设备)
ZERO = Decimal("0.00")
STREAM_BATCH = 2000


def deal_clause(f: Filter) -> ColumnElement[bool]:
    return and_(
        Order.status.in_(DEAL_STATUSES),
        Order.confirmed_at >= f.period.since,
        Order.confirmed_at < f.period.until,
        _in(Order.region_code, f.scope),
    )


async def _stream(s: AsyncSession, stmt: Any) -> Any:
    """The rows of `stmt` fetched in batches (a long period's projection is not held twice)."""
    return await s.stream(stmt.execution_options(yield_per=STREAM_BATCH))


def _in(column: Any, scope: str | None) -> ColumnElement[bool]:
    return in_scope(column, scope)


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """`part` of `whole` in per cent, two decimals; None when `whole` is nothing."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- spend and deals


@dataclass(frozen=True)
class SpendRow:
    key: str  # the mode, the 品目 prefix, the region code or the month
    name: str
    amount: Decimal
    deals: int


@dataclass(frozen=True)
class DealRow:
    mode: str
    region_code: str
    is_sme: bool  # by the supplier's declaration in force when the order was made (mall.sme)
    confirmed_at: datetime
    amount: Decimal


async def deal_rows(s: AsyncSession, f: Filter) -> list[DealRow]:
    """Every deal of the period and scope, as the few columns the statistics need (streamed)."""
    stmt = select(
        Order.mode,
        Order.region_code,
        Order.supplier_scale.in_(SME_SIZES),
        Order.confirmed_at,
        type_coerce(Order.total_amount, BigInteger),
    ).where(deal_clause(f))
    return [
        DealRow(str(mode), str(region), bool(sme), at, from_cents(int(cents)))
        async for mode, region, sme, at, cents in await _stream(s, stmt)
    ]


def _grouped(rows: Iterable[tuple[str, Decimal]]) -> dict[str, tuple[Decimal, int]]:
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    counts: Counter[str] = Counter()
    for key, amount in rows:
        totals[key] += amount
        counts[key] += 1
    return {k: (totals[k], counts[k]) for k in totals}


def spend_by_mode(deals: list[DealRow]) -> list[SpendRow]:
    """Every mode, in the order of the modes (those without deals too)."""
    grouped = _grouped((d.mode, d.amount) for d in deals)
    keys = list(MODE_LABELS) + sorted(set(grouped) - set(MODE_LABELS))
    return [
        SpendRow(k, MODE_LABELS.get(k, k), *grouped.get(k, (ZERO, 0)))
        for k in keys
        if k in grouped or k in MODE_LABELS
    ]


def region_level(scope: str | None) -> int:
    """How many digits of a region code the breakdown of `scope` keeps: a province's prefectures (4),
    a prefecture's counties (6), the whole country's prefectures (4)."""
    if scope is None:
        return 4
    return min(len(scope_prefix(scope)) + 2, 6) if scope_prefix(scope) != "-" else 6


def spend_by_region(deals: list[DealRow], scope: str | None) -> list[SpendRow]:
    """Spend per region one level under the scope, the largest first."""
    n = region_level(scope)
    grouped = _grouped((d.region_code[:n].ljust(6, "0"), d.amount) for d in deals)
    rows = [SpendRow(k, region_name(k) or k, a, c) for k, (a, c) in grouped.items()]
    return sorted(rows, key=lambda r: (-r.amount, r.key))


def spend_by_month(deals: list[DealRow], months: list[str]) -> list[SpendRow]:
    """Every month of the period, in order (months without deals too)."""
    grouped = _grouped((month_of(d.confirmed_at), d.amount) for d in deals)
    return [SpendRow(m, m, *grouped.get(m, (ZERO, 0))) for m in months]


async def spend_by_category(s: AsyncSession, f: Filter, level: int = 1) -> list[SpendRow]:
    """Spend per 品目 at `level` (1: A02 设备; 2: A0201 信息化设备), from the order lines, the largest first."""
    length = CATEGORY_LEVELS[level]
    # Inlined constants: PostgreSQL matches GROUP BY expressions by text, and bind parameters differ.
    prefix = func.substr(OrderLine.category_code, literal_column("1"), literal_column(str(length)))
    stmt: Select[Any] = (
        select(
            prefix.label("prefix"),
            func.sum(type_coerce(OrderLine.amount, BigInteger)),
            func.count(func.distinct(Order.id)),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(deal_clause(f))
        .group_by(prefix)
    )
    rows = [
        SpendRow(str(p), name_of(str(p).ljust(9, "0")) or str(p), from_cents(int(c)), int(n))
        for p, c, n in (await s.execute(stmt)).all()
    ]
    return sorted(rows, key=lambda r: (-r.amount, r.key))


@dataclass(frozen=True)
class SmeRow:
    key: str  # sme | large
    name: str
    amount: Decimal
    deals: int
    share: Decimal | None  # per cent of the spend


def sme_share(deals: list[DealRow]) -> list[SmeRow]:
    grouped = _grouped(("sme" if d.is_sme else "large", d.amount) for d in deals)
    total = sum((a for a, _ in grouped.values()), ZERO)
    out = []
    for key, name in (("sme", "中小企业"), ("large", "大型企业")):
        amount, n = grouped.get(key, (ZERO, 0))
        out.append(SmeRow(key, name, amount, n, percent(amount, total)))
    return out


@dataclass(frozen=True)
class ShareRow:
    key: str
    name: str
    amount: Decimal
    lines: int
    share: Decimal | None  # per cent of the spend


async def policy_shares(s: AsyncSession, f: Filter) -> tuple[list[ShareRow], list[ShareRow]]:
    """Green and origin shares of the spend on listed goods: the order lines that kept what their
    listing declared when ordered (catalog.policy; lines of listings ordered from 2026-12-07 on)."""
    certified = case((OrderLine.green != "", literal_column("'green'")), else_=literal_column("'other'"))
    stmt: Select[Any] = (
        select(
            certified.label("green"),
            OrderLine.origin,
            func.sum(type_coerce(OrderLine.amount, BigInteger)),
            func.count(),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(deal_clause(f), OrderLine.origin != "")
        .group_by(certified, OrderLine.origin)
    )
    green: dict[str, list[Decimal | int]] = {}
    origin: dict[str, list[Decimal | int]] = {}
    for g, o, cents, n in (await s.execute(stmt)).all():
        for into, key in ((green, str(g)), (origin, str(o))):
            at = into.setdefault(key, [ZERO, 0])
            at[0] = Decimal(at[0]) + from_cents(int(cents))
            at[1] = int(at[1]) + int(n)
    total = sum((Decimal(a) for a, _ in green.values()), ZERO)

    def rows(grouped: dict[str, list[Decimal | int]], names: tuple[tuple[str, str], ...]) -> list[ShareRow]:
        out = []
        for key, name in names:
            amount, n = grouped.get(key, [ZERO, 0])
            out.append(ShareRow(key, name, Decimal(amount), int(n), percent(Decimal(amount), total)))
        return out

    return (
        rows(green, (("green", "节能、环境标志认证产品"), ("other", "其他商品"))),
        rows(origin, (("domestic", "本国产品"), ("imported", "进口产品"))),
    )


# ---------------------------------------------------------------- savings


@dataclass(frozen=True)
class SavingsRow:
    kind: str  # inquiry | auction
    name: str
    procedures: int
    ceiling: Decimal  # the sum of the procedures' 最高限价
    awarded: Decimal  # the sum of their deal amounts
    saved: Decimal
    rate: Decimal | None  # per cent of the ceiling


async def savings(s: AsyncSession, f: Filter) -> list[SavingsRow]:
    """Inquiries and auctions that ended in a deal of the period (the winner confirmed, the order not
    voided): their ceilings against their deal amounts."""
    stmt = (
        select(
            Procedure.kind,
            func.count(Procedure.id),
            func.sum(type_coerce(Procedure.ceiling, BigInteger)),
            func.sum(type_coerce(Procedure.awarded_amount, BigInteger)),
        )
        .join(Order, Order.id == Procedure.order_id)
        .where(
            Procedure.status == ProcedureStatus.CONFIRMED,
            Procedure.awarded_amount.is_not(None),
            deal_clause(f),
        )
        .group_by(Procedure.kind)
    )
    found = {str(k): (int(n), from_cents(int(c)), from_cents(int(a))) for k, n, c, a in await s.execute(stmt)}
    out = []
    for kind, name in KIND_LABELS.items():
        n, ceiling, awarded = found.get(kind, (0, ZERO, ZERO))
        out.append(
            SavingsRow(
                kind, name, n, ceiling, awarded, ceiling - awarded, percent(ceiling - awarded, ceiling)
            )
        )
    return out


# ---------------------------------------------------------------- cases and price alerts


@dataclass(frozen=True)
class CountRow:
    key: str
    name: str
    count: int


def _rule_labels() -> dict[str, str]:
    # The rules' names, once the supervision area names them; else the rule's code is shown.
    labels = getattr(supervision, "RULE_LABELS", None)
    return dict(labels) if isinstance(labels, dict) else {}


async def cases_by(s: AsyncSession, f: Filter, by: str) -> list[CountRow]:
    """Oversight cases opened in the period, counted by "rule" or by "status", the most first."""
    case = supervision.OversightCase
    column = case.rule if by == "rule" else case.status
    labels = _rule_labels() if by == "rule" else supervision.CASE_STATUS_LABELS
    stmt = (
        select(column, func.count(case.id))
        .where(
            case.opened_at >= f.period.since,
            case.opened_at < f.period.until,
            _in(case.region_code, f.scope),
        )
        .group_by(column)
    )
    rows = [CountRow(str(k), labels.get(str(k), str(k)), int(n)) for k, n in await s.execute(stmt)]
    return sorted(rows, key=lambda r: (-r.count, r.key))


@dataclass(frozen=True)
class AlertMonthRow:
    month: str
    counts: dict[str, int]  # kind → price alerts opened that month

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def alerts_by_month(s: AsyncSession, f: Filter) -> list[AlertMonthRow]:
    """Price alerts opened per month of the period and per kind (every kind, every month)."""
    stmt = select(PriceAlert.opened_at, PriceAlert.kind).where(
        PriceAlert.opened_at >= f.period.since,
        PriceAlert.opened_at < f.period.until,
        _in(PriceAlert.region_code, f.scope),
    )
    counts: Counter[tuple[str, str]] = Counter()
    async for at, kind in await _stream(s, stmt):
        counts[(month_of(at), str(kind))] += 1
    kinds = list(ALERT_KIND_LABELS) + sorted({k for _, k in counts} - set(ALERT_KIND_LABELS))
    return [AlertMonthRow(m, {k: counts[(m, k)] for k in kinds}) for m in f.period.months()]


def alert_kinds(rows: list[AlertMonthRow]) -> list[tuple[str, str]]:
    kinds = rows[0].counts if rows else ALERT_KIND_LABELS
    return [(k, ALERT_KIND_LABELS.get(k, k)) for k in kinds]


# ---------------------------------------------------------------- times to confirm and to pay


@dataclass(frozen=True)
class DurationRow:
    month: str
    orders: int
    median: Decimal | None  # hours (confirm) or days (pay), one decimal
    p90: Decimal | None


def quantile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted values: the smallest value with at least q of them at or below it."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def _one(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _durations(
    pairs: Iterable[tuple[datetime, timedelta]], months: list[str], unit: timedelta
) -> list[DurationRow]:
    by_month: dict[str, list[float]] = defaultdict(list)
    for at, took in pairs:
        by_month[month_of(at)].append(took / unit)
    out = []
    for m in months:
        values = sorted(by_month.get(m, []))
        if not values:
            out.append(DurationRow(m, 0, None, None))
        else:
            out.append(
                DurationRow(m, len(values), _one(statistics.median(values)), _one(quantile(values, 0.9)))
            )
    return out


async def time_to_confirm(s: AsyncSession, f: Filter) -> list[DurationRow]:
    """Hours from placing to the supplier's confirmation, per month of confirmation (orders the supplier
    confirms: the supermarket, agreements and designated services; cancelled later or not)."""
    stmt = select(Order.confirmed_at, Order.placed_at).where(
        Order.mode.in_(CONFIRMING_MODES),
        Order.confirmed_at >= f.period.since,
        Order.confirmed_at < f.period.until,
        _in(Order.region_code, f.scope),
    )
    rows = [(c, c - p) async for c, p in await _stream(s, stmt)]
    return _durations(rows, f.period.months(), timedelta(hours=1))


async def time_to_pay(s: AsyncSession, f: Filter) -> list[DurationRow]:
    """Days from acceptance to payment, per month of payment."""
    stmt = select(Order.paid_at, Order.accepted_at).where(
        Order.paid_at >= f.period.since,
        Order.paid_at < f.period.until,
        Order.accepted_at.is_not(None),
        _in(Order.region_code, f.scope),
    )
    rows = [(p, p - a) async for p, a in await _stream(s, stmt)]
    return _durations(rows, f.period.months(), timedelta(days=1))
