"""The risk indicators (风险预警指标): one pure function per rule.

No I/O, no clock: every rule takes plain fact rows (`mall.supervision.facts` loads them) and the
parameters (`Params`, from the settings), and returns the hits it finds. A hit names its subject
(`subject_key`): running a rule again on the same facts gives the same keys, so the engine opens one
case per subject however often it runs. docs/risk-indicators.md lists every rule with its source.

Amounts are Decimal yuan; instants are timezone-aware datetimes. Evidence holds strings and numbers
only (it is stored as JSON and shown to the regulator and the party).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bidding.rules import abnormally_low

# The order statuses the rules read, as the facts carry them (mall.orders.models.OrderStatus: this
# module stays pure and does not import it; tests/mall/test_risk_rules.py checks they agree).
CANCELLED, CONFIRMED, SIGNED, RECEIVED, ACCEPTED = "cancelled", "confirmed", "signed", "received", "accepted"

# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Params:
    """What the rules compare with. The first ones are platform settings (mall.core.settings); the
    rest are this catalogue's defaults (docs/risk-indicators.md)."""

    open_tender_threshold: Decimal = Decimal("2000000")  # 公开招标数额标准 (split purchases)
    decentralized_threshold: Decimal = Decimal("1000000")  # 分散采购限额 (per purchase)
    min_participants: int = 3
    payment_due_days: int = 30
    # instants computed from the working-day calendar by the engine (the rules stay pure)
    now: datetime | None = None
    filing_cutoff: datetime | None = None  # confirmed / signed before: contract filing late
    acceptance_cutoff: datetime | None = None  # received before: acceptance late
    # this catalogue's own parameters
    near_threshold_share: Decimal = Decimal("0.05")  # "just below": within 5 % under the limit
    runner_up_gap: Decimal = Decimal("0.01")  # winner within 1 % of the runner-up
    rotation_months: int = 12
    rotation_min_procedures: int = 4
    rotation_max_winners: int = 2
    concentration_share: Decimal = Decimal("0.5")  # more than half of a buyer's year
    concentration_min_spend: Decimal = Decimal("200000")  # buyers spending less are not looked at
    market_margin: Decimal = Decimal("0.10")  # above the median by more than 10 %
    market_min_samples: int = 3
    acceptance_working_days: int = 10
    explain_working_days: int = 5


# ---------------------------------------------------------------- the rules and their sources


@dataclass(frozen=True)
class Rule:
    code: str
    name: str  # Chinese, for pages
    source: str  # the regulation or the mall's own rule it comes from
    party: str  # buyer | supplier | center: who explains
    definition: str  # Chinese, precise


SPLIT_PURCHASE = "split_purchase"
NEAR_THRESHOLD = "near_threshold"
FEW_PARTICIPANTS = "few_participants"
IDENTICAL_OFFERS = "identical_offers"
CLOSE_TO_RUNNER_UP = "close_to_runner_up"
ROTATING_WINNERS = "rotating_winners"
SUPPLIER_CONCENTRATION = "supplier_concentration"
ABOVE_MARKET = "above_market"
LATE_PAYMENT = "late_payment"
UNFILED_CONTRACT = "unfiled_contract"
LATE_ACCEPTANCE = "late_acceptance"
ABNORMALLY_LOW = "abnormally_low"
DECLINED_AWARD = "declined_award"
UNREVIEWED_DESIGNATION = "unreviewed_designation"


def _pct(d: Decimal) -> str:
    return f"{d * 100:g}%"


