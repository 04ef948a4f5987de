"""Prices in a real browser: the supplier raises a price while the goods sit in a buyer's cart; the
cart shows the new price, checkout is refused until the buyer accepts it, then goes through at the
accepted price. A large rise with a new reference waits for the center and changes nothing for the
buyer meanwhile.

The web server and a worker run as real processes against the test database and Redis.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import require_chromium, shot
from tests.e2e.pages import signed_in
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def change_price(supplier: Any, server: str, name: str, price: str, reference: str = "") -> str:
    """The supplier asks for a new price (and reference) on its listings page; the page it lands on."""
    await supplier.goto(f"{server}/supplier/listings")
    row = supplier.locator("tr", has_text=name)
    await row.locator("summary", has_text="调价").click()
    await row.locator("input[name=price]").fill(price)
    if reference:
        await row.locator("input[name=reference_price]").fill(reference)
    await row.locator("form[action$='/price'] button[type=submit]").click()
    await supplier.wait_for_load_state("networkidle")
    return str(await supplier.content())


async def test_the_cart_shows_a_risen_price_and_the_buyer_accepts_it(
    server: str, browser: Any, world: World
) -> None:
    errors: list[str] = []
    desk = world.listings["desk"]  # 800.00 (reference 800.00), from supplier_y
    printer = world.listings["printer"]  # 1,200.00 (reference 1,200.00), from supplier_x

    buyer = await signed_in(browser, errors, server, "buyer_a")
    for listing in (desk, printer):
        await buyer.goto(f"{server}/goods/{listing.id}")
        await buyer.fill("input[name=quantity]", "2")
        await buyer.click("form[action='/cart/add'] button[type=submit]")
        await buyer.wait_for_load_state("networkidle")
        assert "已加入购物车" in await buyer.content()

    # One supplier raises its price within the reviewed reference (applies at once) ...
    supplier = await signed_in(browser, errors, server, "supplier_y")
    assert "价格已调整" in await change_price(supplier, server, desk.name, "840.00")

    # ... the other asks for ten times the price with a new reference: it waits for the center.
    other = await signed_in(browser, errors, server, "supplier_x")
    content = await change_price(other, server, printer.name, "12000.00", reference="12500.00")
    assert "已提交采购中心审核" in content and "待审核的调价" in content and "12,000.00" in content
    await shot(other, "31-price-waiting-for-review")

    # The buyer's cart shows the risen price; the printer's price has not moved.
    await buyer.goto(f"{server}/cart")
    risen = buyer.locator("tr", has_text=desk.name)
    assert "价格已上涨" in await risen.inner_text()
    assert "800.00" in await risen.inner_text() and "840.00" in await risen.inner_text()
    assert "价格已上涨" not in await buyer.locator("tr", has_text=printer.name).inner_text()
    await shot(buyer, "32-cart-price-risen")

    # Checking out anyway is refused with the old and the new price; nothing is ordered.
    await buyer.select_option("select[name=budget_line_id]", str(world.lines["a1"].id))
    await buyer.click("#checkout-submit")
    await buyer.wait_for_load_state("networkidle")
    assert buyer.url.endswith("/cart")
    content = await buyer.content()
    assert "商品价格已变动" in content and "800.00" in content and "840.00" in content
    await shot(buyer, "33-checkout-refused")

    # The buyer accepts the new price and checks out: charged what it accepted.
    await buyer.locator("tr", has_text=desk.name).locator("button.accept-price").click()
    await buyer.wait_for_load_state("networkidle")
    assert "已确认新价格" in await buyer.content()
    assert "价格已上涨" not in await buyer.locator("tr", has_text=desk.name).inner_text()
    await buyer.select_option("select[name=budget_line_id]", str(world.lines["a1"].id))
    await buyer.click("#checkout-submit")
    await buyer.wait_for_url(f"{server}/orders")  # two suppliers: two orders
    content = await buyer.content()
    assert "下单成功" in content and "1,680.00" in content and "2,400.00" in content
    await shot(buyer, "34-ordered-at-the-accepted-price")
    assert errors == [], errors
