"""What a visitor meets first, in a real browser, without logging in: the home page offers all five
ways of buying as links with what each has open now, and each leads to a public page (the goods,
the agreements in force, the designated suppliers and their prices, the public inquiry and auction
notices), where an open auction shows its notice and nothing of its bids."""

from __future__ import annotations

from typing import Any

import pytest

from bidding import offers
from tests.e2e.conftest import new_page, require_chromium, shot
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def test_a_visitor_finds_every_way_of_buying_from_the_home_page(
    server: str, browser: Any, world: World
) -> None:
    await world.listing("pc-y", "supplier_y", "4000.00", category="A02010105")
    inquiry = await world.procedure("inquiry", "公开询价：台式计算机", hours=2)
    auction = await world.procedure("auction", "公开竞价：台式计算机", decrement="100", hours=2)
    await offers.bid(world.db, world.who["supplier_x"], auction.id, "58765.00")
    await world.meeting_room("supplier_y")
    errors: list[str] = []
    page = await new_page(browser, errors)
    await page.goto(f"{server}/")
    modes = page.locator(".modes a.mode")
    assert await modes.count() == 5
    text = await page.locator(".modes").inner_text()
    assert "即将开放" not in text
    assert "正在报价的公开询价 1 个" in text and "正在竞价的公开项目 1 个" in text, text
    assert "定点供应商 1 家" in text, text
    await shot(page, "public-01-home")

    for label, heading, shows in (
        ("网上超市", "网上超市商品", None),
        ("协议供货", "协议供货", None),
        ("定点服务", "定点服务", "中型会议室（半天）"),
        ("在线询价", "在线询价与反向竞价", inquiry.title),
        ("反向竞价", "在线询价与反向竞价", auction.title),
    ):
        await page.goto(f"{server}/")
        await page.click(f".modes a.mode:has-text('{label}')")
        await page.wait_for_load_state("networkidle")
        assert heading in await page.inner_text("h1"), (label, await page.inner_text("h1"))
        if shows:
            assert shows in await page.content(), label
    await page.click(f"text={auction.title}")
    await page.wait_for_load_state("networkidle")
    content = await page.content()
    assert auction.number in content and "58765" not in content and "58,765" not in content
    assert await page.locator("#room").count() == 0
    await shot(page, "public-02-auction-notice")
    assert errors == [], errors