def catalogue(p: Params | None = None) -> list[Rule]:
    """Every rule, with its parameters written into its definition."""
    p = p or Params()
    pct = _pct
    return [
        Rule(
            SPLIT_PURCHASE,
            "疑似化整为零",
            "政府采购法实施条例第二十八条",
            "buyer",
            f"同一预算项目、同一财政年度内同一品目类（品目编码前7位）未取消订单累计金额超过公开招标数额标准"
            f" {p.open_tender_threshold:,.0f} 元",
        ),
        Rule(
            NEAR_THRESHOLD,
            "贴近分散采购限额",
            "分散采购限额标准（同一次下单中同一商品合并计算）",
            "buyer",
            f"一次下单中同一商品（品目+品牌+型号）合计金额低于分散采购限额 {p.decentralized_threshold:,.0f} 元，"
            f"但不低于限额的 {pct(1 - p.near_threshold_share)}",
        ),
        Rule(
            FEW_PARTICIPANTS,
            "参与供应商不足",
            "平台规则：询价、竞价至少3家有效参与",
            "buyer",
            f"已截止的询价或竞价中有效报价供应商少于 {p.min_participants} 家",
        ),
        Rule(
            IDENTICAL_OFFERS,
            "报价雷同",
            "政府采购法实施条例第七十四条（恶意串通情形）",
            "supplier",
            "同一项目中两家及以上供应商的最终有效报价金额完全相同；由报价在后的供应商说明",
        ),
        Rule(
            CLOSE_TO_RUNNER_UP,
            "成交价紧贴次低价",
            "政府采购法实施条例第七十四条（恶意串通情形）",
            "supplier",
            f"成交供应商报价低于第二名，且差额不超过第二名报价的 {pct(p.runner_up_gap)}",
        ),
        Rule(
            ROTATING_WINNERS,
            "固定供应商轮流成交",
            "政府采购法实施条例第七十四条（恶意串通情形）",
            "buyer",
            f"同一采购人近{p.rotation_months}个月内有成交供应商的询价、竞价不少于 {p.rotation_min_procedures} 个，"
            f"且全部由不超过 {p.rotation_max_winners} 家供应商成交",
        ),
        Rule(
            SUPPLIER_CONCENTRATION,
            "供应商集中度过高",
            "在线监管：供应商与同一采购人交易异常集中",
            "buyer",
            f"同一采购人一个自然年度在卖场的成交金额不少于 {p.concentration_min_spend:,.0f} 元，"
            f"其中一家供应商所占份额超过 {pct(p.concentration_share)}",
        ),
        Rule(
            ABOVE_MARKET,
            "高于监测市场价",
            "价格监测：同品牌同型号成交价中位数",
            "supplier",
            f"订单商品成交单价高于同品牌同型号成交价中位数的 {pct(1 + p.market_margin)}，"
            f"且中位数样本不少于 {p.market_min_samples} 个",
        ),
        Rule(
            LATE_PAYMENT,
            "逾期付款",
            "保障中小企业款项支付条例第九条",
            "buyer",
            f"向中小企业采购的订单验收后超过 {p.payment_due_days} 日仍未付款",
        ),
        Rule(
            UNFILED_CONTRACT,
            "合同逾期未备案",
            "政府采购法第四十七条；实施条例第五十条",
            "buyer",
            "合同签订（或尚未签订时自确认）之日起7个工作日内未备案",
        ),
        Rule(
            LATE_ACCEPTANCE,
            "逾期未验收",
            "政府采购法实施条例第四十五条；财库〔2016〕205号",
            "buyer",
            f"全部到货后 {p.acceptance_working_days} 个工作日内未完成验收",
        ),
        Rule(
            ABNORMALLY_LOW,
            "异常低价",
            "财库〔2026〕2号",
            "supplier",
            "报价低于有效报价平均值的50%、低于次低报价的55%或低于最高限价的45%",
        ),
        Rule(
            DECLINED_AWARD,
            "放弃成交或逾期未确认",
            "政府采购法实施条例第七十二条",
            "supplier",
            "成交供应商放弃成交或未在确认期限内确认，成交资格顺延",
        ),
        Rule(
            UNREVIEWED_DESIGNATION,
            "定点申请逾期未审核",
            "平台规则：定点申请审核时限",
            "center",
            "供应商的定点申请超过审核期限仍未审核",
        ),
    ]


RULE_NAMES: dict[str, str] = {r.code: r.name for r in catalogue()}


# ---------------------------------------------------------------- facts and hits


