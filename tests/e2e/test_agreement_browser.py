"""Ordering under a framework agreement and from a designated service supplier, in a real browser:
the buyer orders a car (a price above the agreement price is refused with a message), the supplier
confirms at a lower price, and the deal appears on the public page with mode 协议供货; then the
buyer orders a vehicle service from a designated supplier found by region and 品目."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from catalog import designated as dd
from mall.orders.models import Order
from tests.catalog.test_agreements import vehicles
from tests.e2e.conftest import new_page, require_chromium, shot
from tests.e2e.pages import signed_in, wait_until_shown
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def test_order_a_car_under_an_agreement_and_a_designated_service(
    server: str, browser: Any, world: World
) -> None:
    errors: list[str] = []
    a = await vehicles(world)

    buyer = await signed_in(browser, errors, server, "buyer_a")
    await buyer.goto(f"{server}/agreements")
    await buyer.click(f"a[href='/agreements/{a.id}']")
    await buyer.wait_for_load_state("networkidle")
    passat = buyer.locator("#products tr", has_text="帕萨特").locator("input[type=radio]")
    await passat.check()
    await buyer.select_option("#o-line", str(world.lines["a1"].id))  # none is chosen for the buyer
    await buyer.fill("#o-price", "190000.00")  # above the agreement price
    await buyer.click("#place-order")
    await buyer.wait_for_load_state("networkidle")
    assert "高于协议价" in await buyer.content()
    await shot(buyer, "agreement-01-refused")
    await buyer.locator("#products tr", has_text="帕萨特").locator("input[type=radio]").check()
    await buyer.fill("#o-price", "")
    await buyer.fill("#o-qty", "1")
    await buyer.click("#place-order")
    await buyer.wait_for_url(f"{server}/orders/*")
    content = await buyer.content()
    assert "协议供货" in content and "待供应商确认" in content and "189,900.00" in content
    await shot(buyer, "agreement-02-placed")
    order_url = buyer.url

    supplier = await signed_in(browser, errors, server, "supplier_x")
    await supplier.goto(order_url)
    await supplier.locator("input[name^=price_]").first.fill("186500.00")  # 议价
    await supplier.click("#confirm-order")
    await supplier.wait_for_load_state("networkidle")
    content = await supplier.content()
    assert "已确认" in content and "186,500.00" in content
    await shot(supplier, "agreement-03-confirmed")

    async with world.db.read() as s:
        order = await s.get(Order, uuid.UUID(order_url.rsplit("/", 1)[-1]))
        assert order is not None and order.mode == "agreement"
        number = order.order_no
    public = await new_page(browser, errors)
    await wait_until_shown(public, f"{server}/disclosures?mode=agreement", number, "the agreement deal")
    assert "协议供货" in await public.content()
    await shot(public, "agreement-04-published")

    # A designated vehicle-repair supplier, found by region and 品目, and a service order.
    await dd.designate(
        world.db,
        world.who["center"],
        await _code(world, "supplier_y"),
        "C23120301",
        "410100",
        [dd.PriceItemDraft("小保养", "次", "380.00"), dd.PriceItemDraft("维修工时", "小时", "120.00")],
    )
    await buyer.goto(f"{server}/designated?region=410100&category=C23120301")
    card = buyer.locator(".supplier-card", has_text="乙供应商有限公司")
    await card.locator("tr", has_text="小保养").locator("input").fill("2")
    await card.locator("tr", has_text="维修工时").locator("input").fill("3")
    await card.locator("select[name=budget_line_id]").select_option(str(world.lines["a1"].id))
    await card.locator("button[type=submit]").click()
    await buyer.wait_for_url(f"{server}/orders/*")
    content = await buyer.content()
    assert "定点服务" in content and "1,120.00" in content
    await shot(buyer, "designated-01-ordered")
    assert errors == [], errors


async def _code(world: World, name: str) -> str:
    from mall.core.models import Organization

    async with world.db.read() as s:
        org = await s.get(Organization, world.who[name].org_id)
        assert org is not None
        return org.credit_code
