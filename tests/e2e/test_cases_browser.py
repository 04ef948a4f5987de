"""An oversight case in a real browser: the rules' run opens a split-purchase case, the regulator
views it, the buyer explains it on its own case page, the regulator closes it (理由成立).

The web server and a worker run as real processes against the test database and Redis.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from typing import Any

import pytest

from mall.supervision import engine
from mall.supervision import rules as R
from tests.e2e.conftest import shot
from tests.e2e.pages import signed_in
from tests.factories import World
from tests.mall.test_supervision import cases_of, split_purchase

pytestmark = pytest.mark.browser


async def submit(page: Any, form: str, *, expect: str) -> str:
    await page.click(f"{form} button[type=submit]")
    await page.wait_for_load_state("networkidle")
    text = str(await page.content())
    if expect not in text:
        flash = await page.locator(".flash, .note-danger, [role=alert]").all_inner_texts()
        raise AssertionError(f"{form}: expected {expect!r}; the page says {flash}")
    return text


async def test_a_split_purchase_case_is_explained_and_closed(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    await split_purchase(world)
    await engine.run_full(world.db, world.settings)
    [case] = await cases_of(world, R.SPLIT_PURCHASE)

    regulator = await signed_in(browser, errors, server, "regulator")
    await regulator.goto(f"{server}/oversight/cases?rule=split_purchase")
    assert case.case_no in await regulator.content()
    await regulator.click(f"a[href='/oversight/cases/{case.id}']")
    await regulator.wait_for_load_state("networkidle")
    assert "疑似化整为零" in await regulator.content()
    await shot(regulator, "case-regulator-open")

    buyer = await signed_in(browser, errors, server, "buyer_a")
    await buyer.goto(f"{server}/cases")
    await buyer.click(f"a[href='/cases/{case.id}']")
    await buyer.wait_for_load_state("networkidle")
    await buyer.fill("#case-explanation", "三批为不同院区的年度更新，预算分别下达，已另行申报集中采购计划。")
    text = await submit(buyer, f"form[action='/cases/{case.id}/explanation']", expect="说明已提交")
    assert "已说明，待认定" in text
    await shot(buyer, "case-buyer-explained")

    await regulator.goto(f"{server}/oversight/cases/{case.id}")
    assert "不同院区的年度更新" in await regulator.content()
    await regulator.select_option("#case-decision", "justified")
    await regulator.fill("#case-note", "说明成立，提醒今后合并编制采购计划。")
    text = await submit(
        regulator, f"form[action='/oversight/cases/{case.id}/decision']", expect="已登记处理结论"
    )
    assert "已关闭：理由成立" in text and "提交处理结论" not in text
    await shot(regulator, "case-regulator-closed")
    [closed] = await cases_of(world, R.SPLIT_PURCHASE)
    assert closed.status == "justified"
    assert errors == []
