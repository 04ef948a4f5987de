"""Price monitoring in a real browser: the daily sweep flags a laptop priced above the mall's deal
median; the center finds the alert in its list, opens it, sees the market evidence and freezes the
listing with a reason; the alert and the product page show it frozen.

The web server and a worker run as real processes against the test database and Redis.
"""

from __future__ import annotations

from typing import Any

import pytest

from mall.pricewatch import sweep
from tests.e2e.conftest import require_chromium, shot
from tests.e2e.pages import signed_in
from tests.factories import World
from tests.mall.test_pricewatch import market

require_chromium()
pytestmark = pytest.mark.browser


async def test_the_center_freezes_a_listing_from_a_price_alert(
    server: str, browser: Any, world: World
) -> None:
    errors: list[str] = []
    laptop = world.listings["laptop"]  # 5,000.00 from supplier_x
    await market(world, "4000.00", "4200.00", "4400.00")  # median 4,200.00: the laptop is 19% above
    await sweep.run(world.db, world.settings)

    center = await signed_in(browser, errors, server, "center")
    await center.goto(f"{server}/oversight/price-alerts")
    row = center.locator("#price-alert-table tr", has_text=laptop.name)
    assert "高于市场中位价" in await row.inner_text()
    assert "5,000.00" in await row.inner_text() and "4,200.00" in await row.inner_text()
    await shot(center, "61-price-alerts")

    # Filtering by another kind leaves the list empty, with its empty state.
    await center.select_option("#f-kind", "abnormally_low")
    await center.click("form.filters button[type=submit]")
    await center.wait_for_load_state("networkidle")
    assert "没有符合条件的价格预警" in await center.content()
    await center.goto(f"{server}/oversight/price-alerts")

    await center.locator("#price-alert-table tr", has_text=laptop.name).locator("a", has_text="处理").click()
    await center.wait_for_load_state("networkidle")
    facts = await center.locator("#alert-facts").inner_text()
    assert "3 笔" in facts and "4,200.00" in facts

    await center.fill("#freeze-reason", "售价高出本卖场成交中位价 19%，冻结待核")
    await center.click("form[action$='/freeze'] button[type=submit]")
    await center.wait_for_load_state("networkidle")
    content = await center.content()
    assert "商品已冻结" in content
    assert await center.locator("#alert-status").inner_text() == "已冻结商品"
    await shot(center, "62-price-alert-frozen")

    await center.goto(f"{server}/goods/{laptop.id}")
    assert "已冻结" in await center.content()
    assert errors == [], errors