@dataclass(frozen=True)
class Hit:
    rule: str
    subject_key: str
    buyer_org_id: uuid.UUID | None
    supplier_org_id: uuid.UUID | None
    party_org_id: uuid.UUID
    region_code: str
    summary: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class LineFact:
    line_no: int
    item_name: str
    category_code: str
    brand_key: str
    model_key: str
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class OrderFact:
    order_id: uuid.UUID
    order_no: str
    checkout_id: uuid.UUID
    buyer_org_id: uuid.UUID
    supplier_org_id: uuid.UUID
    region_code: str
    status: str
    total: Decimal
    supplier_is_sme: bool = True
    confirmed_at: datetime | None = None
    signed_at: datetime | None = None
    received_at: datetime | None = None
    accepted_at: datetime | None = None
    lines: tuple[LineFact, ...] = ()


@dataclass(frozen=True)
class SplitGroup:
    """Non-cancelled purchases of one 品目 class on one budget line (a year's project)."""

    buyer_org_id: uuid.UUID
    region_code: str
    budget_line_id: uuid.UUID
    project_code: str
    fiscal_year: int
    category_class: str
    orders: int
    total: Decimal


@dataclass(frozen=True)
class SpendRow:
    """A buyer's non-cancelled mall orders from one supplier in one calendar year."""

    buyer_org_id: uuid.UUID
    region_code: str
    supplier_org_id: uuid.UUID
    year: int
    total: Decimal


@dataclass(frozen=True)
class Offer:
    supplier_org_id: uuid.UUID
    amount: Decimal
    seq: int


@dataclass(frozen=True)
class ProcedureFact:
    """A procedure whose offers are open (closed, awarded, confirmed or failed), its valid offers
    in rank order (lowest first; ties by acceptance order)."""

    procedure_id: uuid.UUID
    number: str
    kind: str
    status: str
    buyer_org_id: uuid.UUID
    region_code: str
    ceiling: Decimal
    closed_at: datetime | None
    ranked: tuple[Offer, ...] = ()
    awarded_supplier_id: uuid.UUID | None = None
    passed_over: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class WinFact:
    """One procedure with a winner, for the rotation rule."""

    procedure_id: uuid.UUID
    number: str
    buyer_org_id: uuid.UUID
    region_code: str
    winner: uuid.UUID
    at: datetime


@dataclass(frozen=True)
class DesignationFact:
    designation_id: uuid.UUID
    supplier_org_id: uuid.UUID
    region_code: str
    category_code: str
    review_due_at: datetime | None
    center_org_id: uuid.UUID | None  # the center that reviews it (None: no center covers it)


@dataclass(frozen=True)
class MarketPrice:
    median: Decimal
    samples: int


def _money(d: Decimal) -> str:
    return f"{d:.2f}"


def _when(d: datetime | None) -> str:
    return d.isoformat() if d else ""


# ---------------------------------------------------------------- order rules


def split_purchase(groups: Iterable[SplitGroup], p: Params) -> list[Hit]:
    """实施条例第二十八条: one budget project's purchases of one class over the open-tender threshold."""
    out = []
    for g in groups:
        if g.total > p.open_tender_threshold:
            out.append(
                Hit(
                    SPLIT_PURCHASE,
                    f"{g.budget_line_id}:{g.category_class}",
                    g.buyer_org_id,
                    None,
                    g.buyer_org_id,
                    g.region_code,
                    f"预算项目 {g.project_code}（{g.fiscal_year}年）品目类 {g.category_class} 累计采购"
                    f" {g.total:,.2f} 元（{g.orders} 笔），超过公开招标数额标准",
                    {
                        "project_code": g.project_code,
                        "fiscal_year": g.fiscal_year,
                        "category_class": g.category_class,
                        "orders": g.orders,
                        "total": _money(g.total),
                        "threshold": _money(p.open_tender_threshold),
                    },
                )
            )
    return out


