"""An auction in two browsers: two suppliers in one room see each other's bids live, anonymously;
an inquiry page never shows another supplier's quote before the deadline."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import expect

from mall.core.models import OrgKind
from tests.e2e.conftest import require_chromium, shot
from tests.e2e.pages import signed_in
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def publish(world: World, kind: str, **kw: Any) -> Any:
    third = await world.org(
        f"third_{kind}", OrgKind.SUPPLIER, "第三家受邀供应商"
    )  # an invitation names 3 at least
    title = "办公台式计算机" + ("竞价" if kind == "auction" else "询价") + "项目"
    return await world.procedure(
        kind, title, invited=[world.who["supplier_x"], world.who["supplier_y"], third], **kw
    )


async def bid(page: Any, amount: str) -> None:
    await page.evaluate("document.getElementById('bid-message').textContent = ''")
    await page.fill("#bid-amount", amount)
    await page.click("#bid-form button[type=submit]")
    await expect(page.locator("#bid-message")).not_to_have_text("")


async def test_two_suppliers_see_each_others_bids_live(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    p = await publish(world, "auction", decrement="100")
    x = await signed_in(browser, errors, server, "supplier_x")
    y = await signed_in(browser, errors, server, "supplier_y")
    for page in (x, y):
        await page.goto(f"{server}/procedures/{p.id}")
        await expect(page.locator("#room-live")).to_have_text("已实时连接")

    await bid(x, "59000.00")
    t0 = time.monotonic()
    # y sees x's bid within a second, without reloading
    await expect(y.locator("#room-lowest")).to_contain_text("59,000.00", timeout=1000)
    seen_y = time.monotonic() - t0
    assert await y.inner_text("#room-bidders") == "1"
    assert "甲供应商" not in await y.content()  # never the other's name

    await bid(y, "58500.00")
    t0 = time.monotonic()
    await expect(x.locator("#room-lowest")).to_contain_text("58,500.00", timeout=1000)
    seen_x = time.monotonic() - t0
    await expect(x.locator("#room-rank")).to_have_text("2")
    assert "乙供应商" not in await x.content()
    await expect(y.locator("#room-rank")).to_have_text("1")
    # x is told plainly, and its earlier "出价成功" is gone; amounts in ¥ with thousands separators
    await expect(x.locator("#room-standing")).to_have_text(
        "您已不是最低价：本单位第 2 名，当前最低价 ¥58,500.00"
    )
    assert "出价成功" not in await x.inner_text("#bid-message")
    assert "¥59,000.00" in await x.inner_text("#my-bids")
    await expect(y.locator("#room-standing")).to_have_text("本单位出价为当前最低价（第 1 名）")
    await shot(x, "21-room-supplier-x")
    await shot(y, "22-room-supplier-y")

    # a refused bid: a message, logged in the own bid history, nothing changes for the other
    await bid(x, "58950.00")
    assert "至少低" in await x.inner_text("#bid-message")
    assert "58,500.00" in await y.inner_text("#room-lowest")
    print(f"\nbid seen by the other supplier after {seen_y * 1000:.0f} ms and {seen_x * 1000:.0f} ms")
    # the refused bid's 422 is the browser reporting the answer it got; nothing else may appear
    assert [e for e in errors if "status of 422" not in e] == [], errors


async def test_an_inquiry_page_never_shows_another_suppliers_quote(
    server: str, browser: Any, world: World
) -> None:
    errors: list[str] = []
    p = await publish(world, "inquiry")
    x = await signed_in(browser, errors, server, "supplier_x")
    await x.goto(f"{server}/procedures/{p.id}")
    await x.fill("#q-amount", "57321.00")
    await x.click("#quote-box button[type=submit]")
    await x.wait_for_load_state("networkidle")
    assert "报价已提交" in await x.content() and "57,321.00" in await x.content()

    for who in ("supplier_y", "buyer_a"):
        page = await signed_in(browser, errors, server, who)
        await page.goto(f"{server}/procedures/{p.id}")
        html = await page.content()
        assert "57321" not in html and "57,321" not in html, who
        assert "报价密封" in html
        await shot(page, f"23-inquiry-sealed-{who}")
    assert errors == [], errors
