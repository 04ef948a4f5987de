"""The 小微企业 price deduction (财库〔2020〕46号 第九条, 10%–20% by 财库〔2022〕19号): when the buyer enables
it, small and micro suppliers (by their 中小企业声明函 in force on the deadline's day) are ranked at their
price less the deduction; the deal is at the price offered; the result shows both prices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from bidding import award, close, offers, rules
from mall.core import clock
from mall.core.models import OrgKind
from tests.factories import World, movable_clock


def test_the_ranking_applies_the_deduction_only_to_whom_it_is_given() -> None:
    t0 = clock.now()
    quotes = [
        rules.Quote(supplier="small", amount=Decimal("10000.00"), at=t0, seq=1),
        rules.Quote(supplier="large", amount=Decimal("9500.00"), at=t0, seq=2),
    ]
    inquiry = rules.InquiryRules(ceiling=Decimal("60000.00"), min_valid=2)
    assert rules.inquiry_outcome(inquiry, quotes).ranked[0].supplier == "large"
    ranked = rules.inquiry_outcome(inquiry, quotes, {"small": Decimal("0.10")}).ranked
    assert [q.supplier for q in ranked] == ["small", "large"]
    assert rules.evaluated(ranked[0], {"small": Decimal("0.10")}) == Decimal("9000.00")
    assert rules.evaluated(ranked[1], {"small": Decimal("0.10")}) == Decimal("9500.00")
    # an equal evaluated price goes to the earlier offer
    tie = [
        rules.Bid(supplier="small", amount=Decimal("10000.00"), at=t0, seq=2),
        rules.Bid(supplier="large", amount=Decimal("9000.00"), at=t0, seq=1),
    ]
    assert [b.supplier for b in rules.ranking(tie, deductions={"small": Decimal("0.10")})] == [
        "large",
        "small",
    ]


@pytest.mark.parametrize("enabled", [True, False])
async def test_an_inquiry_awards_by_the_evaluated_price_at_the_offered_price(
    client: Any, world: World, enabled: bool
) -> None:
    small = world.who["supplier_x"]  # the factory's declaration: small
    large = await world.org("supplier_l", OrgKind.SUPPLIER, "丁大型企业", sme="large")
    medium = await world.org("supplier_m", OrgKind.SUPPLIER, "丙中型企业", sme="medium")
    with movable_clock() as advance:
        p = await world.procedure("inquiry", invited=[small, large, medium], sme_deduction=enabled)
        assert (p.sme_deduction is not None) is enabled
        await offers.quote(world.db, small, p.id, "10000.00")
        await offers.quote(world.db, large, p.id, "9500.00")
        await offers.quote(world.db, medium, p.id, "9400.00")  # medium: no deduction
        advance(timedelta(hours=2))
        await close.close(world.db, p.id)
        r = await client.get(f"/api/procedures/{p.id}", headers=world.h("buyer_a"))
        assert r.status_code == 200, r.text
        body = r.json()
        if enabled:
            order = await award.confirm_award(world.db, small, p.id)
            assert order.total_amount == Decimal("10000.00")  # the deal is at the price offered
    ranked = body["ranked"]
    if enabled:
        assert [(o["amount"], o["evaluated_amount"]) for o in ranked] == [
            ("10000.00", "9000.00"),
            ("9400.00", None),
            ("9500.00", None),
        ]
        assert ranked[0]["deduction"] == "小型企业，扣除10%"
    else:
        assert [o["amount"] for o in ranked] == ["9400.00", "9500.00", "10000.00"]
        assert all(o["evaluated_amount"] is None for o in ranked)


async def test_the_deduction_rate_is_a_setting_within_the_rule() -> None:
    from mall.core.settings import SettingsError, load_settings

    assert load_settings({"MALL_SME_PRICE_DEDUCTION": "0.2"}).sme_price_deduction == Decimal("0.2")
    for bad in ("0.06", "0.25"):
        with pytest.raises(SettingsError):
            load_settings({"MALL_SME_PRICE_DEDUCTION": bad})