def near_threshold(orders: Sequence[OrderFact], p: Params) -> list[Hit]:
    """A checkout's same item (品目 + brand + model, across its orders) just below the 分散采购限额.
    `orders` must hold every non-cancelled order of each checkout it names."""
    low = p.decentralized_threshold * (1 - p.near_threshold_share)
    sums: dict[tuple[uuid.UUID, str, str, str], Decimal] = defaultdict(Decimal)
    first: dict[tuple[uuid.UUID, str, str, str], OrderFact] = {}
    names: dict[tuple[uuid.UUID, str, str, str], str] = {}
    for o in orders:
        if o.status == CANCELLED:
            continue
        for ln in o.lines:
            key = (o.checkout_id, ln.category_code, ln.brand_key, ln.model_key)
            sums[key] += ln.amount
            first.setdefault(key, o)
            names.setdefault(key, ln.item_name)
    out = []
    for key, total in sums.items():
        if low <= total < p.decentralized_threshold:
            o = first[key]
            out.append(
                Hit(
                    NEAR_THRESHOLD,
                    f"{key[0]}:{key[1]}:{key[2]}:{key[3]}"[:200],
                    o.buyer_org_id,
                    o.supplier_org_id,
                    o.buyer_org_id,
                    o.region_code,
                    f"订单 {o.order_no} 等一次下单中「{names[key]}」合计 {total:,.2f} 元，贴近分散采购限额",
                    {
                        "order_no": o.order_no,
                        "item_name": names[key],
                        "category_code": key[1],
                        "total": _money(total),
                        "threshold": _money(p.decentralized_threshold),
                    },
                )
            )
    return out


def above_market(
    orders: Iterable[OrderFact], market: dict[tuple[str, str], MarketPrice], p: Params
) -> list[Hit]:
    """An order line's unit price above the monitored median × (1 + margin), with enough samples."""
    out = []
    for o in orders:
        if o.status == CANCELLED:
            continue
        for ln in o.lines:
            m = market.get((ln.brand_key, ln.model_key))
            if m is None or m.samples < p.market_min_samples:
                continue
            limit = m.median * (1 + p.market_margin)
            if ln.unit_price > limit:
                out.append(
                    Hit(
                        ABOVE_MARKET,
                        f"{o.order_id}:{ln.line_no}",
                        o.buyer_org_id,
                        o.supplier_org_id,
                        o.supplier_org_id,
                        o.region_code,
                        f"订单 {o.order_no} 第{ln.line_no}行「{ln.item_name}」单价 {ln.unit_price:,.2f} 元，"
                        f"高于市场中位价 {m.median:,.2f} 元",
                        {
                            "order_no": o.order_no,
                            "line_no": ln.line_no,
                            "item_name": ln.item_name,
                            "unit_price": _money(ln.unit_price),
                            "median": _money(m.median),
                            "samples": m.samples,
                            "limit": _money(limit),
                        },
                    )
                )
    return out


def late_payment(orders: Iterable[OrderFact], p: Params) -> list[Hit]:
    """保障中小企业款项支付条例: an SME's accepted order unpaid more than `payment_due_days` after acceptance."""
    assert p.now is not None
    out = []
    for o in orders:
        if o.status != ACCEPTED or not o.supplier_is_sme or o.accepted_at is None:
            continue
        days = (p.now - o.accepted_at).days
        if days > p.payment_due_days:
            out.append(
                Hit(
                    LATE_PAYMENT,
                    str(o.order_id),
                    o.buyer_org_id,
                    o.supplier_org_id,
                    o.buyer_org_id,
                    o.region_code,
                    f"订单 {o.order_no} 验收后 {days} 日未向中小企业付款",
                    {
                        "order_no": o.order_no,
                        "accepted_at": _when(o.accepted_at),
                        "days": days,
                        "total": _money(o.total),
                    },
                )
            )
    return out


def unfiled_contract(orders: Iterable[OrderFact], p: Params) -> list[Hit]:
    """Not filed within 7 working days of signing (or of confirmation while not signed by both)."""
    assert p.filing_cutoff is not None
    out = []
    for o in orders:
        since = o.confirmed_at if o.status == CONFIRMED else o.signed_at if o.status == SIGNED else None
        if since is not None and since < p.filing_cutoff:
            out.append(
                Hit(
                    UNFILED_CONTRACT,
                    str(o.order_id),
                    o.buyer_org_id,
                    o.supplier_org_id,
                    o.buyer_org_id,
                    o.region_code,
                    f"订单 {o.order_no} 合同逾期未备案",
                    {"order_no": o.order_no, "since": _when(since), "status": o.status},
                )
            )
    return out


