"""The price monitoring rules, pure: the facts of one live listing in, its findings out.

No database, no clock: the sweep (mall.pricewatch.sweep) gathers the facts and says what day it is.

- above_market: the price is more than `above_market_share` (10%) above the median of the mall's own
  deal prices for the same brand and model, when that median rests on at least `min_samples` deals;
- abnormally_low: the price is below `low_share` (half) of that median (same sample rule);
- above_ecommerce: the price is above the supplier's own declared e-commerce price (电商比价);
- stale_ecommerce: the declared e-commerce price was captured more than `stale_days` (90) ago. A
  listing without a declared e-commerce price is not an alert: declaring one is voluntary;
- above_agreement: the price is above the lowest agreement price of the same brand and model in an
  agreement in force (the listing rule refuses it when the price is set; an agreement made later,
  or a lower agreement price added since, can still put a live listing above it);
- repeated_raise: the price was raised (a change to a higher price) more than `max_raises` (once)
  within `raise_window_days` (90).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

# The kinds, as mall.pricewatch.models.AlertKind names them (kept here so the rules import no tables).
ABOVE_MARKET = "above_market"
ABOVE_ECOMMERCE = "above_ecommerce"
STALE_ECOMMERCE = "stale_ecommerce"
ABOVE_AGREEMENT = "above_agreement"
REPEATED_RAISE = "repeated_raise"
ABNORMALLY_LOW = "abnormally_low"
KINDS = (ABOVE_MARKET, ABOVE_ECOMMERCE, STALE_ECOMMERCE, ABOVE_AGREEMENT, REPEATED_RAISE, ABNORMALLY_LOW)

STALE_DAYS = 90
WINDOW_DAYS = 90


@dataclass(frozen=True)
class Limits:
    above_market_share: Decimal = Decimal("0.10")
    min_samples: int = 3
    low_share: Decimal = Decimal("0.5")
    stale_days: int = STALE_DAYS
    raise_window_days: int = WINDOW_DAYS
    max_raises: int = 1


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Market:
    """The mall's deal prices for the listing's brand and model (mall.pricewatch.stats)."""

    samples: int
    p25: Decimal
    median: Decimal
    p75: Decimal


@dataclass(frozen=True)
class Facts:
    price: Decimal
    today: date
    ecommerce_price: Decimal | None = None
    ecommerce_captured_on: date | None = None
    ecommerce_url: str = ""
    market: Market | None = None
    agreement_price: Decimal | None = None
    agreement_number: str = ""
    raises: int = 0  # price changes to a higher price within the window


@dataclass(frozen=True)
class Finding:
    kind: str
    reference: Decimal | None
    detail: dict[str, Any] = field(default_factory=dict)


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _share(value: Decimal) -> str:
    return f"{value * 100:.1f}"


def _market_detail(m: Market) -> dict[str, Any]:
    return {"samples": m.samples, "p25": _money(m.p25), "median": _money(m.median), "p75": _money(m.p75)}


def findings(facts: Facts, limits: Limits = DEFAULT_LIMITS) -> list[Finding]:
    """Everything this listing's price breaks, in the order of AlertKind."""
    out: list[Finding] = []
    price = facts.price
    market = facts.market
    if market is not None and market.samples >= limits.min_samples and market.median > 0:
        over = (price - market.median) / market.median
        if over > limits.above_market_share:
            detail = _market_detail(market) | {"above_share": _share(over)}
            out.append(Finding(ABOVE_MARKET, market.median, detail))
    if facts.ecommerce_price is not None and price > facts.ecommerce_price:
        detail = {
            "url": facts.ecommerce_url,
            "captured_on": facts.ecommerce_captured_on.isoformat() if facts.ecommerce_captured_on else "",
            "above_share": _share((price - facts.ecommerce_price) / facts.ecommerce_price)
            if facts.ecommerce_price > 0
            else "",
        }
        out.append(Finding(ABOVE_ECOMMERCE, facts.ecommerce_price, detail))
    if facts.ecommerce_price is not None and facts.ecommerce_captured_on is not None:
        age = (facts.today - facts.ecommerce_captured_on).days
        if age > limits.stale_days:
            detail = {
                "url": facts.ecommerce_url,
                "captured_on": facts.ecommerce_captured_on.isoformat(),
                "age_days": age,
            }
            out.append(Finding(STALE_ECOMMERCE, facts.ecommerce_price, detail))
    if facts.agreement_price is not None and price > facts.agreement_price:
        detail = {"agreement_number": facts.agreement_number}
        out.append(Finding(ABOVE_AGREEMENT, facts.agreement_price, detail))
    if facts.raises > limits.max_raises:
        detail = {"raises": facts.raises, "window_days": limits.raise_window_days}
        out.append(Finding(REPEATED_RAISE, None, detail))
    if (
        market is not None
        and market.samples >= limits.min_samples
        and price < market.median * limits.low_share
    ):
        detail = _market_detail(market) | {"below_share": _share((market.median - price) / market.median)}
        out.append(Finding(ABNORMALLY_LOW, market.median, detail))
    return out


def quantiles(ordered: list[Decimal]) -> tuple[Decimal, Decimal, Decimal]:
    """p25, median and p75 of sorted values, linearly interpolated between the nearest ranks (the
    "inclusive" method: the smallest value is p0, the largest p100), rounded to the cent."""
    if not ordered:
        raise ValueError("no values")

    def at(q: Decimal) -> Decimal:
        pos = q * (len(ordered) - 1)
        low = int(pos)
        high = min(low + 1, len(ordered) - 1)
        frac = pos - low
        value = ordered[low] + (ordered[high] - ordered[low]) * frac
        return value.quantize(Decimal("0.01"))

    return at(Decimal("0.25")), at(Decimal("0.5")), at(Decimal("0.75"))
