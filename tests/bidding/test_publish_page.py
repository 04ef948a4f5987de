"""The publish form says what it publishes: an inquiry or an auction chosen by a link (no script),
the auction's decrement only on an auction, the deadline in China time with a default, and a
deadline refused as too early told in China time whatever the browser's zone."""

from __future__ import annotations

from typing import Any

from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, login_ok, post_form


async def test_the_form_follows_the_chosen_kind_and_says_its_deadline_is_china_time(
    client: Any, world: World
) -> None:
    await login_ok(client, "buyer_a")
    inquiry = assert_page(await client.get("/procedures/new?kind=inquiry", headers=HTML))
    assert "<h1>发布在线询价</h1>" in inquiry and "最小降价幅度" not in inquiry
    assert 'href="/procedures/new?kind=auction"' in inquiry and ">发布在线询价</button>" in inquiry
    assert "按北京时间（UTC+8）填写" in inquiry and 'name="ends_at" value="20' in inquiry  # a default
    auction = assert_page(await client.get("/procedures/new?kind=auction", headers=HTML))
    assert "<h1>发布反向竞价</h1>" in auction and "最小降价幅度" in auction
    assert ">发布反向竞价</button>" in auction and 'name="kind" value="auction"' in auction

    # A deadline in the past (as a browser in another zone might send it): told in China time.
    form = {**world.procedure_form(), "ends_at": "2020-01-01T09:00"}
    r = await post_form(client, "/procedures/new", form, referer="/procedures/new")
    assert r.status_code == 303
    shown = assert_page(await client.get("/procedures/new", headers=HTML))
    assert "截止时间（北京时间 2020-01-01 09:00）应在开始时间" in shown and "与本机所在时区无关" in shown