def late_acceptance(orders: Iterable[OrderFact], p: Params) -> list[Hit]:
    """Everything received, not accepted within `acceptance_working_days` working days."""
    assert p.acceptance_cutoff is not None
    out = []
    for o in orders:
        if o.status == RECEIVED and o.received_at is not None and o.received_at < p.acceptance_cutoff:
            out.append(
                Hit(
                    LATE_ACCEPTANCE,
                    str(o.order_id),
                    o.buyer_org_id,
                    o.supplier_org_id,
                    o.buyer_org_id,
                    o.region_code,
                    f"订单 {o.order_no} 到货后逾期未验收",
                    {"order_no": o.order_no, "received_at": _when(o.received_at)},
                )
            )
    return out


def supplier_concentration(rows: Iterable[SpendRow], p: Params) -> list[Hit]:
    """One supplier with more than `concentration_share` of a buyer's year in the mall."""
    years: dict[tuple[uuid.UUID, int], list[SpendRow]] = defaultdict(list)
    for r in rows:
        years[(r.buyer_org_id, r.year)].append(r)
    out = []
    for (buyer, year), group in years.items():
        total = sum((r.total for r in group), Decimal(0))
        if total < p.concentration_min_spend or total <= 0:
            continue
        for r in group:
            share = r.total / total
            if share > p.concentration_share:
                out.append(
                    Hit(
                        SUPPLIER_CONCENTRATION,
                        f"{buyer}:{year}:{r.supplier_org_id}",
                        buyer,
                        r.supplier_org_id,
                        buyer,
                        r.region_code,
                        f"{year}年在卖场采购 {total:,.2f} 元，其中一家供应商占 {share * 100:.1f}%",
                        {
                            "year": year,
                            "buyer_total": _money(total),
                            "supplier_total": _money(r.total),
                            "share": f"{share:.4f}",
                        },
                    )
                )
    return out


# ---------------------------------------------------------------- procedure rules


def few_participants(procs: Iterable[ProcedureFact], p: Params) -> list[Hit]:
    out = []
    for f in procs:
        n = len({o.supplier_org_id for o in f.ranked})
        if n < p.min_participants:
            out.append(
                Hit(
                    FEW_PARTICIPANTS,
                    str(f.procedure_id),
                    f.buyer_org_id,
                    None,
                    f.buyer_org_id,
                    f.region_code,
                    f"项目 {f.number} 有效报价供应商仅 {n} 家",
                    {"number": f.number, "kind": f.kind, "participants": n, "minimum": p.min_participants},
                )
            )
    return out


def identical_offers(procs: Iterable[ProcedureFact]) -> list[Hit]:
    out = []
    for f in procs:
        by_amount: dict[Decimal, list[Offer]] = defaultdict(list)
        for o in f.ranked:
            by_amount[o.amount].append(o)
        for amount, same in by_amount.items():
            suppliers = {o.supplier_org_id for o in same}
            if len(suppliers) < 2:
                continue
            later = max(same, key=lambda o: o.seq)
            out.append(
                Hit(
                    IDENTICAL_OFFERS,
                    f"{f.procedure_id}:{_money(amount)}",
                    f.buyer_org_id,
                    later.supplier_org_id,
                    later.supplier_org_id,
                    f.region_code,
                    f"项目 {f.number} 有 {len(suppliers)} 家供应商报价同为 {amount:,.2f} 元",
                    {
                        "number": f.number,
                        "amount": _money(amount),
                        "suppliers": sorted(str(s) for s in suppliers),
                    },
                )
            )
    return out


def close_to_runner_up(procs: Iterable[ProcedureFact], p: Params) -> list[Hit]:
    out = []
    for f in procs:
        if f.awarded_supplier_id is None or len(f.ranked) < 2:
            continue
        winner = next((o for o in f.ranked if o.supplier_org_id == f.awarded_supplier_id), None)
        if winner is None:
            continue
        others = [o for o in f.ranked if o.supplier_org_id != winner.supplier_org_id]
        if not others:
            continue
        runner = min(others, key=lambda o: (o.amount, o.seq))
        if winner.amount < runner.amount and runner.amount - winner.amount <= runner.amount * p.runner_up_gap:
            out.append(
                Hit(
                    CLOSE_TO_RUNNER_UP,
                    str(f.procedure_id),
                    f.buyer_org_id,
                    winner.supplier_org_id,
                    winner.supplier_org_id,
                    f.region_code,
                    f"项目 {f.number} 成交价 {winner.amount:,.2f} 元与第二名 {runner.amount:,.2f} 元相差不足"
                    f" {p.runner_up_gap * 100:g}%",
                    {
                        "number": f.number,
                        "winner_amount": _money(winner.amount),
                        "runner_up_amount": _money(runner.amount),
                    },
                )
            )
    return out


