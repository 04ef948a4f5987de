"""The price monitoring rules, pure: each finding with a hit and a near miss."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from mall.pricewatch import rules
from mall.pricewatch.models import AlertKind
from mall.pricewatch.rules import Facts, Limits, Market, findings, quantiles

TODAY = date(2026, 12, 7)
MARKET = Market(samples=5, p25=Decimal("900.00"), median=Decimal("1000.00"), p75=Decimal("1100.00"))


def kinds(facts: Facts, limits: Limits = rules.DEFAULT_LIMITS) -> set[str]:
    return {f.kind for f in findings(facts, limits)}


def test_the_kinds_are_the_tables_kinds() -> None:
    assert set(rules.KINDS) == {k.value for k in AlertKind}


def test_above_the_market_median_by_more_than_the_share() -> None:
    [hit] = findings(Facts(Decimal("1100.01"), TODAY, market=MARKET))
    assert hit.kind == AlertKind.ABOVE_MARKET
    assert hit.reference == Decimal("1000.00")
    assert hit.detail["samples"] == 5 and hit.detail["median"] == "1000.00"
    assert kinds(Facts(Decimal("1100.00"), TODAY, market=MARKET)) == set()  # exactly 10%: not more


def test_the_market_rule_needs_enough_samples() -> None:
    thin = Market(samples=2, p25=Decimal(1000), median=Decimal(1000), p75=Decimal(1000))
    assert kinds(Facts(Decimal("5000.00"), TODAY, market=thin)) == set()
    assert kinds(Facts(Decimal("100.00"), TODAY, market=thin)) == set()
    enough = Market(samples=3, p25=Decimal(1000), median=Decimal(1000), p75=Decimal(1000))
    assert kinds(Facts(Decimal("5000.00"), TODAY, market=enough)) == {AlertKind.ABOVE_MARKET}


def test_the_share_is_a_setting() -> None:
    strict = Limits(above_market_share=Decimal("0.05"))
    assert kinds(Facts(Decimal("1060.00"), TODAY, market=MARKET), strict) == {AlertKind.ABOVE_MARKET}
    assert kinds(Facts(Decimal("1060.00"), TODAY, market=MARKET)) == set()


def test_abnormally_low_below_half_the_median() -> None:
    [hit] = findings(Facts(Decimal("499.99"), TODAY, market=MARKET))
    assert hit.kind == AlertKind.ABNORMALLY_LOW and hit.reference == Decimal("1000.00")
    assert kinds(Facts(Decimal("500.00"), TODAY, market=MARKET)) == set()


def test_above_its_own_declared_ecommerce_price() -> None:
    facts = Facts(
        Decimal("1000.01"),
        TODAY,
        ecommerce_price=Decimal("1000.00"),
        ecommerce_captured_on=TODAY - timedelta(days=3),
        ecommerce_url="https://shop.example.com/item/1",
    )
    [hit] = findings(facts)
    assert hit.kind == AlertKind.ABOVE_ECOMMERCE and hit.reference == Decimal("1000.00")
    assert hit.detail["url"] == "https://shop.example.com/item/1"
    same = Facts(Decimal("1000.00"), TODAY, ecommerce_price=Decimal("1000.00"), ecommerce_captured_on=TODAY)
    assert kinds(same) == set()


def test_a_stale_ecommerce_price_but_not_a_missing_one() -> None:
    old = Facts(
        Decimal("900.00"),
        TODAY,
        ecommerce_price=Decimal("1000.00"),
        ecommerce_captured_on=TODAY - timedelta(days=91),
    )
    [hit] = findings(old)
    assert hit.kind == AlertKind.STALE_ECOMMERCE and hit.detail["age_days"] == 91
    edge = Facts(
        Decimal("900.00"),
        TODAY,
        ecommerce_price=Decimal("1000.00"),
        ecommerce_captured_on=TODAY - timedelta(days=90),
    )
    assert kinds(edge) == set()
    assert kinds(Facts(Decimal("900.00"), TODAY)) == set()  # none declared: no alert


def test_above_the_agreement_price() -> None:
    [hit] = findings(
        Facts(Decimal("3000.01"), TODAY, agreement_price=Decimal("3000.00"), agreement_number="XY-1")
    )
    assert hit.kind == AlertKind.ABOVE_AGREEMENT and hit.detail["agreement_number"] == "XY-1"
    assert kinds(Facts(Decimal("3000.00"), TODAY, agreement_price=Decimal("3000.00"))) == set()


def test_raised_more_than_once_in_the_window() -> None:
    [hit] = findings(Facts(Decimal("100.00"), TODAY, raises=2))
    assert hit.kind == AlertKind.REPEATED_RAISE and hit.detail["raises"] == 2
    assert kinds(Facts(Decimal("100.00"), TODAY, raises=1)) == set()


def test_several_findings_at_once() -> None:
    facts = Facts(
        Decimal("2000.00"),
        TODAY,
        ecommerce_price=Decimal("1500.00"),
        ecommerce_captured_on=TODAY - timedelta(days=200),
        market=MARKET,
        agreement_price=Decimal("1800.00"),
        raises=3,
    )
    assert kinds(facts) == {
        AlertKind.ABOVE_MARKET,
        AlertKind.ABOVE_ECOMMERCE,
        AlertKind.STALE_ECOMMERCE,
        AlertKind.ABOVE_AGREEMENT,
        AlertKind.REPEATED_RAISE,
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["10"], ("10.00", "10.00", "10.00")),
        (["10", "20"], ("12.50", "15.00", "17.50")),
        (["1", "2", "3", "4", "5"], ("2.00", "3.00", "4.00")),
        (["100", "200", "300", "400"], ("175.00", "250.00", "325.00")),
    ],
)
def test_quantiles(values: list[str], expected: tuple[str, str, str]) -> None:
    assert quantiles([Decimal(v) for v in values]) == tuple(Decimal(e) for e in expected)
