"""A newcomer's first ten minutes, in a real browser: the home page as a visitor, each way of buying,
a search, a public inquiry notice; then as a buyer the 工作台, a checkout refused on a budget line
whose 品目 scope does not cover the goods and made on one that does; then as the supplier the
工作台 showing the new order, confirmed from there, and each side told who acts next.

Screenshots go to test-artifacts/first-*.png."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import indexed, login, new_page, require_chromium, shot
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def test_a_newcomers_first_ten_minutes(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    laptop = world.listings["laptop"]
    await world.budget("desks", "buyer_a", "80000.00", scope="A05010000")  # furniture only
    await world.budget("it", "buyer_a", "90000.00", scope="A02010000 A02020000")  # IT and office
    inquiry = await world.procedure("inquiry", "公开询价：台式计算机", hours=2)
    await world.meeting_room("supplier_y")
    await indexed(world)

    # --- a visitor: the home page, each mode's public page, a search, the inquiry's notice
    page = await new_page(browser, errors)
    await page.goto(f"{server}/")
    await shot(page, "first-01-home")
    for label in ("网上超市", "协议供货", "定点服务", "在线询价", "反向竞价"):
        await page.goto(f"{server}/")
        await page.click(f".modes a.mode:has-text('{label}')")
        await page.wait_for_load_state("networkidle")
        assert page.url != f"{server}/" and "登录后" not in await page.inner_text("h1"), label
    await page.goto(f"{server}/")
    await page.fill(".hero-search input[name=q]", "laptop")
    await page.click(".hero-search button[type=submit]")
    await page.wait_for_load_state("networkidle")
    assert "q=laptop" in page.url
    assert await page.locator(f"a[href='/goods/{laptop.id}']").count() > 0
    await shot(page, "first-02-search")
    await page.goto(f"{server}/procedures?kind=inquiry")
    await page.click(f"text={inquiry.title}")
    await page.wait_for_load_state("networkidle")
    notice = await page.content()
    assert inquiry.number in notice and "当前环节：<strong>报价中</strong>" in notice
    assert "等待<strong>供应商</strong>提交密封报价" in notice
    await shot(page, "first-03-inquiry-notice")
    await page.context.close()

    # --- the buyer: lands on the 工作台, buys, is refused a line that may not pay for a laptop
    buyer = await new_page(browser, errors)
    await login(buyer, server, "buyer_a")
    assert buyer.url.endswith("/workbench")
    assert "待我处理" in await buyer.content()
    await shot(buyer, "first-04-buyer-workbench")
    await buyer.goto(f"{server}/goods/{laptop.id}")
    await buyer.fill("input[name=quantity]", "1")
    await buyer.click("form[action='/cart/add'] button[type=submit]")
    await buyer.goto(f"{server}/cart")
    select = buyer.locator("select[name=budget_line_id]")
    assert await select.input_value() == ""  # nothing chosen for the buyer
    options = await select.inner_text()
    assert "（限 家具）" in options and "（限 信息化设备、办公设备）" in options
    await select.select_option(str(world.lines["desks"].id))
    await buyer.click("#checkout-submit")
    await buyer.wait_for_load_state("networkidle")
    refused = await buyer.content()
    assert "只能用于品目 A05010000 家具" in refused and laptop.name in refused  # the cart is kept
    await shot(buyer, "first-05-scope-refused")
    await buyer.locator("select[name=budget_line_id]").select_option(str(world.lines["it"].id))
    await buyer.click("#checkout-submit")
    await buyer.wait_for_url(f"{server}/orders/*")
    order_url = buyer.url
    placed = await buyer.content()
    assert "等待<strong>供应商</strong>确认订单" in placed
    await shot(buyer, "first-06-order-placed")

    # --- the supplier: its 工作台 shows the new order first, with the auto-cancel date; it confirms
    supplier = await new_page(browser, errors)
    await login(supplier, server, "supplier_x")
    assert supplier.url.endswith("/workbench")
    yours = await supplier.inner_text("#yours")
    assert "轮到您" in yours and "确认订单" in yours and "期限" in yours
    await shot(supplier, "first-07-supplier-workbench")
    await supplier.click(f"#yours a[href='{order_url.removeprefix(server)}']")
    await supplier.wait_for_load_state("networkidle")
    await supplier.click("#confirm-order")
    await supplier.wait_for_load_state("networkidle")
    confirmed = await supplier.content()
    assert "当前环节：<strong>待双方签署合同</strong>" in confirmed and "以本单位证书签署合同" in confirmed
    await shot(supplier, "first-08-confirmed")
    # it signs the e-contract with its own certificate; then it waits for the buyer
    await supplier.click("form[action$='/sign'] button[type=submit]")
    await supplier.wait_for_load_state("networkidle")
    assert "等待<strong>采购人</strong>" in await supplier.content()

    # --- back to the buyer: its 工作台 now asks it to sign the contract too
    await buyer.goto(f"{server}/workbench")
    assert "签署电子合同" in await buyer.inner_text("#yours")
    await shot(buyer, "first-09-buyer-next")
    assert errors == [], errors
