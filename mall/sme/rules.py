"""Classifying an enterprise by size (中小企业划型标准规定, 工信部联企业〔2011〕300号; the thresholds in
mall/data/sme-thresholds.csv), what a size means for the mall's policies, and the 小微企业 price
deduction (财库〔2020〕46号 第九条; raised to 10%–20% for goods and services by 财库〔2022〕19号)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

SIZES = {
    "medium": "中型企业",
    "small": "小型企业",
    "micro": "微型企业",
    "sme": "中小企业（未划型）",
    "large": "大型企业",
}
SME_SIZES = ("medium", "small", "micro", "sme")  # "sme": a declaration migrated from the former flag
SMALL_OR_MICRO = ("small", "micro")
INDICATORS = {"employees": "从业人员（人）", "revenue": "营业收入（万元）", "assets": "资产总额（万元）"}
VALID_DAYS = 366  # a declaration is renewed yearly
# OCDS partyScale codelist: micro, sme, large (https://standard.open-contracting.org/latest/en/schema/codelists/#party-scale)
OCDS_SCALE = {"micro": "micro", "small": "sme", "medium": "sme", "sme": "sme", "large": "large"}
DEDUCTION_MIN = Decimal("0.10")  # 财库〔2022〕19号: goods and services, 10% to 20%
DEDUCTION_MAX = Decimal("0.20")


@dataclass(frozen=True)
class Thresholds:
    industry: str
    label: str
    first: str
    second: str  # "" when the industry is judged by one indicator
    ceiling: tuple[Decimal, Decimal | None]
    medium: tuple[Decimal, Decimal | None]
    small: tuple[Decimal, Decimal | None]


def _d(v: str) -> Decimal | None:
    return Decimal(v) if v.strip() else None


@cache
def thresholds() -> dict[str, Thresholds]:
    path = Path(__file__).parent.parent / "data" / "sme-thresholds.csv"
    with path.open(encoding="utf-8") as f:
        out = {}
        for r in csv.DictReader(f):
            out[r["industry"]] = Thresholds(
                r["industry"],
                r["label"],
                r["first"],
                r["second"],
                (Decimal(r["ceiling_first"]), _d(r["ceiling_second"])),
                (Decimal(r["medium_first"]), _d(r["medium_second"])),
                (Decimal(r["small_first"]), _d(r["small_second"])),
            )
        return out


def classify(industry: str, values: dict[str, Decimal | None]) -> str:
    """ "large", "medium", "small" or "micro" for these figures; KeyError for an unknown industry,
    ValueError when a figure the industry is judged by is missing or negative."""
    t = thresholds()[industry]
    a = values.get(t.first)
    b = values.get(t.second) if t.second else None
    for name, v in ((t.first, a), (t.second, b)):
        if name and (v is None or v < 0):
            raise ValueError(f"{INDICATORS[name]} is required")
    assert a is not None

    def at_least(floor: tuple[Decimal, Decimal | None]) -> bool:
        return a >= floor[0] and (b is None or floor[1] is None or b >= floor[1])

    below_ceiling = a < t.ceiling[0] or (b is not None and t.ceiling[1] is not None and b < t.ceiling[1])
    if not below_ceiling:
        return "large"
    if at_least(t.medium):
        return "medium"
    if at_least(t.small):
        return "small"
    return "micro"


def is_sme(size: str | None) -> bool:
    return size in SME_SIZES


def deducted(amount: Decimal, size: str | None, rate: Decimal | None) -> Decimal:
    """The price a 小微企业's offer is evaluated at when the buyer enabled the deduction (`rate`, e.g.
    0.10); other offers, or no deduction, are evaluated at their own price."""
    if rate is None or size not in SMALL_OR_MICRO:
        return amount
    return (amount * (1 - rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
