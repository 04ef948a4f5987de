"""The catalogue in a real browser: a buyer searches in Chinese, compares suppliers and adds to the
cart; a procurement center rejects a listing and the supplier sees why; a frozen listing vanishes.

The web server and a worker run as real processes; the worker keeps the search index in step.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import indexed, require_chromium, shot
from tests.e2e.pages import signed_in
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def test_search_compare_and_add_to_cart(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    cheap = await world.listing(
        "m437x",
        "supplier_x",
        "4599.00",
        reference="4699.00",
        category="A02010105",
        name="联想 启天M437 台式计算机",
    )
    dear = await world.listing(
        "m437y",
        "supplier_y",
        "4650.00",
        reference="4699.00",
        category="A02010105",
        name="联想 启天M437 台式计算机 商用",
    )
    # the same brand and model from the other supplier: the factory names them by key, so align them
    async with world.db.write() as tx:
        from catalog.models import Listing

        for x in (cheap, dear):
            row = await tx.session.get(Listing, x.id)
            assert row is not None
            row.brand, row.spec_model, row.brand_key, row.model_key = "联想", "启天M437", "联想", "启天M437"
    from search_index import sync

    async with world.db.write() as tx:
        sync.stage(tx, [cheap.id, dear.id])
    await indexed(world)

    buyer = await signed_in(browser, errors, server, "buyer_a")
    await buyer.goto(f"{server}/goods")
    await buyer.fill("form[role=search] input[name=q]", "台式电脑")  # a synonym of 台式计算机
    await buyer.press("form[role=search] input[name=q]", "Enter")
    await buyer.wait_for_load_state("networkidle")
    results = buyer.locator("#results .goods-card")
    assert await results.count() == 2
    assert "台式计算机</em>" in await buyer.inner_html("#results")  # the matched words are highlighted
    assert "2" in await buyer.inner_text("#facet-brand")
    await shot(buyer, "11-search")

    # sort by price, cheapest first
    await buyer.click("text=价格从低到高")
    await buyer.wait_for_load_state("networkidle")
    assert "4,599.00" in await results.first.inner_text()

    # open it: the other supplier's offer is side by side
    await results.first.locator(".g-name a").click()
    await buyer.wait_for_load_state("networkidle")
    compare = await buyer.inner_text("#compare")
    assert "甲供应商有限公司" in compare and "乙供应商有限公司" in compare and "最低" in compare
    assert "首次报价" in await buyer.inner_text("#price-history")
    await shot(buyer, "12-detail-compare")
    await buyer.click("form[action='/cart/add'] button[type=submit]")
    await buyer.goto(f"{server}/cart")
    assert "联想 启天M437 台式计算机" in await buyer.content()
    await shot(buyer, "13-cart")

    # a wrong filter is a message on the page, not an error page
    await buyer.goto(f"{server}/goods?q=台式机&price_min=abc")
    assert "最低价格式不正确" in await buyer.content()
    assert errors == [], errors


async def test_center_rejects_and_regulator_freezes(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    pending = await world.listing(
        "ups",
        "supplier_y",
        "3200.00",
        reference="3300.00",
        category="A02061504",
        name="山特 UPS 不间断电源 C3K",
        live=False,
    )
    center = await signed_in(browser, errors, server, "center")
    await center.goto(f"{server}/center/listings")
    row = center.locator("#review-table tr", has_text="山特 UPS 不间断电源 C3K")
    assert await row.count() == 1
    await row.locator("summary", has_text="驳回").click()
    # a rejection without a reason is refused with a message
    await row.locator("button", has_text="确认驳回").click()
    await center.wait_for_load_state("networkidle")
    assert "驳回时请填写原因" in await center.content()
    row = center.locator("#review-table tr", has_text="山特 UPS 不间断电源 C3K")
    await row.locator("summary", has_text="驳回").click()
    await row.locator("input[name=reason]").fill("参考价来源未注明，请补充品牌官网链接")
    await shot(center, "14-review-queue")
    await row.locator("button", has_text="确认驳回").click()
    await center.wait_for_load_state("networkidle")
    assert "已驳回" in await center.content()

    supplier = await signed_in(browser, errors, server, "supplier_y")
    await supplier.goto(f"{server}/supplier/listings?status=rejected")
    text = await supplier.inner_text("main")
    assert "山特 UPS 不间断电源 C3K" in text and "参考价来源未注明" in text
    await shot(supplier, "15-supplier-rejected")
    await supplier.click(f"a[href='/supplier/listings/{pending.id}/edit']")
    await supplier.fill("input[name=reference_source]", "山特官网 https://www.santak.com.cn")
    await supplier.click("button[name=submit][value='1']")
    await supplier.wait_for_load_state("networkidle")
    assert "已重新提交审核" in await supplier.content()

    # the regulator freezes a live listing: it leaves the search within seconds
    await indexed(world)
    desk = world.listings["desk"]
    regulator = await signed_in(browser, errors, server, "regulator")
    await regulator.goto(f"{server}/goods?q=商品desk")
    assert await regulator.locator(f"#results a[href='/goods/{desk.id}']").count() == 1
    await regulator.goto(f"{server}/goods/{desk.id}")
    await regulator.fill("#mod-reason", "价格异常，冻结核查")
    await regulator.click("#moderation button[value=freeze]")
    await regulator.wait_for_load_state("networkidle")
    assert "已冻结" in await regulator.content()
    frozen_at = time.monotonic()
    while (
        await regulator.locator(f"#results a[href='/goods/{desk.id}']").count()
        or regulator.url.find("/goods?") < 0
    ):
        assert time.monotonic() - frozen_at < 10, "a frozen listing stayed in the search"
        await regulator.goto(f"{server}/goods?q=商品desk")
    await shot(regulator, "16-frozen-gone")
    assert errors == [], errors
