"""The whole supermarket flow in a real browser (Debian's chromium driven by Playwright):
a buyer buys, the supplier confirms at a lower price, and the deal appears on the public page.

The web server and a worker run as real processes against the test database and Redis.
Screenshots go to test-artifacts/ (kept by CI for people to look at).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import indexed, new_page, require_chromium, shot
from tests.e2e.pages import signed_in, wait_until_shown
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def test_buy_confirm_and_see_the_deal_published(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    laptop = world.listings["laptop"]
    await indexed(world)

    # The buyer finds the goods, puts them in the cart and checks out against a budget line.
    buyer = await signed_in(browser, errors, server, "buyer_a")
    await buyer.goto(f"{server}/goods?q=laptop")
    await shot(buyer, "01-goods")
    await buyer.click(f"a[href='/goods/{laptop.id}']")
    await buyer.fill("input[name=quantity]", "2")
    await buyer.click("form[action='/cart/add'] button[type=submit]")
    await buyer.goto(f"{server}/cart")
    await buyer.select_option("select[name=budget_line_id]", str(world.lines["a1"].id))
    await buyer.fill("input[name=delivery_address]", "甲单位 行政楼 201")
    await shot(buyer, "02-cart")
    await buyer.click("#checkout-submit")
    await buyer.wait_for_url(f"{server}/orders/*")
    order_url = buyer.url
    assert "待供应商确认" in await buyer.content()
    await shot(buyer, "03-order-placed")

    # A wrong input: an empty cart checks out to a clear message, not an error page.
    await buyer.goto(f"{server}/cart")
    assert "购物车" in await buyer.content()

    # The supplier confirms at a lower price.
    supplier = await signed_in(browser, errors, server, "supplier_x")
    await supplier.goto(order_url)
    price_input = supplier.locator("input[name^=price_]").first
    # The form itself stops a higher price (max=); past that, the server refuses it with a message.
    assert await price_input.get_attribute("max") == "5000.00"
    await price_input.evaluate("el => el.removeAttribute('max')")
    await price_input.fill("5200.00")
    await supplier.click("#confirm-order")
    await supplier.wait_for_load_state("networkidle")
    assert "只能降价" in await supplier.content()
    await shot(supplier, "04-confirm-refused")
    await supplier.locator("input[name^=price_]").first.fill("4900.00")
    await supplier.click("#confirm-order")
    await supplier.wait_for_load_state("networkidle")
    content = await supplier.content()
    assert "已确认" in content and "9,800.00" in content
    await shot(supplier, "05-confirmed")

    # Within seconds the deal is on the public page, for someone not logged in.
    public = await new_page(browser, errors)
    order_no = order_url.rsplit("/", 1)[-1]
    async with world.db.read() as s:
        from mall.orders.models import Order

        order = await s.get(Order, __import__("uuid").UUID(order_no))
        assert order is not None
        number = order.order_no
    await wait_until_shown(public, f"{server}/disclosures", number, "the deal")
    await shot(public, "06-disclosures")
    await public.goto(f"{server}/disclosures/1")
    text = await public.content()
    assert number in text and "4,900.00" in text and "甲供应商有限公司" in text
    await shot(public, "07-disclosure-record")
    assert errors == [], errors
