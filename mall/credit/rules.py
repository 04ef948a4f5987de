"""The credit formula, pure and versioned (docs/credit.md). A new version is a new constant set and a
new `VERSION`; a score always says which version computed it.

Version 2026.1, over the 365 days before the computation:
- start from 80 points;
- buyers' evaluations (1–5 at acceptance) add (average − 3) × 5 × min(n, 10) / 10, so −10 to +10,
  fully weighted from ten evaluations on;
- each objective event deducts its points (`EVENTS`);
- the result is kept within 0–100 and graded A (90+), B (75+), C (60+), D (below 60).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

VERSION = "2026.1"
WINDOW_DAYS = 365
BASE = 80
EVALUATION_WEIGHT = 5  # points per star above or below 3, at full confidence
EVALUATIONS_FOR_FULL_WEIGHT = 10


@dataclass(frozen=True)
class EventKind:
    label: str
    points: int  # deducted once per event


EVENTS: dict[str, EventKind] = {
    "confirm_lapsed": EventKind("逾期未确认订单（系统自动取消）", 2),
    "order_declined": EventKind("拒绝接单", 2),
    "award_declined": EventKind("放弃成交", 5),
    "award_lapsed": EventKind("逾期未确认成交", 5),
    "late_delivery": EventKind("逾期供货", 3),
    "supplier_cancelled": EventKind("供应商申请取消已确认订单", 3),
    "after_sales_claim": EventKind("售后申请（退货、换货、维修）", 1),
    "violation_case": EventKind("监管事项认定违规", 10),
}

GRADES = (("A", 90, "优秀"), ("B", 75, "良好"), ("C", 60, "一般"), ("D", 0, "较差"))


def grade_of(score: int) -> str:
    return next(g for g, floor, _ in GRADES if score >= floor)


GRADE_LABELS = {g: label for g, _, label in GRADES}


@dataclass(frozen=True)
class Score:
    score: int
    grade: str
    version: str
    evaluations: int
    average: str | None  # the evaluations' average, 2 decimals; None without any
    evaluation_points: str  # signed, 1 decimal
    deductions: dict[str, int] = field(default_factory=dict)  # kind -> points deducted
    counts: dict[str, int] = field(default_factory=dict)  # kind -> events

    def parts(self) -> dict[str, object]:
        return {
            "base": BASE,
            "evaluations": self.evaluations,
            "average": self.average,
            "evaluation_points": self.evaluation_points,
            "deductions": self.deductions,
            "counts": self.counts,
        }


def score(evaluations: Iterable[int], events: Iterable[str]) -> Score:
    """The score from the window's evaluations (1–5 each) and event kinds (unknown kinds: an error)."""
    stars = [int(x) for x in evaluations]
    if any(not 1 <= x <= 5 for x in stars):
        raise ValueError("an evaluation is 1 to 5")
    return score_of(len(stars), sum(stars), Counter(events))


def score_of(evaluations: int, stars: int, events: Mapping[str, int]) -> Score:
    """The same from totals: how many evaluations, their stars added up, and events counted by kind."""
    if evaluations < 0 or not evaluations <= stars <= 5 * evaluations:
        raise ValueError("evaluations are 1 to 5 stars each")
    counts = Counter({k: n for k, n in events.items() if n})
    unknown = set(counts) - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown credit events: {sorted(unknown)}")
    points = Decimal(BASE)
    average: Decimal | None = None
    evaluation_points = Decimal(0)
    if evaluations:
        average = Decimal(stars) / evaluations
        confidence = Decimal(min(evaluations, EVALUATIONS_FOR_FULL_WEIGHT)) / EVALUATIONS_FOR_FULL_WEIGHT
        evaluation_points = (average - 3) * EVALUATION_WEIGHT * confidence
        points += evaluation_points
    deductions = {k: EVENTS[k].points * n for k, n in sorted(counts.items())}
    points -= sum(deductions.values())
    value = int(max(Decimal(0), min(Decimal(100), points)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return Score(
        score=value,
        grade=grade_of(value),
        version=VERSION,
        evaluations=evaluations,
        average=None if average is None else str(average.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
        evaluation_points=f"{evaluation_points.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):+}",
        deductions=deductions,
        counts=dict(sorted(counts.items())),
    )