def abnormally_low_offers(procs: Iterable[ProcedureFact]) -> list[Hit]:
    out = []
    for f in procs:
        amounts = [o.amount for o in f.ranked]
        for o in f.ranked:
            reasons = abnormally_low(o.amount, amounts, f.ceiling)
            if reasons:
                out.append(
                    Hit(
                        ABNORMALLY_LOW,
                        f"{f.procedure_id}:{o.supplier_org_id}",
                        f.buyer_org_id,
                        o.supplier_org_id,
                        o.supplier_org_id,
                        f.region_code,
                        f"项目 {f.number} 报价 {o.amount:,.2f} 元异常低于其他报价或最高限价",
                        {
                            "number": f.number,
                            "amount": _money(o.amount),
                            "ceiling": _money(f.ceiling),
                            "reasons": list(reasons),
                            "won": o.supplier_org_id == f.awarded_supplier_id,
                        },
                    )
                )
    return out


def declined_award(procs: Iterable[ProcedureFact]) -> list[Hit]:
    out = []
    for f in procs:
        for s in dict.fromkeys(f.passed_over):
            out.append(
                Hit(
                    DECLINED_AWARD,
                    f"{f.procedure_id}:{s}",
                    f.buyer_org_id,
                    s,
                    s,
                    f.region_code,
                    f"项目 {f.number} 成交供应商放弃成交或逾期未确认",
                    {"number": f.number, "kind": f.kind},
                )
            )
    return out


def rotating_winners(wins: Iterable[WinFact], p: Params) -> list[Hit]:
    """Per buyer, its procedures with a winner in the last `rotation_months` months (30 days each):
    at least `rotation_min_procedures` of them and at most `rotation_max_winners` distinct winners."""
    assert p.now is not None
    since = p.now - timedelta(days=30 * p.rotation_months)
    per_buyer: dict[uuid.UUID, list[WinFact]] = defaultdict(list)
    for w in wins:
        if since <= w.at <= p.now:
            per_buyer[w.buyer_org_id].append(w)
    out = []
    for buyer, group in per_buyer.items():
        winners = {w.winner for w in group}
        if len(group) >= p.rotation_min_procedures and len(winners) <= p.rotation_max_winners:
            group.sort(key=lambda w: (w.at, w.number))
            out.append(
                Hit(
                    ROTATING_WINNERS,
                    f"{buyer}:" + ",".join(sorted(str(s) for s in winners)),
                    buyer,
                    group[-1].winner,
                    buyer,
                    group[-1].region_code,
                    f"近{p.rotation_months}个月 {len(group)} 个询价、竞价项目均由 {len(winners)} 家供应商成交",
                    {
                        "procedures": [w.number for w in group],
                        "winners": sorted(str(s) for s in winners),
                        "sequence": [str(w.winner) for w in group],
                    },
                )
            )
    return out


# ---------------------------------------------------------------- designations


def unreviewed_designation(apps: Iterable[DesignationFact], p: Params) -> list[Hit]:
    assert p.now is not None
    out = []
    for d in apps:
        if d.review_due_at is None or d.review_due_at >= p.now or d.center_org_id is None:
            continue
        out.append(
            Hit(
                UNREVIEWED_DESIGNATION,
                str(d.designation_id),
                None,
                d.supplier_org_id,
                d.center_org_id,
                d.region_code,
                f"品目 {d.category_code} 的定点申请超过审核期限未审核",
                {"category_code": d.category_code, "review_due_at": _when(d.review_due_at)},
            )
        )
    return out
